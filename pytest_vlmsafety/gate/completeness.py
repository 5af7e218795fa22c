"""Whether a run judged the whole of its suites, and what an incomplete or undecided run leaves
behind.

A selection (`-k`, `-m`, `--deselect`, or `--lf` in `pytest ... || pytest --lf ...`) runs part of
a suite: the rates are then computed on the part, and a gate that passed on them would say the
suite is within its maxima when the left-out items were never asked. So the suites' item counts
are compared with what was collected, and a suite with deselected items gets an `inconclusive`
gate naming how many (to gate part of a suite, select it with `--safety-suite=NAME:SUBSET` or
`--safety-sample N`, which change what the suite holds). A run that stopped early (`Interruption`)
has suites whose gates did not see every item either: `interrupted`.

A run that ends without writing results (a usage error, nothing selected, a collection error)
removes the results of an earlier run from the report folder: a CI step that reads
`vlmsafety-results.json` after a failed run must not read the earlier run's PASS.

Plain functions over the records and the loaded items (gate/verdict.py turns their reasons into
the gates): no pytest here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..items import Record, SafetyItem
from ..output.document import REPORT_FILENAME, RESULTS_FILENAME
from ..suites import SuiteSelection


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


def deselected_reasons(deselected: Mapping[str, int], nodes: Mapping[str, SuiteNode]) -> dict[str, list[str]]:
    """Per suite with deselected items (`deselected`: per suite node), the reason its gate is at
    least `inconclusive`, naming how many of its items were not run."""
    by_suite: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for node, count in deselected.items():
        by_suite[nodes[node].suite] += count
    for spec in nodes.values():
        held[spec.suite] += spec.items
    return {
        suite: [
            f"{count} of its {held[suite]} items were deselected (-k, -m, --lf or --deselect) and not run: "
            "the gate did not see them; inconclusive"
        ]
        for suite, count in sorted(by_suite.items())
    }


@dataclass(frozen=True)
class Interruption:
    """A run that stopped early (Ctrl-C, -x, a lost worker): per suite node, its collected items
    that reported no outcome, of the `planned` safety items collected."""

    not_run: Mapping[str, int]
    planned: int

    @property
    def missing(self) -> int:
        return sum(self.not_run.values())

    def message(self) -> str:
        """The run gate's reason."""
        where = ", ".join(f"{node}: {count}" for node, count in self.not_run.items())
        if not self.missing:
            return "the run was interrupted"
        return f"the run was interrupted: {self.missing} of {self.planned} collected items did not run ({where})"

    def suite_reasons(self, records: Iterable[Record]) -> dict[str, list[str]]:
        """Per suite with items that did not run, the reason its gate is `interrupted`. Records
        name the suite; the collected node ids only its node (`sample:image`, a file stem), so a
        node no record names stands for the suite of that name."""
        suite_of_node = {record.nodeid.split("::")[0]: record.suite for record in records if record.nodeid}
        reasons: dict[str, list[str]] = {}
        for node, count in self.not_run.items():
            reasons.setdefault(suite_of_node.get(node, node), []).append(
                f"interrupted: {count} of its items did not run"
            )
        return reasons


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
