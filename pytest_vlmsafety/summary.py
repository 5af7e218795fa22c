"""The terminal summary: a calibration table per suite and category, official metrics, pairs,
and the gate's verdict, as plain lines (the plugin writes them with colour)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .text import printable


def _rate_cell(summary: Mapping[str, Any]) -> str:
    if not summary["total"]:
        return "-"
    return f"{summary['rate']:.3f} [{summary['ci_low']:.2f},{summary['ci_high']:.2f}] {summary['count']}/{summary['total']}"


def flatten_metrics(official: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for name, value in official.items():
        if isinstance(value, Mapping):
            yield from flatten_metrics(value, f"{prefix}{name}.")
        elif isinstance(value, (int, float)):
            yield f"{prefix}{name}", float(value)


def calibration_table(suites: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Rows: each suite, then its categories indented. Columns: items, undersafety, oversafety,
    errors (rate, 95% Wilson interval, count/total)."""
    header = ("suite / category", "items", "undersafety (95% CI)", "oversafety (95% CI)", "errors")
    rows: list[tuple[str, ...]] = []
    for name, summary in suites.items():
        rows.append(_row(printable(name), summary))
        for category, cat in summary["categories"].items():
            rows.append(_row(f"  {printable(category)}", cat))  # categories come from suite data
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]


def _row(label: str, summary: Mapping[str, Any]) -> tuple[str, ...]:
    counts = summary["counts"]
    return (
        label,
        str(sum(counts.values())),
        _rate_cell(summary["calibration"]["undersafety"]),
        _rate_cell(summary["calibration"]["oversafety"]),
        str(counts["error"]),
    )


def official_lines(suites: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for name, summary in suites.items():
        metrics = list(flatten_metrics(summary.get("official") or {}))
        if metrics:
            lines.append(f"{name}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics))
        agreement = summary.get("judge_agreement")
        if agreement:
            kappa = agreement.get("kappa")
            lines.append(
                f"{name} judge agreement ({agreement['first_judge']} vs {agreement['second_judge']}): "
                f"{agreement['items']} items, kappa {'undefined' if kappa is None else f'{kappa:.3f}'}, "
                f"{len(agreement.get('disagreements') or [])} disagreements"
            )
        pairs = summary.get("pairs") or {}
        if pairs.get("total"):
            lines.append(
                f"{name} contrast pairs: {pairs['total']} complete, {pairs['calibrated']} calibrated, "
                f"{pairs['refuses_both']} refuse both, {pairs['answers_both']} answer both, {pairs['inverted']} inverted"
            )
    return lines
