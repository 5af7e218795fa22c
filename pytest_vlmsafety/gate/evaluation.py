"""Builds the results document from plain records: per-suite metrics, the gate and the run's
verdict. The same on a single process and an xdist controller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..items import Record
from ..judges.agreement import agreement_from_records
from ..output.document import (
    Calibration,
    CategorySummary,
    CorrectedRate,
    CorrectedRates,
    JudgeAgreement,
    PairCounts,
    ResultsDocument,
    RunFacts,
    RunGate,
    SuiteAudit,
    SuiteGate,
    SuiteResults,
    VerdictAgreement,
    parse_as,
    worst_status,
)
from ..suites import Suite
from .audit import RATE_LABELS, suite_audit
from .metrics import (
    GateResult,
    Thresholds,
    calibration,
    calibration_scope,
    evaluate_gate,
    group_by,
    outcome_counts,
    pair_summary,
    unjudged_counts,
)


def suite_results(
    suite: Suite | None, records: Sequence[Record], thresholds: Thresholds, *, audit_seed: int | None = None
) -> SuiteResults:
    """A suite's section. `audit_seed`: human labels were given (--safety-audit-labels), read
    with this seed: the suite gets its audit, and its gate decides on the corrected rates."""
    calib = calibration(records)
    audit, gate_calib, shown = audit_section(records, calib, audit_seed)
    official: dict[str, Any] = {}
    official_notes: list[str] = []
    if suite is not None:
        judged = [r for r in records if r.outcome != "error"]
        official = dict(suite.official_metrics(judged)) if judged else {}
        official_notes = list(suite.official_notes(judged)) if judged else []
    agreement = agreement_from_records(records)
    return SuiteResults(
        counts=outcome_counts(records),
        calibration=parse_as(Calibration, calib, "calibration"),
        categories={
            category: CategorySummary(
                counts=outcome_counts(group), calibration=parse_as(Calibration, calibration(group), "calibration")
            )
            for category, group in group_by(records, "category").items()
        },
        official=official,
        official_notes=official_notes,
        pairs=PairCounts(**pair_summary(records)),
        judge_agreement=parse_as(JudgeAgreement, agreement.to_dict(), "judge_agreement") if agreement else None,
        gate=suite_gate(
            evaluate_gate(
                gate_calib,
                thresholds,
                scope=calibration_scope(records),
                errors=sum(r.outcome == "error" for r in records),
                items=len(records),
                shown=shown,
                unjudged=sum(r.outcome == "unjudged" for r in records),
                open_items=sum(r.task == "open" for r in records),
                unparsed=unjudged_counts(records),
            )
        ),
        audit=audit,
    )


def audit_section(
    records: Sequence[Record], calib: dict[str, dict[str, Any]], seed: int | None
) -> tuple[SuiteAudit | None, dict[str, dict[str, Any]], dict[str, str]]:
    """The suite's audit (None without labels on its items), the rates the gate decides on, and
    how the gate's reasons name them. A rate any of whose items a human labelled is gated on its
    corrected estimate, never on the count of outcomes: that count mixes human labels in, and
    labels a reviewer chose (not the random sample) would bias it; the corrected estimate counts
    only the sample's labels and takes every other item at the judge's word, with an interval
    that spans what the unaudited strata could be."""
    if seed is None or not any(record.human_label is not None for record in records):
        return None, calib, {}
    result = suite_audit(records[0].suite, records, seed)
    touched = {
        rate for rate, (_, _, expected) in RATE_LABELS.items()
        if any(record.human_label is not None and record.expected == expected for record in records)
    }
    gate_calib = dict(calib)
    shown: dict[str, str] = {}
    corrected = CorrectedRates()
    for name, estimate in result.corrected.items():
        setattr(corrected, name, CorrectedRate(
            total=estimate.total, labelled=estimate.labelled, unaudited=estimate.unaudited,
            rate=estimate.rate, ci_low=estimate.ci_low, ci_high=estimate.ci_high,
        ))
        if name not in touched:
            continue
        gate_calib[name] = {
            "count": estimate.labelled, "total": estimate.total if estimate.rate is not None else 0,
            "rate": estimate.rate, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high,
        }
        if estimate.rate is not None and estimate.ci_low is not None and estimate.ci_high is not None:
            judged = calib[name]
            judge_rate = "-" if judged["rate"] is None else f"{judged['rate']:.3f}"
            shown[name] = (
                f"corrected {name} {estimate.rate:.3f} (95% CI {estimate.ci_low:.3f}-{estimate.ci_high:.3f}, "
                f"{estimate.labelled} human labels in the estimate of {estimate.total} items; observed "
                f"{judge_rate}, {judged['count']}/{judged['total']})"
            )
    audit = SuiteAudit(
        labelled=result.labelled,
        in_estimate=result.in_estimate,
        gated=bool(touched & set(result.corrected)),
        agreement=[VerdictAgreement(**vars(agreement)) for agreement in result.agreement],
        corrected=corrected,
        notes=list(result.notes),
    )
    return audit, gate_calib, shown


def suite_gate(gate: GateResult) -> SuiteGate:
    return SuiteGate(passed=gate.passed, status=gate.status, failures=list(gate.failures), notes=list(gate.notes))


def run_gate(suites: Mapping[str, SuiteResults]) -> RunGate:
    """The run's gate from its suites' gates (the controller adds the baseline and interruption)."""
    status = worst_status(summary.gate.status for summary in suites.values())
    failures = [f"{name}: {failure}" for name, summary in suites.items() for failure in summary.gate.failures]
    return RunGate(passed=status == "pass", status=status, failures=failures)


def build_document(
    run: RunFacts,
    records: Sequence[Record],
    suites: Mapping[str, Suite],
    thresholds: Thresholds,
    *,
    audit_seed: int | None = None,
) -> ResultsDocument:
    """The document of a run: `records` carry their test node ids (see suite_results for
    `audit_seed`)."""
    summaries = {
        name: suite_results(suites.get(name), group, thresholds, audit_seed=audit_seed)
        for name, group in group_by(records, "suite").items()
    }
    return ResultsDocument(run=run, items=list(records), suites=summaries, gate=run_gate(summaries))
