"""Whether a run judged the whole of its suites, and what an incomplete or undecided run leaves
behind.

A selection (`-k`, `-m`, `--deselect`, or `--lf` in `pytest ... || pytest --lf ...`) runs part of
a suite: the rates are then computed on the part, and a gate that passed on them would say the
suite is within its maxima when the left-out items were never asked. So the suites' item counts
are compared with what was collected, and a suite with deselected items gets an `inconclusive`
gate naming how many (to gate part of a suite, select it with `--safety-suite=NAME:SUBSET` or
`--safety-sample N`, which change what the suite holds).

A run that ends without writing results (a usage error, nothing selected, a collection error)
removes the results of an earlier run from the report folder: a CI step that reads
`vlmsafety-results.json` after a failed run must not read the earlier run's PASS.

Plain functions over the document and the loaded items: no pytest here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..items import OUTCOMES, SafetyItem
from ..output.document import REPORT_FILENAME, RESULTS_FILENAME, ResultsDocument, SuiteResults, worst_status
from ..suites import SuiteSelection
from ..text import printable


@dataclass(frozen=True)
class SuiteNode:
    """A suite selection's node (`sample:image`): its suite's name and the items it holds."""

    suite: str
    items: int


def suite_nodes(
    loaded: Sequence[tuple[SuiteSelection, Sequence[SafetyItem]]], node_name_of: Mapping[str, str]
) -> dict[str, SuiteNode]:
    """Per suite node, the items it collects: as `runner.ItemRunner` collects them, an item that
    an earlier selection of the same suite holds is collected there only. `node_name_of` maps a
    selection's label to its node name."""
    seen: set[str] = set()
    nodes: dict[str, SuiteNode] = {}
    for selection, items in loaded:
        unique = [item for item in items if item.key not in seen]
        seen.update(item.key for item in unique)
        node = node_name_of[selection.label]
        previous = nodes.get(node)
        count = len(unique) + (previous.items if previous else 0)
        nodes[node] = SuiteNode(selection.suite.name, count)
    return nodes


def deselected_counts(nodes: Mapping[str, SuiteNode], collected: Iterable[str]) -> dict[str, int]:
    """Per suite node, the items it holds that are not among the `collected` node ids (after
    -k/-m/--lf/--deselect); nodes with none left out are omitted."""
    kept = Counter(nodeid.split("::")[0] for nodeid in collected)
    missing = {node: spec.items - kept.get(node, 0) for node, spec in nodes.items()}
    return {node: count for node, count in sorted(missing.items()) if count > 0}


def mark_deselected(
    document: ResultsDocument,
    deselected: Mapping[str, int],
    nodes: Mapping[str, SuiteNode],
) -> None:
    """Make the gate of each suite with deselected items, and the run's, at least `inconclusive`,
    with a reason naming how many items were not run. A suite none of whose items was selected
    gets an empty section of its own, so its gate shows wherever gates show."""
    if not deselected:
        return
    by_suite: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for node, count in deselected.items():
        by_suite[nodes[node].suite] += count
    for spec in nodes.values():
        held[spec.suite] += spec.items
    total = sum(by_suite.values())
    document.run.items_deselected = total
    for suite, count in sorted(by_suite.items()):
        summary = document.suites.get(suite)
        if summary is None:
            summary = document.suites[suite] = SuiteResults(counts=dict.fromkeys(OUTCOMES, 0))
        reason = (
            f"{count} of its {held[suite]} items were deselected (-k, -m, --lf or --deselect) and not run: "
            "the gate did not see them; inconclusive"
        )
        summary.gate.failures.insert(0, reason)
        summary.gate.status = worst_status([summary.gate.status, "inconclusive"])
        summary.gate.passed = summary.gate.status == "pass"
        document.gate.failures.insert(0, f"{printable(suite)}: {reason}")
    document.gate.status = worst_status([document.gate.status, "inconclusive"])
    document.gate.passed = document.gate.status == "pass"


def remove_stale_results(report_dir: Path) -> list[Path]:
    """Remove the results file and HTML report an earlier run left in `report_dir`; the paths
    removed. A file that cannot be removed is left (the caller says so)."""
    removed: list[Path] = []
    for name in (RESULTS_FILENAME, REPORT_FILENAME):
        path = report_dir / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(path)
    return removed


def stale_note(removed: Sequence[Path]) -> str:
    """One line for the terminal or a usage error: what was removed and why."""
    names = ", ".join(str(path) for path in removed)
    return f"removed the earlier run's {names}: this run wrote no results, so they are not its verdict"
