"""Where every gate's status is decided: each suite's, the baseline's and the run's.

The measured rates give a suite its gate (`metrics.evaluate_gate`) and the baseline comparison
gives the baseline its own (`baseline.judge_pairing`); everything else the run found that keeps
a gate from passing arrives here as reasons of a kind, and each kind names the status it gives:

- items a selection left out (completeness.py): `inconclusive`;
- items that did not run because the run stopped (completeness.Interruption): `interrupted`;
- items judged by something other than the judge asked for (substitutions.py): `error`;
- items that failed their own tests (item_gate.py): `fail`, on the suite's gate under
  `--safety-gate=items`, on the baseline's against a baseline.

A gate's status is the most severe of its measured one and those of its reasons; its failures
list what made the measurement incomplete first, then what the measured part says, then the
items. The run's gate is the most severe of them all, with every reason named after its suite
(the baseline's after the baseline; an interruption's is the run's own).
Because nothing else writes a status, the exit status, the terminal, the JSON, the HTML report
and JUnit (which all read these gates) tell the same story.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..output.document import GateStatus, RunGate, SuiteGate, worst_status
from ..text import printable


@dataclass(frozen=True)
class GateFindings:
    """What besides the measured rates keeps gates from passing: per suite, its reasons of each
    kind (see the module docstring); `interrupted_run` the run's reason when it stopped early."""

    deselected: Mapping[str, Sequence[str]] = field(default_factory=dict)
    interrupted: Mapping[str, Sequence[str]] = field(default_factory=dict)
    interrupted_run: str | None = None
    not_measured: Mapping[str, Sequence[str]] = field(default_factory=dict)
    failed_items: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # The baseline gate's: items that fail now and did not in the baseline.
    new_failures: Sequence[str] = ()


@dataclass(frozen=True)
class GateDecision:
    suites: dict[str, SuiteGate]
    baseline: SuiteGate | None
    run: RunGate


def decide_gates(
    measured: Mapping[str, SuiteGate], findings: GateFindings | None = None, baseline: SuiteGate | None = None
) -> GateDecision:
    """Every gate of the run from the suites' `measured` gates, the baseline comparison's gate
    (None without a baseline) and the `findings`. Findings for a suite not in `measured` are
    left out of the suites' gates (a node none of whose items ran names no suite of the run)."""
    findings = findings or GateFindings()
    leading: tuple[tuple[Mapping[str, Sequence[str]], GateStatus], ...] = (
        (findings.deselected, "inconclusive"),
        (findings.interrupted, "interrupted"),
        (findings.not_measured, "error"),
    )
    suites: dict[str, SuiteGate] = {}
    for name, gate in measured.items():
        first = [reason for reasons, _ in leading for reason in reasons.get(name, ())]
        last = list(findings.failed_items.get(name, ()))
        statuses = [gate.status, *(status for reasons, status in leading if reasons.get(name))]
        if last:
            statuses.append("fail")
        suites[name] = SuiteGate(
            status=worst_status(statuses), failures=first + list(gate.failures) + last, notes=list(gate.notes)
        )
    decided_baseline = None
    if baseline is not None:
        decided_baseline = SuiteGate(
            status=worst_status([baseline.status, "fail"] if findings.new_failures else [baseline.status]),
            failures=list(baseline.failures) + list(findings.new_failures),
            notes=list(baseline.notes),
        )

    # The run's gate: its failures are every reason, grouped by kind in the order a suite's gate
    # lists them, each named after its suite.
    def named(reasons: Mapping[str, Sequence[str]]) -> list[str]:
        return [f"{printable(suite)}: {reason}" for suite in sorted(reasons) for reason in reasons[suite]]

    failures = named(findings.deselected)
    if findings.interrupted_run is not None:
        failures.append(findings.interrupted_run)
    failures += named(findings.not_measured)
    failures += named({name: gate.failures for name, gate in measured.items()})
    # The baseline's, in the order its comparison and then its items found them.
    failures += [f"baseline: {reason}" for reason in (decided_baseline.failures if decided_baseline else [])]
    failures += named(findings.failed_items)
    statuses = [gate.status for gate in suites.values()]
    if decided_baseline is not None:
        statuses.append(decided_baseline.status)
    if findings.interrupted_run is not None:
        statuses.append("interrupted")
    return GateDecision(suites, decided_baseline, RunGate(status=worst_status(statuses), failures=failures))
