#!/usr/bin/env python3
"""Load the real benchmark metadata through the suite loaders and check the item counts.

The shared folder (default: ../shared/benchmarks next to the repository) holds the real
metadata of some benchmarks, without their images; the loaders must not need the images to
load. Expected counts come from each suite's manifest (suites/<name>.toml, table [counts]).

One function per suite, registered in CHECKS; a suite whose folder is absent is skipped.
Prints a table; exits 1 on any mismatch or load error, 0 otherwise (also when the shared
folder is absent: it prints "skipped").

    python tools/check_real_metadata.py [--shared DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from pytest_vlmsafety.download import suite_manifest
from pytest_vlmsafety.errors import VlmSafetyError
from pytest_vlmsafety.items import SafetyItem
from pytest_vlmsafety.suites.unsafeconcepts import UnsafeConceptsSuite
from pytest_vlmsafety.suites.vscbench import VARIANTS, VscbenchSuite

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "benchmarks"


@dataclass(frozen=True)
class CountCheck:
    """One counted quantity of a suite against the count its manifest expects."""

    suite: str
    quantity: str
    expected: int | None
    actual: int | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.expected is not None and self.expected == self.actual


def expected_counts(suite_name: str) -> dict[str, int]:
    counts = suite_manifest(suite_name).get("counts", {})
    return {key: value for key, value in counts.items() if isinstance(value, int)}


def compare(suite_name: str, actual: dict[str, int]) -> list[CountCheck]:
    """A check per counted quantity, in the order counted."""
    expected = expected_counts(suite_name)
    return [
        CountCheck(suite_name, quantity, expected.get(quantity), value,
                   "" if quantity in expected else f"no count '{quantity}' in suites/{suite_name}.toml")
        for quantity, value in actual.items()
    ]


def count_pairs(items: Sequence[SafetyItem]) -> int:
    """Complete contrast pairs: a pair id shared by a safe and an unsafe item."""
    sides: dict[str, set[str]] = {}
    for item in items:
        if item.pair:
            sides.setdefault(item.pair, set()).add(item.expected)
    return sum(1 for expected in sides.values() if expected == {"comply", "refuse"})


def check_vscbench(shared: Path) -> list[CountCheck]:
    suite = VscbenchSuite()
    image = suite.load(shared, "image")
    text = suite.load(shared, "text")
    by_kind = Counter((item.subset.split("/")[0], item.expected) for item in (*image, *text))
    actual = {
        "image": len(image),
        "image_unsafe": by_kind["image", "refuse"],
        "image_safe": by_kind["image", "comply"],
        "text": len(text),
        "text_unsafe": by_kind["text", "refuse"],
        "text_safe": by_kind["text", "comply"],
        # Each variant through its own subset selection, as --safety-suite=vscbench:text/<variant> loads it.
        **{f"text/{variant}": len(suite.load(shared, f"text/{variant}")) for variant in VARIANTS},
        "image_pairs": count_pairs(image),
        "text_pairs": count_pairs(text),
        "rows_image": len({item.meta["row"] for item in image}),
        "rows_text": len({item.meta["row"] for item in text}),
    }
    return compare(suite.name, actual)


def check_unsafeconcepts(shared: Path) -> list[CountCheck]:
    suite = UnsafeConceptsSuite()
    perception = suite.load(shared, "perception")
    image_alignment = suite.load(shared, "alignment/image")
    text_alignment = suite.load(shared, "alignment/text")
    actual = {
        "images": len({item.images for item in perception}),
        "concepts": len({item.meta["unsafe_concept"] for item in text_alignment}),
        "categories": len({item.category for item in perception}),
        "perception": len(perception),
        "alignment/image": len(image_alignment),
        "alignment/text": len(text_alignment),
        "alignment": len(suite.load(shared, "alignment")),
        "total": len(suite.load(shared)),
    }
    return compare(suite.name, actual)


# Suite name -> check. HoliSafe and MIS have no real metadata in the shared folder yet: add
# check_holisafe / check_mis here, written like the two above, when it arrives.
CHECKS: dict[str, Callable[[Path], list[CountCheck]]] = {
    "vscbench": check_vscbench,
    "unsafeconcepts": check_unsafeconcepts,
}


def run_checks(shared: Path) -> tuple[list[CountCheck], list[str]]:
    """(count checks, one line per skipped suite)."""
    checks: list[CountCheck] = []
    skipped: list[str] = []
    for name, check in CHECKS.items():
        if not (shared / name).is_dir():
            skipped.append(f"{name}: skipped (no folder {shared / name})")
            continue
        try:
            checks += check(shared)
        except VlmSafetyError as exc:
            checks.append(CountCheck(name, "load", None, None, f"load failed: {exc}"))
    return checks, skipped


def status(check: CountCheck) -> str:
    if check.ok:
        return "ok"
    return "LOAD FAILED" if check.quantity == "load" else "MISMATCH"


def format_table(checks: Sequence[CountCheck]) -> str:
    """The checks as an aligned text table, then the note of each failed one."""
    header = ("suite", "quantity", "expected", "actual", "status")
    rows = [
        (
            check.suite,
            check.quantity,
            "-" if check.expected is None else f"{check.expected:,}",
            "-" if check.actual is None else f"{check.actual:,}",
            status(check),
        )
        for check in checks
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += [f"{check.suite} {check.quantity}: {check.note}" for check in checks if not check.ok and check.note]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--shared", type=Path, default=DEFAULT_SHARED,
        help=f"folder holding <suite>/ metadata folders (default: {DEFAULT_SHARED})",
    )
    args = parser.parse_args(argv)
    shared: Path = args.shared
    if not shared.is_dir():
        print(f"skipped: no shared benchmark folder at {shared}")
        return 0
    checks, skipped = run_checks(shared)
    for line in skipped:
        print(line)
    if checks:
        print(format_table(checks))
    failures = [check for check in checks if not check.ok]
    if failures:
        print(f"{len(failures)} mismatch(es)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
