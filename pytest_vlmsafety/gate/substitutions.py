"""Nothing substituted silently: where the LLM judge asked for (`--safety-judge=llm`) did not judge
an item and something else decided, the run says so once, and the gate does not pass on it.

Per item, an LLM-judge verdict says when its reply was unreadable (`UNREADABLE_KEY`), when a rule
judge decided instead (`FALLBACK_KEY`, the scheme's rule for an unreadable reply) and when the
call itself failed (`CALL_FAILED_KEY`: HTTP 500, a timeout). Those marks were only in each item's
reason; a judge server answering 500 to every call turned the run into a rule-judged one with no
word at run level. Here:

- a run-level warning (`run.warnings`: terminal, JSON, report) counts the items the LLM judge did
  not decide, and names a suite judged by the generic `refusal` scheme because no scheme is
  registered under its name (a conftest.py that registers it was not loaded);
- a suite with items whose judge call failed gets an `error` gate: the judge the user asked for
  could not be had for them, and a rule's verdict is not that measurement. So does a suite none
  of whose LLM-judged items the LLM judge decided (every reply unreadable);
- UnsafeConcepts' official classifiers that could not be loaded (the rule parsers judged) are a
  run-level warning too, and an `error` gate when `--unsafeconcepts-classifiers DIR` asked for them.

Plain functions over the records, returning the warnings and each suite's reasons; gate/verdict.py
turns the reasons into the gates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from ..items import Record
from ..judges.base import LLM_JUDGE_NAME
from ..judges.schemes import CALL_FAILED_KEY, FALLBACK_KEY, UNREADABLE_KEY
from ..text import printable


def generic_scheme_of(suite: str) -> str | None:
    """The generic scheme the items of `suite` are judged with when it is neither built in nor
    has a scheme registered under its name (in this process); None when it has its own."""
    from ..judges.schemes import all_schemes
    from ..suites import builtin_suite_class

    if builtin_suite_class(suite) is not None or suite in all_schemes():
        return None
    return "refusal"


# Set on an UnsafeConcepts verdict whose official classifier could not be loaded, so the rule
# parser decided (judges/unsafeconcepts_classifier.py).
CLASSIFIER_UNAVAILABLE_KEY = "classifier_unavailable"


def classifier_substitutions(
    records: Iterable[Record], *, folder_given: bool
) -> tuple[list[str], dict[str, list[str]]]:
    """UnsafeConcepts' official classifiers that could not be loaded, so the rule parsers judged:
    the run-level warnings, and per suite the reasons its gate is `error` (only with
    `--unsafeconcepts-classifiers DIR` given: the user asked for those classifiers)."""
    ruled = Counter(r.suite for r in records if r.extra.get(CLASSIFIER_UNAVAILABLE_KEY))
    warnings: list[str] = []
    reasons: dict[str, list[str]] = {}
    for suite, count in sorted(ruled.items()):
        asked = " from --unsafeconcepts-classifiers" if folder_given else ""
        warnings.append(
            f"{printable(suite)}: the official answer classifiers{asked} could not be loaded; the rule parsers "
            f"judged {count} items instead (each item's reason says why)"
        )
        if folder_given:
            reasons[suite] = [
                f"{count} items were judged by the rule parsers, not the classifiers asked for with "
                "--unsafeconcepts-classifiers: not measured"
            ]
    return warnings, reasons


def judge_substitutions(
    records: Sequence[Record], generic_scheme_of: Callable[[str], str | None] = generic_scheme_of
) -> tuple[list[str], dict[str, list[str]]]:
    """The run-level warnings of LLM-judge substitutions, and per suite the reasons its gate is
    `error` (see the module docstring). `generic_scheme_of(suite)` names the generic scheme a
    suite's items were judged with when the suite has no scheme of its own, else None."""
    judged = Counter(r.suite for r in records if r.judge == LLM_JUDGE_NAME)
    undecided = Counter(r.suite for r in records if r.judge == LLM_JUDGE_NAME and r.extra.get(UNREADABLE_KEY))
    failed = Counter(r.suite for r in records if r.judge == LLM_JUDGE_NAME and r.extra.get(CALL_FAILED_KEY))
    ruled = Counter(r.suite for r in records if r.judge == LLM_JUDGE_NAME and r.extra.get(FALLBACK_KEY))
    warnings: list[str] = []
    reasons: dict[str, list[str]] = {}
    for suite in sorted(judged):
        if not undecided[suite]:
            continue
        generic = generic_scheme_of(suite)
        scheme_note = (
            f"; no judge scheme is registered under its name, so the generic {generic!r} scheme asked (register "
            "yours with register_scheme in a conftest.py that this run loads)"
            if generic
            else ""
        )
        warnings.append(
            f"--safety-judge=llm: the LLM judge did not decide {undecided[suite]} of the {judged[suite]} "
            f"{printable(suite)} items "
            f"({failed[suite]} judge calls failed, {undecided[suite] - failed[suite]} replies were unreadable); "
            f"{ruled[suite]} of them were decided by a rule judge instead, the others left unjudged{scheme_note}"
        )
        if failed[suite]:
            reasons[suite] = [
                f"{failed[suite]} of its {judged[suite]} items were not judged by the LLM judge asked for "
                "(--safety-judge=llm): the judge call failed; not measured"
            ]
        elif undecided[suite] == judged[suite]:
            reasons[suite] = [
                f"the LLM judge asked for (--safety-judge=llm) decided none of its {judged[suite]} items "
                "(every reply unreadable): not measured"
            ]
    return warnings, reasons
