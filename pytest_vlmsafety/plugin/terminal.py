"""What a run writes to the terminal at the end: the calibration summary, read from the results
document (the live progress line is progress.py's)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..backends import BACKEND_KINDS
from ..output.document import AuditSection, GateStatus, GenerationSettings, SuiteResults
from ..output.tables import audit_lines, calibration_table, official_lines, unjudged_lines
from ..text import printable
from .controller import RunOutput

# Only PASSED passes; the other words are the gate's status (see document.GateStatus).
GATE_WORDS: dict[GateStatus, str] = {
    "pass": "PASSED",
    "fail": "FAILED",
    "inconclusive": "INCONCLUSIVE (not passed)",
    "error": "ERROR (not passed)",
    "interrupted": "INTERRUPTED (not passed)",
}

NOISE_WARNING = (
    "the model is tiny-random: randomly initialised, so its output is noise. "
    "These numbers check the wiring of the pipeline, not a model's safety."
)


class SummaryReporter:
    """The calibration summary in pytest's terminal summary, once the run has its results."""

    def __init__(self, output: Callable[[], RunOutput | None]) -> None:
        self.output = output

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        output = self.output()
        if output is None:
            return
        terminalreporter.write_sep("=", "vlm safety calibration")
        for line, markup in summary_lines(output):
            terminalreporter.write_line(line, **markup)


def deployment_lines(generation: GenerationSettings) -> list[str]:
    """How the model was run when not greedy and without a system turn. The system prompt is
    named by its length and hash, not printed: the JSON and the report hold the text."""
    lines = []
    if generation.system_prompt is not None:
        digest = (generation.system_prompt_sha256 or "")[:12]
        lines.append(f"system prompt: {len(generation.system_prompt)} characters, sha256 {digest}")
    if generation.do_sample:
        seed = generation.seed if generation.seed is not None else "none (not reproducible)"
        lines.append(
            f"sampling: temperature {generation.temperature:g}, top-p {generation.top_p:g}, seed {seed}, "
            f"{generation.samples} sample(s) an item, the worst deciding"
        )
    return lines


def audit_summary_lines(
    audit: AuditSection | None, suites: Mapping[str, SuiteResults]
) -> list[tuple[str, dict[str, bool]]]:
    """The human audit: how many items a human checked, the judge's agreement, labels that
    judged nothing (yellow), and where the file to label is."""
    if audit is None:
        return []
    lines: list[tuple[str, dict[str, bool]]] = []
    if audit.label_files:
        lines.append((
            f"human audit: {audit.labelled} items checked by a human ({audit.label_lines} labels read from "
            f"{len(audit.label_files)} file(s)); corrected rates: judge's count corrected by the labels, 95% CI",
            {"bold": True},
        ))
    lines += [(line, {}) for line in audit_lines(suites)]
    lines += [(f"audit label ignored: {printable(warning)}", {"yellow": True}) for warning in audit.warnings]
    if audit.file:
        lines.append((
            f"audit sample: {len(audit.sample)} items to label in {audit.file} (or the report's Audit view); "
            "pass it back with --safety-audit-labels",
            {},
        ))
    return lines


def summary_lines(output: RunOutput) -> list[tuple[str, dict[str, bool]]]:
    """The summary's lines, each with its terminal markup (colour, bold)."""
    document = output.document
    run = document.run
    model = run.model
    lines: list[tuple[str, dict[str, bool]]] = []
    # The tiny model's id is the folder it was built in, known only when it was loaded: a cached
    # run would name it differently.
    shown = model.spec if model.noise or model.id == model.spec else f"{model.spec} ({model.id})"
    lines.append((f"model: {shown}, backend {model.backend}", {}))
    if model.noise:
        lines.append((f"WARNING: {NOISE_WARNING}", {"yellow": True, "bold": True}))
    lines += [(line, {}) for line in deployment_lines(run.generation)]
    lines += [(f"WARNING: {printable(warning)}", {"yellow": True, "bold": True}) for warning in run.warnings]
    lines += [(line, {}) for line in calibration_table(document.suites)]
    lines += [(line, {}) for line in official_lines(document.suites)]
    lines += audit_summary_lines(document.audit, document.suites)
    lines += [(line, {"yellow": True}) for line in unjudged_lines(document.suites)]
    lines.append((f"generations: {run.generations}, cache hits: {run.cache_hits}", {}))
    for worker in run.workers:
        stats = worker.stats
        lines.append((
            f"worker {worker.worker_id or '?'}: device {worker.shown_device}, load {stats.model_load_s:.1f}s, "
            f"{stats.generations} generated in {stats.generation_s:.1f}s",
            {},
        ))
    gate = document.gate
    colour = "green" if gate.passed else "yellow" if gate.status == "inconclusive" else "red"
    lines.append((f"calibration gate: {GATE_WORDS[gate.status]}", {colour: True, "bold": True}))
    lines += [(f"  {printable(failure)}", {colour: True}) for failure in gate.failures]
    if run.interrupted:
        kind = BACKEND_KINDS.get(model.backend) if model.backend else None
        cached = run.cache and (kind is None or kind.caches_generations)
        rerun = f" (generations made so far are in the cache {run.cache})" if cached else ""
        lines.append((f"the files hold the {len(document.items)} items that finished; rerun to complete{rerun}", {}))
    baseline = document.baseline
    if baseline is not None:
        lines += [(f"baseline: {note}", {"yellow": True}) for note in baseline.notes]
        for suite, comparison in baseline.suites.items():
            lines.append((
                f"against baseline {baseline.path}: {suite}: {len(comparison.newly_undersafe)} newly undersafe, "
                f"{len(comparison.newly_oversafe)} newly oversafe, {len(comparison.newly_fixed)} fixed",
                {},
            ))
    lines.append((f"results: {output.results_path}", {}))
    lines.append((f"report:  {output.report_path}", {}))
    return lines
