"""What a run writes to the terminal: the progress line while a shard generates, and the
calibration summary at the end (read from the results document)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from .controller import RunOutput
from .document import GateStatus, GenerationSettings
from .summary import calibration_table, official_lines
from .text import printable

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


class TerminalProgress:
    """A one-line progress report with items/s while a shard generates."""

    def __init__(self, config: pytest.Config, label: str, total: int) -> None:
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capture = config.pluginmanager.get_plugin("capturemanager")
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()
        self.interactive = bool(self.reporter and self.reporter.isatty)
        self.last_draw = 0.0

    def _line(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return f"vlmsafety: {self.label}: {self.done}/{self.total} items, {self.done / elapsed:.1f} items/s"

    def _uncaptured(self) -> Any:
        """The terminal itself: generation runs inside an item's setup, under output capture."""
        return self.capture.global_and_fixture_disabled() if self.capture else contextlib.nullcontext()

    def _emit(self, text: str, *, final: bool) -> None:
        if self.reporter is None:
            return
        with self._uncaptured():
            if self.interactive:
                self.reporter.rewrite(text, bold=final)
                if final:
                    self.reporter.write("\n")
            elif final:
                self.reporter.write_line(text)

    def advance(self, count: int) -> None:
        if self.done == 0 and self.interactive and self.reporter is not None:
            with self._uncaptured():
                self.reporter.write("\n")
        self.done += count
        now = time.perf_counter()
        if now - self.last_draw > 0.2:
            self.last_draw = now
            self._emit(self._line(), final=False)

    def close(self) -> None:
        self._emit(self._line(), final=True)


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


def summary_lines(output: RunOutput) -> list[tuple[str, dict[str, bool]]]:
    """The summary's lines, each with its terminal markup (colour, bold)."""
    document = output.document
    run = document.run
    model = run.model
    lines: list[tuple[str, dict[str, bool]]] = []
    lines.append((f"model: {model.spec} ({model.id}), backend {model.backend}", {}))
    if model.noise:
        lines.append((f"WARNING: {NOISE_WARNING}", {"yellow": True, "bold": True}))
    lines += [(line, {}) for line in deployment_lines(run.generation)]
    lines += [(f"WARNING: {printable(warning)}", {"yellow": True, "bold": True}) for warning in run.warnings]
    lines += [(line, {}) for line in calibration_table(document.suites)]
    lines += [(line, {}) for line in official_lines(document.suites)]
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
        # Replayed responses are not cached (session.open_store): only a model's generations are.
        cached = run.cache and model.backend != "replay"
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
