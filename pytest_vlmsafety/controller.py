"""The side of a run that aggregates: a single process, or the xdist controller.

`Controller` receives each item's record on its test report, hands out GPUs to xdist workers
and picks their scheduler, and at the end of the run builds the results document (run facts,
metrics, the gates, the baseline comparison), reports each gate as a test of its own and writes
the JSON and the HTML report.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .backends import BackendSpec
from .baseline import Baseline, baseline_section, compare_to_baseline
from .document import (
    REPORT_FILENAME,
    RESULTS_FILENAME,
    GateSettings,
    GenerationSettings,
    ModelInfo,
    ResultsDocument,
    RunFacts,
    RunStats,
    Timings,
    WorkerSummary,
    parse_as,
)
from .items import Record
from .metrics import Thresholds
from .options import RunOptions
from .progress import PROGRESS_CHANNEL_KEY, ProgressBoard
from .results import build_document
from .runner import REPORT_RECORD_ATTR, WORKER_SUMMARY_KEY
from .suites import Suite

GATE_NODEID_PREFIX = "vlmsafety::gate::"


@dataclass(frozen=True)
class RunOutput:
    """What the end of the run produced: the document and where it was written."""

    document: ResultsDocument
    results_path: Path
    report_path: Path


def lost_item_record(report: pytest.TestReport) -> Record:
    """An error record for an item whose worker crashed: only its node id is known here."""
    suite, _, rest = report.nodeid.partition("::")
    category, _, item_id = rest.partition("::")
    return Record(
        id=item_id, suite=suite.split(":")[0], subset="", category=category, expected="unknown", task="open",
        prompt="", images=[], outcome="error", error=str(report.longrepr), nodeid=report.nodeid,
    )


def run_facts(
    options: RunOptions,
    spec: BackendSpec,
    suite_labels: list[str],
    summaries: list[WorkerSummary],
    workers: list[WorkerSummary],
    started: datetime,
) -> RunFacts:
    """The `run` section: the settings, the model and what the processes did. `summaries` are
    every process that ran items; `workers` those of them that were xdist workers."""
    stats = RunStats()
    for summary in summaries:
        stats = stats + summary.stats
    model = next((s.model for s in summaries if s.model), None) or ModelInfo(
        spec=spec.raw,
        id=spec.target,
        backend="hf" if spec.kind == "tiny" else spec.kind,
        noise=spec.is_noise,
    )
    finished = datetime.now(UTC)
    return RunFacts(
        plugin_version=__version__,
        started=started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 3),
        model=model,
        generation=GenerationSettings(
            max_new_tokens=options.max_new_tokens,
            batch_size=options.batch_size or "auto",
            do_sample=False,
        ),
        seed=options.seed,
        sample=options.sample,
        suites=suite_labels,
        judge=options.judge,
        judge_model=options.judge_model,
        gate=GateSettings(
            mode=options.gate,
            on=options.gate_on,
            max_undersafety=options.max_undersafety,
            max_oversafety=options.max_oversafety,
        ),
        cache=str(options.cache_dir) if options.cache_dir else None,
        generations=stats.generations,
        cache_hits=stats.cache_hits,
        timings=Timings(
            model_load_s=round(stats.model_load_s, 3),
            generation_s=round(stats.generation_s, 3),
            judge_s=round(stats.judge_s, 3),
        ),
        workers=workers,
    )


class Controller:
    def __init__(
        self,
        config: pytest.Config,
        options: RunOptions,
        spec: BackendSpec,
        suites: dict[str, Suite],
        suite_labels: list[str],
        suite_node_names: set[str],
        *,
        explicit_paths: bool,
        baseline: Baseline | None = None,
        local_summary: Callable[[], WorkerSummary] | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.spec = spec
        self.suites = suites
        self.suite_labels = suite_labels
        self.suite_node_names = suite_node_names
        self.explicit_paths = explicit_paths
        self.baseline = baseline
        # In a single process the items ran here: their summary comes from the runner.
        self.local_summary = local_summary
        self.received: dict[str, Record] = {}
        self.worker_summaries: list[WorkerSummary] = []
        self.output: RunOutput | None = None
        self.started = datetime.now(UTC)
        self._allocator: Any = None
        self._progress: ProgressBoard | None = None

    # -- receiving records -----------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_RECORD_ATTR, None)
        if data is not None:
            record = Record.from_dict(data)
        elif report.failed and report.nodeid.split("::")[0] in self.suite_node_names:
            record = lost_item_record(report)  # a worker died while running it
        else:
            return
        self.received[record.key] = record

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        result = yield
        if self._progress is not None:
            self._progress.stop()
        if not self.config.option.collectonly and self.received:
            self.finish(session)
        return result

    # -- xdist: devices, scheduling, worker summaries --------------------------------------------

    def allocator(self) -> Any:
        if self._allocator is None:
            from .devices import DeviceAllocator, visible_devices

            self._allocator = DeviceAllocator(visible_devices(self.options.devices))
        return self._allocator

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_auto_num_workers(self, config: pytest.Config) -> int | None:
        """`-n auto` with --vlm: one worker per visible GPU (the CPU count without GPUs)."""
        return len(self.allocator().devices) or None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        worker_id = node.workerinput["workerid"]
        node.workerinput["vlmsafety_device"] = self.allocator().assign(worker_id)
        node.workerinput["vlmsafety_explicit_paths"] = self.explicit_paths
        if self._progress is None:
            self._progress = ProgressBoard(self.config)
        node.workerinput[PROGRESS_CHANNEL_KEY] = self._progress.open_channel(node)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Keep a shard on one worker so it is generated as one batch: plain `-n N` (dist `load`)
        becomes loadscope, whose scope is the node id before the last `::`, our shard."""
        if config.getoption("dist") not in ("load", "loadscope"):
            return None
        from .scheduling import ShardScheduling

        return ShardScheduling(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.allocator().release(node.workerinput["workerid"])
        summary = getattr(node, "workeroutput", {}).get(WORKER_SUMMARY_KEY)
        if summary:
            self.worker_summaries.append(parse_as(WorkerSummary, summary, "worker"))

    # -- the end of the run ----------------------------------------------------------------------

    def build(self) -> ResultsDocument:
        """The results document of what was received, with the baseline comparison."""
        summaries = list(self.worker_summaries)
        if not summaries and self.local_summary is not None:
            summaries = [self.local_summary()]
        facts = run_facts(self.options, self.spec, self.suite_labels, summaries, self.worker_summaries, self.started)
        thresholds = Thresholds(self.options.max_undersafety, self.options.max_oversafety, self.options.gate_on)
        document = build_document(facts, list(self.received.values()), self.suites, thresholds)
        if self.baseline is not None:
            comparison = compare_to_baseline(document.items, self.baseline)
            document.baseline = baseline_section(
                self.baseline, comparison, max_regression=self.options.max_regression
            )
            if document.baseline.regressions:
                document.gate.passed = False
                document.gate.failures.extend(f"baseline: {message}" for message in document.baseline.regressions)
        return document

    def finish(self, session: pytest.Session) -> None:
        document = self.build()
        for suite_name, summary in document.suites.items():
            report_gate(session, suite_name, summary.gate.failures)
        if document.baseline is not None:
            report_gate(session, "baseline", document.baseline.regressions, title="regression against the baseline")
        report_dir = self.config.invocation_params.dir / self.options.report_dir
        results_path = document.write(report_dir / RESULTS_FILENAME)
        from .report.html import write_html_report

        report_path = write_html_report(document, report_dir / REPORT_FILENAME)
        self.output = RunOutput(document, results_path, report_path)


def report_gate(
    session: pytest.Session, name: str, failures: list[str], title: str = "calibration thresholds exceeded"
) -> None:
    """A gate (a suite's calibration, or the baseline), reported as a test of its own so that
    JUnit XML shows it."""
    failed = bool(failures)
    report = pytest.TestReport(
        nodeid=f"{GATE_NODEID_PREFIX}{name}",
        location=("vlmsafety", None, f"gate [{name}]"),
        keywords={"vlmsafety": 1},
        outcome="failed" if failed else "passed",
        longrepr=f"{title}:\n  " + "\n  ".join(failures) if failed else None,
        when="call",
    )
    session.testscollected += 1
    session.config.hook.pytest_runtest_logreport(report=report)
    if failed:
        session.testsfailed += 1
