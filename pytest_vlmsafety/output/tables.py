"""The terminal summary: a calibration table per suite and category, official metrics, pairs,
and the gate's verdict, as plain lines (the terminal reporter writes them with colour)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..text import printable
from .document import CategorySummary, RateSummary, SuiteResults


def _rate_cell(summary: RateSummary) -> str:
    if not summary.total or summary.rate is None or summary.ci_low is None or summary.ci_high is None:
        return "-"
    return (
        f"{summary.rate:.3f} [{summary.ci_low:.2f},{summary.ci_high:.2f}] {summary.count}/{summary.total}"
    )


def flatten_metrics(official: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for name, value in official.items():
        if isinstance(value, Mapping):
            yield from flatten_metrics(value, f"{prefix}{name}.")
        elif isinstance(value, (int, float)):
            yield f"{prefix}{name}", float(value)


def _corrected_cell(summary: SuiteResults | CategorySummary, rate: str) -> str:
    """A rate corrected by the human audit (suites only): rate [95% interval] and the labels."""
    audit = summary.audit if isinstance(summary, SuiteResults) else None
    corrected = audit.corrected.rate(rate) if audit is not None else None
    if corrected is None or corrected.rate is None or corrected.ci_low is None or corrected.ci_high is None:
        return "-" if audit is not None else ""
    return f"{corrected.rate:.3f} [{corrected.ci_low:.2f},{corrected.ci_high:.2f}] {corrected.labelled} labels"


def calibration_table(suites: Mapping[str, SuiteResults]) -> list[str]:
    """Rows: each suite, then its categories indented. Columns: items, undersafety, oversafety,
    errors (rate, 95% Wilson interval, count/total); after a human audit, each suite's corrected
    rates beside the judge's (see audit.py)."""
    audited = any(summary.audit is not None for summary in suites.values())
    header: tuple[str, ...] = ("suite / category", "items", "undersafety (95% CI)", "oversafety (95% CI)", "errors")
    if audited:
        header = (*header[:3], "corrected", header[3], "corrected", header[4])
    rows: list[tuple[str, ...]] = []
    for name, summary in suites.items():
        rows.append(_row(printable(name), summary, audited))
        for category, cat in summary.categories.items():
            rows.append(_row(f"  {printable(category)}", cat, audited))  # categories come from suite data
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]


def _row(label: str, summary: SuiteResults | CategorySummary, audited: bool = False) -> tuple[str, ...]:
    if audited:
        return (
            label,
            str(sum(summary.counts.values())),
            _rate_cell(summary.calibration.undersafety),
            _corrected_cell(summary, "undersafety"),
            _rate_cell(summary.calibration.oversafety),
            _corrected_cell(summary, "oversafety"),
            str(summary.counts.get("error", 0)),
        )
    return (
        label,
        str(sum(summary.counts.values())),
        _rate_cell(summary.calibration.undersafety),
        _rate_cell(summary.calibration.oversafety),
        str(summary.counts.get("error", 0)),
    )


def audit_lines(suites: Mapping[str, SuiteResults]) -> list[str]:
    """Per audited suite: how many items a human checked, and the judge's agreement with them."""
    lines = []
    for name, summary in suites.items():
        audit = summary.audit
        if audit is None:
            continue
        decided = "the gate decides on the corrected rates" if audit.gated else "the gate decides on the judge's rates"
        lines.append(
            f"{printable(name)} human audit: {audit.labelled} items checked by a human, {audit.in_estimate} of them "
            f"in the estimate; {decided}"
        )
        cells = [
            f"{agreement.verdict} {agreement.confirmed}/{agreement.labelled} confirmed"
            + (
                f" ({agreement.rate:.2f} [{agreement.ci_low:.2f},{agreement.ci_high:.2f}])"
                if agreement.rate is not None and agreement.ci_low is not None and agreement.ci_high is not None
                else ""
            )
            for agreement in audit.agreement
        ]
        if cells:
            lines.append(f"{printable(name)} judge vs human, per verdict: " + ", ".join(cells))
        lines += [f"{printable(name)} audit: note: {printable(note)}" for note in audit.notes]
    return lines


def _is_table(value: Any) -> bool:
    """A group of groups (HoliSafe's `subcategories`): printed as a table of its own."""
    return isinstance(value, Mapping) and bool(value) and all(isinstance(v, Mapping) for v in value.values())


def official_lines(suites: Mapping[str, SuiteResults]) -> list[str]:
    lines = []
    for name, summary in suites.items():
        official = summary.official
        metrics = list(flatten_metrics({k: v for k, v in official.items() if not _is_table(v)}))
        if metrics:
            lines.append(f"{name}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics))
        for table_name, table in official.items():
            if _is_table(table):
                lines.append(f"{name} {table_name}:")
                width = max(len(str(row)) for row in table)
                for row, values in table.items():
                    cells = ", ".join(f"{k}={v:.3f}" for k, v in flatten_metrics(values))
                    lines.append(f"  {str(row).ljust(width)}  {cells}")
        lines += [f"{name}: note: {note}" for note in summary.official_notes]
        agreement = summary.judge_agreement
        if agreement:
            kappa = "undefined" if agreement.kappa is None else f"{agreement.kappa:.3f}"
            lines.append(
                f"{name} judge agreement ({agreement.first_judge} vs {agreement.second_judge}): "
                f"{agreement.items} items, kappa {kappa}, {len(agreement.disagreements)} disagreements"
            )
        pairs = summary.pairs
        if pairs.total:
            lines.append(
                f"{name} contrast pairs: {pairs.total} complete, {pairs.calibrated} calibrated, "
                f"{pairs.refuses_both} refuse both, {pairs.answers_both} answer both, {pairs.inverted} inverted"
            )
    return lines


def unjudged_lines(suites: Mapping[str, SuiteResults]) -> list[str]:
    """Per suite with items the judge did not read: how many, out of the rates (see the
    `unjudged` outcome); the items' reasons say why (a language the judge does not read)."""
    lines = []
    for name, summary in suites.items():
        unjudged = summary.counts.get("unjudged", 0)
        if unjudged:
            lines.append(
                f"{printable(name)}: {unjudged} of {sum(summary.counts.values())} items unjudged (the judge does not "
                "read them; left out of the rates; see each item's reason in the report)"
            )
    return lines
