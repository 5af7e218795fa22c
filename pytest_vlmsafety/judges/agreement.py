"""How far two judges agree on the same responses: Cohen's kappa and the items they split on.

Pure functions over labels. Cohen's kappa is (p_o - p_e) / (1 - p_e): p_o the share of items
both judges label alike, p_e the share they would agree on by chance, the sum over labels of
the product of each judge's share of that label. 1 is perfect agreement, 0 what chance gives,
below 0 worse than chance. When chance agreement is already certain (both judges gave every
item one and the same label), kappa is 0/0: it is reported as None, not invented.

When a run uses two judges (the LLM judge and the suite's rule judge), the LLM verdict carries
the rule's label in its `extra` (`with_second_opinion`), and `agreement_from_records` reads it
back from the records of one suite. The result is the results document's `JudgeAgreement`, the
one type of this fact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..items import Verdict
from ..output.document import Disagreement, JudgeAgreement
from .schemes import FALLBACK_KEY

SECOND_JUDGE_KEY = "second_judge"
SECOND_VERDICT_KEY = "second_verdict"


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two label sequences over the same items; None when it is undefined
    (no items, or chance agreement of 1)."""
    if len(first) != len(second):
        raise ValueError(f"the two judges labelled {len(first)} and {len(second)} items; they must be the same items")
    total = len(first)
    if total == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / total
    chance = _chance_agreement(first, second)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def _chance_agreement(first: Sequence[str], second: Sequence[str]) -> float:
    total = len(first)
    counts_first, counts_second = Counter(first), Counter(second)
    return sum(counts_first[label] * counts_second[label] for label in counts_first) / (total * total)


def judge_agreement(
    ids: Sequence[str],
    first: Sequence[str],
    second: Sequence[str],
    *,
    first_judge: str = "first",
    second_judge: str = "second",
) -> JudgeAgreement:
    """Kappa, the raw agreement and every item where the two judges differ, in input order."""
    if not (len(ids) == len(first) == len(second)):
        raise ValueError(f"got {len(ids)} ids, {len(first)} and {len(second)} labels; they must match")
    total = len(ids)
    return JudgeAgreement(
        first_judge=first_judge,
        second_judge=second_judge,
        items=total,
        observed_agreement=sum(a == b for a, b in zip(first, second, strict=True)) / total if total else None,
        chance_agreement=_chance_agreement(first, second) if total else None,
        kappa=cohen_kappa(first, second),
        disagreements=[Disagreement(i, a, b) for i, a, b in zip(ids, first, second, strict=True) if a != b],
    )


def with_second_opinion(primary: Verdict, secondary: Verdict) -> Verdict:
    """`primary` carrying `secondary`'s judge and label in its extra, for the agreement."""
    extra = {**primary.extra, SECOND_JUDGE_KEY: secondary.judge, SECOND_VERDICT_KEY: secondary.label}
    return Verdict(label=primary.label, reason=primary.reason, judge=primary.judge, extra=extra)


def agreement_from_records(records: Iterable[Any]) -> JudgeAgreement | None:
    """The agreement between each record's judge and the second opinion it carries (records of
    one suite; Record objects or their dicts). Records without a second opinion, errors and the
    LLM judge's rule fallbacks are left out; None when no record remains. When the records name
    several second judges (a suite whose items use different rules), the judge names are
    joined."""
    ids: list[str] = []
    first: list[str] = []
    second: list[str] = []
    first_judges: set[str] = set()
    second_judges: set[str] = set()
    for record in records:
        data = record if isinstance(record, Mapping) else vars(record)
        extra = data.get("extra") or {}
        verdict = data.get("verdict")
        # A verdict the LLM judge left to its rule fallback would count the rule agreeing with itself.
        if verdict is None or SECOND_VERDICT_KEY not in extra or FALLBACK_KEY in extra:
            continue
        ids.append(str(data.get("id")))
        first.append(str(verdict))
        second.append(str(extra[SECOND_VERDICT_KEY]))
        first_judges.add(str(data.get("judge")))
        second_judges.add(str(extra.get(SECOND_JUDGE_KEY)))
    if not ids:
        return None
    return judge_agreement(
        ids, first, second, first_judge="+".join(sorted(first_judges)), second_judge="+".join(sorted(second_judges))
    )


__all__ = [
    "SECOND_JUDGE_KEY",
    "SECOND_VERDICT_KEY",
    "agreement_from_records",
    "cohen_kappa",
    "judge_agreement",
    "with_second_opinion",
]
