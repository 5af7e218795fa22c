"""Builds the results document from plain records: per-suite metrics, the gate and the run's
verdict. The same on a single process and an xdist controller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .document import (
    Calibration,
    CategorySummary,
    JudgeAgreement,
    PairCounts,
    ResultsDocument,
    RunFacts,
    RunGate,
    SuiteGate,
    SuiteResults,
    parse_as,
    worst_status,
)
from .items import Record
from .judges.agreement import agreement_from_records
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
from .suites import Suite


def suite_results(suite: Suite | None, records: Sequence[Record], thresholds: Thresholds) -> SuiteResults:
    calib = calibration(records)
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
                calib,
                thresholds,
                scope=calibration_scope(records),
                errors=sum(r.outcome == "error" for r in records),
                items=len(records),
                unjudged=unjudged_counts(records),
            )
        ),
    )


def suite_gate(gate: GateResult) -> SuiteGate:
    return SuiteGate(passed=gate.passed, status=gate.status, failures=list(gate.failures), notes=list(gate.notes))


def run_gate(suites: Mapping[str, SuiteResults]) -> RunGate:
    """The run's gate from its suites' gates (the controller adds the baseline and interruption)."""
    status = worst_status(summary.gate.status for summary in suites.values())
    failures = [f"{name}: {failure}" for name, summary in suites.items() for failure in summary.gate.failures]
    return RunGate(passed=status == "pass", status=status, failures=failures)


def build_document(
    run: RunFacts, records: Sequence[Record], suites: Mapping[str, Suite], thresholds: Thresholds
) -> ResultsDocument:
    """The document of a run: `records` carry their test node ids."""
    summaries = {
        name: suite_results(suites.get(name), group, thresholds) for name, group in group_by(records, "suite").items()
    }
    return ResultsDocument(run=run, items=list(records), suites=summaries, gate=run_gate(summaries))
