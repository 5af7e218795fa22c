"""The gate's account of the items whose own test failed on a mismatch, so that the exit status,
the terminal, the JSON, the HTML report and JUnit say the same thing.

An item's test fails (rather than xfails) on a mismatch in two cases (`runner.ItemRunner.check_record`):
`--safety-gate=items`, where every mismatch fails, and a run against a baseline, where a failure
the baseline does not have (a flip, or an item the baseline did not run) fails. Such a run exits
non-zero whatever the rates say, so the gate must not say PASSED: here each such item is a
reason for its suite's gate (items mode) or the baseline gate to `fail` (gate/verdict.py decides).

Plain functions over the records: no pytest here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..items import Record
from ..text import printable
from .baseline import Baseline, is_known_failure

SHOWN_IDS = 5


def fails_its_test(record: Record, *, gate_mode: str, baseline: Baseline | None) -> bool:
    """Whether the record's test fails on a mismatch, as `ItemRunner.check_record` decides it
    (errors are not mismatches: they make the gate `error` on their own)."""
    if record.outcome in ("pass", "error"):
        return False
    if baseline is not None:
        return not is_known_failure(baseline, record.suite, record.id, record.outcome)
    return gate_mode == "items"


def _listing(records: Sequence[Record]) -> str:
    # Item ids are suite data: escaped here, since gate failures reach the terminal and JUnit as they are.
    shown = ", ".join(f"{printable(record.id)} ({record.outcome})" for record in records[:SHOWN_IDS])
    more = f" and {len(records) - SHOWN_IDS} more" if len(records) > SHOWN_IDS else ""
    return shown + more


def _by_suite(records: Iterable[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.suite, []).append(record)
    return dict(sorted(grouped.items()))


def failed_item_reasons(
    records: Iterable[Record], *, gate_mode: str, baseline: Baseline | None
) -> tuple[dict[str, list[str]], list[str]]:
    """The reasons items that failed their tests give a gate to fail: per suite under
    `--safety-gate=items` (its own gate), or, against a baseline, the baseline gate's new failures."""
    failed = [r for r in records if fails_its_test(r, gate_mode=gate_mode, baseline=baseline)]
    by_suite: dict[str, list[str]] = {}
    new_failures: list[str] = []
    for suite, group in _by_suite(failed).items():
        if baseline is not None:
            new_failures.append(
                f"{printable(suite)}: {len(group)} new failure(s) not in the baseline, each failing its test: "
                f"{_listing(group)}"
            )
        else:
            by_suite[suite] = [
                f"{len(group)} item(s) failed their tests (--safety-gate=items: every mismatch fails): "
                f"{_listing(group)}"
            ]
    return by_suite, new_failures
