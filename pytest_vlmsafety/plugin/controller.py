"""The side of a run that aggregates: a single process, or the xdist controller.

`Controller` receives each item's record on its test report, hands out GPUs to xdist workers
and picks their scheduler, and at the end of the run builds the results document (run facts,
metrics, the gates, the baseline comparison), reports each gate as a test of its own and writes
the JSON and the HTML report.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .. import __version__
from ..backends import BackendSpec
from ..distributed.cases_channel import CASE_CHANNEL_KEY, CaseBoard, MarkedCase
from ..gate.audit import AuditLabels, draw_audit, label_warnings
from ..gate.baseline import Baseline
from ..gate.completeness import Interruption, SuiteNode, deselected_counts, remove_stale_results, stale_note
from ..gate.evaluation import GateInputs, build_document
from ..gate.metrics import Thresholds
from ..items import REPORT_RECORD_ATTR, WORKER_SUMMARY_KEY, Record
from ..judges.facts import judge_facts
from ..options import json_value
from ..output.audit_file import AUDIT_FILENAME, audit_line, dump_line
from ..output.document import (
    REPORT_FILENAME,
    RESULTS_FILENAME,
    AuditSection,
    GateSettings,
    GateStatus,
    GenerationSettings,
    ModelInfo,
    ResultsDocument,
    RunFacts,
    RunStats,
    Timings,
    WorkerSummary,
    parse_as,
    write_text_atomic,
)
from ..suites import Suite
from ..suites.registry import UNSAFECONCEPTS_CLASSIFIERS_FLAG, registered_option_values
from .progress import PROGRESS_CHANNEL_KEY, ProgressBoard
from .run_options import RunOptions

T = TypeVar("T")

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


def lost_case_record(report: pytest.TestReport, case: MarkedCase) -> Record:
    """An error record for a `vlmsafety_case` test whose worker crashed, from what the worker
    announced of it (cases_channel)."""
    return Record(
        id=case.id, suite=case.suite, category=case.category, expected=case.expected, task="open",
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
        backend=spec.backend.reported_as,
        noise=spec.is_noise,
    )
    finished = datetime.now(UTC)
    return RunFacts(
        plugin_version=__version__,
        started=started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 3),
        model=model,
        generation=settings_view(GenerationSettings, options.generation),
        seed=options.data.seed,
        sample=options.data.sample,
        suites=suite_labels,
        judge=options.judging.judge,
        judge_model=options.judging.model,
        judge_facts=judge_facts(options.judging),
        gate=settings_view(GateSettings, options.gate),
        cache=str(options.output.cache_dir) if options.output.cache_dir else None,
        # The registered suites' own options as each suite sees them, next to ours.
        config={**options.configs(), "suites": json_value(registered_option_values())},
        generations=stats.generations,
        cache_hits=stats.cache_hits,
        timings=Timings(
            model_load_s=round(stats.model_load_s, 3),
            generation_s=round(stats.generation_s, 3),
            judge_s=round(stats.judge_s, 3),
        ),
        workers=workers,
    )


def settings_view(view: type[T], config: object) -> T:
    """`run.generation` and `run.gate` as the results have always had them: the config's
    attributes of the same names (`run.config` holds every config whole)."""
    return view(**{item.name: getattr(config, item.name) for item in dataclasses.fields(view)})  # type: ignore[arg-type]


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
        audit_labels: AuditLabels | None = None,
        suite_nodes: Mapping[str, SuiteNode] | None = None,
    ) -> None:
        self.config = config
        self.audit_labels = audit_labels
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
        # The node ids of the safety items collected for this run, to tell a run that stopped
        # early (Ctrl-C, -x, a lost worker) from a complete one.
        self.planned: set[str] = set()
        # What each suite node holds, to tell a selection (-k, --lf) from the whole suite.
        self.suite_nodes: dict[str, SuiteNode] = dict(suite_nodes or {})
        self.stale_removed: list[Path] = []
        self.worker_summaries: list[WorkerSummary] = []
        self.output: RunOutput | None = None
        self.started = datetime.now(UTC)
        self._allocator: Any = None
        self._progress: ProgressBoard | None = None
        # The vlmsafety_case tests the xdist workers collected, for a crash inside one.
        self.cases = CaseBoard()

    # -- receiving records -----------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_RECORD_ATTR, None)
        if data is not None:
            record = Record.from_dict(data)
        elif report.failed and report.nodeid.split("::")[0] in self.suite_node_names:
            record = lost_item_record(report)  # a worker died while running it
        elif report.failed and (case := self.cases.get(report.nodeid)) is not None:
            record = lost_case_record(report, case)  # a worker died inside a marked test
            if record.key in self.received:
                return  # judged already: a later failure (teardown) does not replace the record
        else:
            return
        self.received[record.key] = record

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """A single process collects the items itself (under xdist the workers do)."""
        self._plan(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._plan(ids)

    def _plan(self, nodeids: Iterable[str]) -> None:
        self.planned.update(nodeid for nodeid in nodeids if nodeid.split("::")[0] in self.suite_node_names)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if self.config.option.collectonly:
            return (yield)
        try:
            result = yield
        # Ctrl-C, and -x / --maxfail (xdist stops with Interrupted, a KeyboardInterrupt; a single
        # process with Failed): what finished so far is written, marked interrupted, then the
        # run ends as pytest ends it (exit status 2 on Ctrl-C).
        except (KeyboardInterrupt, pytest.Session.Failed):
            self._stop_progress()
            if self.received or self.planned:
                self.finish(session, stopped=True)
            raise
        self._stop_progress()
        # A selection that left out suite items decides nothing about those suites: it is
        # reported (an inconclusive gate), even when no suite item was selected at all.
        if self.received or self.deselected():
            self.finish(session)
        return result

    def deselected(self) -> dict[str, int]:
        """Per suite node, its items that a selection left out of the collected ones."""
        return deselected_counts(self.suite_nodes, self.planned)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """A run that wrote no results (nothing selected, a usage or collection error) leaves no
        earlier run's results behind: a CI step reading them would read that run's verdict."""
        if self.output is None and not self.config.option.collectonly:
            report_dir = self.config.invocation_params.dir / self.options.output.report_dir
            self.stale_removed = remove_stale_results(report_dir)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.stale_removed:
            terminalreporter.write_line(f"vlmsafety: {stale_note(self.stale_removed)}", yellow=True)

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    # -- xdist: devices, scheduling, worker summaries --------------------------------------------

    def allocator(self) -> Any:
        if self._allocator is None:
            from ..distributed.devices import DeviceAllocator, visible_devices

            self._allocator = DeviceAllocator(visible_devices(self.options.model.devices))
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
        node.workerinput[CASE_CHANNEL_KEY] = self.cases.open_channel(node)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Keep a shard on one worker so it is generated as one batch: plain `-n N` (dist `load`)
        becomes loadscope, whose scope is the node id before the last `::`, our shard."""
        if config.getoption("dist") not in ("load", "loadscope"):
            return None
        from ..distributed.scheduling import ShardScheduling

        return ShardScheduling(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.allocator().release(node.workerinput["workerid"])
        summary = getattr(node, "workeroutput", {}).get(WORKER_SUMMARY_KEY)
        if summary:
            self.worker_summaries.append(parse_as(WorkerSummary, summary, "worker"))

    # -- the end of the run ----------------------------------------------------------------------

    def build(self, *, stopped: bool = False) -> ResultsDocument:
        """The results document of what was received: the controller gathers what decides the
        gates (the baseline, what did not run or was deselected, the options) and build_document
        decides them. `stopped`: the run loop ended early (Ctrl-C, -x)."""
        summaries = list(self.worker_summaries)
        if not summaries and self.local_summary is not None:
            summaries = [self.local_summary()]
        facts = run_facts(self.options, self.spec, self.suite_labels, summaries, self.worker_summaries, self.started)
        gate_config = self.options.gate
        audit_seed = self.options.data.seed if self.audit_labels is not None else None
        not_run = self.not_run()
        inputs = GateInputs(
            gate_mode=gate_config.mode,
            baseline=self.baseline,
            max_regression=gate_config.max_regression,
            # Items that did not run mark the run interrupted, even when the loop ended normally (a lost worker).
            interruption=Interruption(not_run, len(self.planned)) if stopped or not_run else None,
            deselected=self.deselected(),
            suite_nodes=self.suite_nodes,
            classifiers_asked=registered_option_values()[UNSAFECONCEPTS_CLASSIFIERS_FLAG] is not None,
        )
        document = build_document(
            facts, list(self.received.values()), self.suites, Thresholds.of(gate_config), audit_seed=audit_seed,
            inputs=inputs,
        )
        document.audit = audit_facts(document, self.options, self.audit_labels)
        return document

    def not_run(self) -> dict[str, int]:
        """Per suite node, the collected items that reported no outcome."""
        done = {record.nodeid for record in self.received.values()}
        missing = Counter(nodeid.split("::")[0] for nodeid in self.planned - done)
        return dict(sorted(missing.items()))

    def finish(self, session: pytest.Session, *, stopped: bool = False) -> None:
        """Build the document, report the gates as tests and write the files. `stopped`: the
        run loop ended early (Ctrl-C, -x)."""
        document = self.build(stopped=stopped)
        for suite_name, summary in document.suites.items():
            report_gate(session, suite_name, summary.gate.failures, status=summary.gate.status)
        if document.baseline is not None:
            report_gate(
                session, "baseline", document.baseline.failures,
                title="regression against the baseline", status=document.baseline.status,
            )
        report_dir = self.config.invocation_params.dir / self.options.output.report_dir
        if document.audit is not None and document.audit.size is not None:
            audit_path = write_audit_file(document, report_dir / AUDIT_FILENAME)
            document.audit.file = str(audit_path)
        results_path = document.write(report_dir / RESULTS_FILENAME)
        from ..output.html import write_html_report

        report_path = write_html_report(document, report_dir / REPORT_FILENAME)
        self.output = RunOutput(document, results_path, report_path)


def audit_facts(document: ResultsDocument, options: RunOptions, labels: AuditLabels | None) -> AuditSection | None:
    """The run's audit section: the sample of --safety-audit and what the labels did."""
    size, seed = options.output.audit_size, options.data.seed
    if size is None and labels is None:
        return None
    section = AuditSection(size=size, seed=seed)
    if size is not None:
        section.sample = [record.key for record in draw_audit(document.items, size, seed)]
    if labels is not None:
        section.label_files = list(labels.files)
        section.label_lines = labels.lines
        section.labelled = sum(record.human_label is not None for record in document.items)
        section.warnings = label_warnings(labels, document.items)
    return section


def write_audit_file(document: ResultsDocument, path: Path) -> Path:
    """vlmsafety-audit.jsonl: one line per drawn item, in the order to label them."""
    by_key = {record.key: record for record in document.items}
    assert document.audit is not None
    lines = [dump_line(audit_line(by_key[key])) + "\n" for key in document.audit.sample]
    return write_text_atomic("".join(lines), path)


def report_gate(
    session: pytest.Session,
    name: str,
    failures: list[str],
    title: str = "calibration thresholds exceeded",
    *,
    status: GateStatus | None = None,
) -> None:
    """A gate (a suite's calibration, or the baseline), reported as a test of its own so that
    JUnit XML shows it: passed only when its status is `pass`; an `error` gate is an error
    (failed in setup), any other status a failure whose message starts with the status.
    Without a status, the gate fails when there are failures."""
    status = status or ("fail" if failures else "pass")
    failed = status != "pass"
    if failed and status != "fail":
        title = f"gate {status}"
    report = pytest.TestReport(
        nodeid=f"{GATE_NODEID_PREFIX}{name}",
        location=("vlmsafety", None, f"gate [{name}]"),
        keywords={"vlmsafety": 1},
        outcome="failed" if failed else "passed",
        longrepr=f"{title}:\n  " + "\n  ".join(failures or [status]) if failed else None,
        when="setup" if status == "error" else "call",
    )
    session.testscollected += 1
    session.config.hook.pytest_runtest_logreport(report=report)
    if failed:
        session.testsfailed += 1
