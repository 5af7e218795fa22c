"""Builds the results document from plain records and what the controller gathered of the run
(`GateInputs`): per-suite metrics, the baseline comparison, and the gates, decided once
(verdict.py). The same on a single process and an xdist controller."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..items import OUTCOMES, Record
from ..judges.agreement import agreement_from_records
from ..output.document import (
    Calibration,
    CategorySummary,
    CorrectedRate,
    CorrectedRates,
    PairCounts,
    ResultsDocument,
    RunFacts,
    SuiteAudit,
    SuiteGate,
    SuiteResults,
    parse_as,
)
from ..suites import Suite
from .audit import RATE_LABELS, suite_audit
from .baseline import Baseline, baseline_section, compare_to_baseline
from .completeness import Interruption, SuiteNode, deselected_reasons
from .item_gate import failed_item_reasons
from .metrics import (
    Thresholds,
    calibration,
    calibration_scope,
    evaluate_gate,
    group_by,
    outcome_counts,
    pair_summary,
    unjudged_counts,
)
from .substitutions import classifier_substitutions, generic_scheme_of, judge_substitutions
from .verdict import GateFindings, decide_gates


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
        judge_agreement=agreement_from_records(records),
        # The gate as measured; build_document decides it with everything else the run found.
        gate=evaluate_gate(
            gate_calib,
            thresholds,
            scope=calibration_scope(records),
            errors=sum(r.outcome == "error" for r in records),
            items=len(records),
            shown=shown,
            unjudged=sum(r.outcome == "unjudged" for r in records),
            open_items=sum(r.task == "open" for r in records),
            unparsed=unjudged_counts(records),
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
        agreement=list(result.agreement),
        corrected=corrected,
        notes=list(result.notes),
    )
    return audit, gate_calib, shown


@dataclass(frozen=True)
class GateInputs:
    """What, besides the records and the thresholds, decides the gates: what the controller
    gathered of the run (see build_document)."""

    gate_mode: str = "rates"  # --safety-gate
    baseline: Baseline | None = None
    max_regression: float | None = None
    # Set when the run stopped before every collected item ran.
    interruption: Interruption | None = None
    # Per suite node, its items a selection left out; `suite_nodes` what each node holds.
    deselected: Mapping[str, int] = field(default_factory=dict)
    suite_nodes: Mapping[str, SuiteNode] = field(default_factory=dict)
    # --unsafeconcepts-classifiers DIR was given: items its classifiers did not judge are not measured.
    classifiers_asked: bool = False
    generic_scheme_of: Callable[[str], str | None] = generic_scheme_of


def build_document(
    run: RunFacts,
    records: Sequence[Record],
    suites: Mapping[str, Suite],
    thresholds: Thresholds,
    *,
    audit_seed: int | None = None,
    inputs: GateInputs | None = None,
) -> ResultsDocument:
    """The document of a run: `records` carry their test node ids (see suite_results for
    `audit_seed`). Each suite is measured, the baseline compared, and every gate decided once
    from those and the `inputs` (verdict.decide_gates); the substitutions' warnings and what
    the run left out are added to `run`."""
    inputs = inputs or GateInputs()
    summaries = {
        name: suite_results(suites.get(name), group, thresholds, audit_seed=audit_seed)
        for name, group in group_by(records, "suite").items()
    }
    deselected = deselected_reasons(inputs.deselected, inputs.suite_nodes)
    for suite in deselected:
        # A suite none of whose items was selected: an empty section, so its gate shows wherever gates show.
        summaries.setdefault(suite, SuiteResults(counts=dict.fromkeys(OUTCOMES, 0)))
    baseline = None
    if inputs.baseline is not None:
        comparison = compare_to_baseline(records, inputs.baseline)
        baseline = baseline_section(inputs.baseline, comparison, max_regression=inputs.max_regression)
    judge_warnings, judge_reasons = judge_substitutions(records, inputs.generic_scheme_of)
    classifier_warnings, classifier_reasons = classifier_substitutions(
        records, folder_given=inputs.classifiers_asked
    )
    failed_items, new_failures = failed_item_reasons(records, gate_mode=inputs.gate_mode, baseline=inputs.baseline)
    interruption = inputs.interruption
    findings = GateFindings(
        deselected=deselected,
        interrupted=interruption.suite_reasons(records) if interruption is not None else {},
        interrupted_run=interruption.message() if interruption is not None else None,
        not_measured={
            suite: classifier_reasons.get(suite, []) + judge_reasons.get(suite, [])
            for suite in sorted(classifier_reasons.keys() | judge_reasons.keys())
        },
        failed_items=failed_items,
        new_failures=new_failures,
    )
    measured_baseline = (
        SuiteGate(status=baseline.status, failures=baseline.failures, notes=baseline.notes) if baseline else None
    )
    decision = decide_gates({name: summary.gate for name, summary in summaries.items()}, findings, measured_baseline)
    for name, gate in decision.suites.items():
        summaries[name].gate = gate
    if baseline is not None and decision.baseline is not None:
        baseline.status, baseline.failures = decision.baseline.status, decision.baseline.failures
    run.warnings += judge_warnings + classifier_warnings
    if interruption is not None:
        run.interrupted, run.items_not_run = True, interruption.missing
    if inputs.deselected:
        run.items_deselected = sum(inputs.deselected.values())
    return ResultsDocument(run=run, items=list(records), suites=summaries, gate=decision.run, baseline=baseline)
