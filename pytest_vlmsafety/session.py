"""The active run: the plugin object registered when `--vlm` is given.

Hook glue only; the work happens in engine.py (generation and judging), metrics.py and
results.py (aggregation). On an xdist controller this object never generates: it receives records
on the workers' reports and aggregates them.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .backends import BackendSpec, parse_backend_spec
from .baseline import Baseline, baseline_section, compare_to_baseline, is_known_failure, load_baseline
from .collect import SafetyItemError, SafetyMismatch, SafetyTestItem, SuiteCollector, describe_failure, node_name
from .engine import Engine, RunStats, item_key
from .errors import ConfigError, DataError
from .items import Record, SafetyItem
from .metrics import Thresholds
from .options import RunOptions
from .results import REPORT_FILENAME, RESULTS_FILENAME, build_results, write_json_atomic
from .sampling import stratified_sample
from .suites import SuiteSelection, resolve_suite
from .summary import calibration_table, official_lines
from .text import printable, printable_lines

SESSION_KEY = pytest.StashKey["SafetySession"]()
DEFAULT_SUITE = "sample"
NOISE_WARNING = (
    "the model is tiny-random: randomly initialised, so its output is noise. "
    "These numbers check the wiring of the pipeline, not a model's safety."
)


def start_session(config: pytest.Config, options: RunOptions) -> SafetySession:
    """Resolve the model and suites and load the items, turning bad input into usage errors."""
    try:
        spec = parse_backend_spec(options.vlm or "")
        selections = [resolve_suite(name) for name in options.suites or (DEFAULT_SUITE,)]
        if options.download and not hasattr(config, "workerinput"):
            download_data(selections, options)
        loaded = [(selection, load_selection(selection, options)) for selection in selections]
        baseline = load_baseline(options.baseline) if options.baseline else None
        if not hasattr(config, "workerinput"):
            from .preflight import check_run

            check_run(config.invocation_params.dir, options, spec, loaded)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(f"pytest-vlmsafety: {exc}") from None
    session = SafetySession(config, options, spec, loaded, baseline)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "vlmsafety-session")
    if session.html_extras and not session.is_worker:
        from .report.pytest_html import PytestHtmlExtras

        config.pluginmanager.register(PytestHtmlExtras(lambda: session.results), "vlmsafety-pytest-html")
    return session


def download_data(selections: list[SuiteSelection], options: RunOptions) -> None:
    from .download import HUB_SUITES, download_suite_data

    if options.data_root is None:
        raise ConfigError("--safety-download needs --safety-data DIR: the folder to download into")
    for name in sorted({s.suite.name for s in selections} & set(HUB_SUITES)):
        download_suite_data(name, options.data_root)


def open_store(config: pytest.Config, options: RunOptions, spec: BackendSpec) -> Any:
    """The generation cache for this model and these generation parameters, or None when off.
    Replayed responses are not cached: reading them again is as cheap as the cache."""
    if options.cache_dir is None or spec.kind == "replay":
        return None
    from .backends import store_identity
    from .cache import Cache, GenerationStore

    cache = Cache(config.invocation_params.dir / options.cache_dir)
    fingerprint, params = store_identity(spec, options, cache)
    return GenerationStore(cache, fingerprint, params)


def load_selection(selection: SuiteSelection, options: RunOptions) -> list[SafetyItem]:
    items = selection.suite.load(options.data_root, selection.subset)
    if options.sample is not None:
        items = stratified_sample(items, options.sample, options.seed)
    return items


def lost_item_record(report: pytest.TestReport) -> dict[str, Any]:
    """An error record for an item whose worker crashed: only its node id is known here."""
    suite, _, rest = report.nodeid.partition("::")
    category, _, item_id = rest.partition("::")
    suite_name = suite.split(":")[0]
    return Record(
        id=item_id, suite=suite_name, subset="", category=category, expected="unknown", task="open",
        prompt="", images=[], outcome="error", error=str(report.longrepr),
    ).to_dict() | {"nodeid": report.nodeid}


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


class SafetySession:
    def __init__(
        self,
        config: pytest.Config,
        options: RunOptions,
        backend_spec: BackendSpec,
        loaded: list[tuple[SuiteSelection, list[SafetyItem]]],
        baseline: Baseline | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.backend_spec = backend_spec
        self.loaded = loaded
        self.suites = {selection.suite.name: selection.suite for selection, _ in loaded}
        self.suite_node_names = {node_name(selection.label) for selection, _ in loaded}
        self.is_worker = hasattr(config, "workerinput")
        self.baseline = baseline
        # Only when a pytest-html report is asked for: extras cost a rendering per item.
        self.html_extras = config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))
        self.engine = Engine(
            options,
            backend_spec,
            self.suites,
            progress_factory=None if self.is_worker else lambda label, total: TerminalProgress(config, label, total),
            store_factory=lambda: open_store(config, options, backend_spec),
            base_dir=config.invocation_params.dir,
        )
        self.shards: dict[str, list[SafetyItem]] = {}
        self.received: dict[str, dict[str, Any]] = {}
        self.worker_summaries: list[dict[str, Any]] = []
        self.results: dict[str, Any] | None = None
        self.results_path: Path | None = None
        self.report_path: Path | None = None
        self.started = datetime.now(UTC)
        workerinput = getattr(config, "workerinput", {})
        # Workers get the controller's decision: xdist hands them the testpaths as explicit args.
        self.explicit_paths = workerinput.get(
            "vlmsafety_explicit_paths", config.args_source == pytest.Config.ArgsSource.ARGS
        )
        self.worker_id = workerinput.get("workerid")
        self.device = workerinput.get("vlmsafety_device")
        self._allocator: Any = None

    # -- collection ------------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """A safety run given no paths runs only the suites; pass paths to run your tests alongside."""
        return None if self.explicit_paths else True

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        seen: set[str] = set()
        for selection, suite_items in self.loaded:
            unique = [i for i in suite_items if item_key(i) not in seen]
            seen.update(item_key(i) for i in unique)
            name = node_name(selection.label)
            suite_node = SuiteCollector.from_parent(session, name=name, nodeid=name, items=unique)
            # Through pytest's own collection protocol, so reporters count the items and a broken
            # collector shows as a collection error.
            items.extend(session.genitems(suite_node))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Shards hold the items that survived -k/-m deselection: only those are generated."""
        for item in session.items:
            if isinstance(item, SafetyTestItem):
                assert item.parent is not None
                self.shards.setdefault(item.parent.nodeid, []).append(item.safety_item)

    # -- running ---------------------------------------------------------------------------------

    def record_for(self, test_item: SafetyTestItem) -> Record:
        key = item_key(test_item.safety_item)
        if key not in self.engine.records:
            assert test_item.parent is not None
            shard = self.shards.get(test_item.parent.nodeid) or [test_item.safety_item]
            self.engine.run_shard(shard, label=test_item.parent.nodeid)
        return self.engine.records[key]

    def check_outcome(self, test_item: SafetyTestItem, record: Record) -> None:
        if record.outcome == "pass":
            return
        if record.outcome == "error":
            raise SafetyItemError(printable_lines(record.error or "error"))
        why = printable(f"{record.outcome}: judge {record.judge} says {record.verdict} ({record.reason})")
        if self.baseline is not None:
            # Under a baseline the question is "did it get worse?": old failures are expected,
            # new ones fail whatever the gate mode.
            if is_known_failure(self.baseline, record.suite, record.id, record.outcome):
                pytest.xfail(f"known failure in the baseline: {why}")
            raise SafetyMismatch("new failure (not in the baseline)\n" + describe_failure(record))
        if self.options.gate == "items":
            raise SafetyMismatch(describe_failure(record))
        pytest.xfail(why)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if isinstance(item, SafetyTestItem):
            if call.excinfo is not None and call.excinfo.errisinstance((SafetyItemError, SafetyMismatch)):
                report.longrepr = str(call.excinfo.value)  # the message is the whole story, not a traceback
            decisive = call.when == "call" or (call.when == "setup" and report.failed)
            key = item_key(item.safety_item)
            if decisive and key in self.engine.records:
                record = self.engine.records[key]
                report.vlmsafety_record = {**record.to_dict(), "nodeid": item.nodeid}
                if self.html_extras:
                    from .report.pytest_html import add_item_extras

                    add_item_extras(report, report.vlmsafety_record)
                report.user_properties.append(("vlmsafety_outcome", record.outcome))
                if record.verdict is not None:
                    report.user_properties.append(("vlmsafety_verdict", printable(record.verdict)))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        record = getattr(report, "vlmsafety_record", None)
        if record is None and report.failed and report.nodeid.split("::")[0] in self.suite_node_names:
            record = lost_item_record(report)  # a worker died while running it
        if record is not None:
            self.received[f"{record['suite']}::{record['id']}"] = record

    # -- the end of the run ----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        if not self.is_worker and not self.config.option.collectonly and self.received:
            self.finish(session)
        return result

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            self.config.workeroutput["vlmsafety"] = self.local_summary()  # type: ignore[attr-defined]

    # -- xdist: devices, scheduling, worker summaries ----------------------------------------------

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
        worker_id = node.workerinput["workerid"]
        self.allocator().release(worker_id)
        summary = getattr(node, "workeroutput", {}).get("vlmsafety")
        if summary:
            self.worker_summaries.append(summary)

    def local_summary(self) -> dict[str, Any]:
        backend = self.engine._backend
        return {
            "worker_id": self.worker_id,
            "device": self.device,
            "model": backend.describe() if backend else None,
            "stats": self.engine.stats.to_dict(),
        }

    def run_facts(self) -> dict[str, Any]:
        summaries = self.worker_summaries or [self.local_summary()]
        stats = RunStats()
        for summary in summaries:
            for name, value in summary["stats"].items():
                setattr(stats, name, getattr(stats, name) + value)
        model = next((s["model"] for s in summaries if s["model"]), None) or {
            "spec": self.backend_spec.raw,
            "id": self.backend_spec.target,
            "backend": "hf" if self.backend_spec.kind == "tiny" else self.backend_spec.kind,
            "noise": self.backend_spec.is_noise,
        }
        finished = datetime.now(UTC)
        return {
            "plugin_version": __version__,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "duration_s": round((finished - self.started).total_seconds(), 3),
            "model": model,
            "generation": {
                "max_new_tokens": self.options.max_new_tokens,
                "batch_size": self.options.batch_size or "auto",
                "do_sample": False,
            },
            "seed": self.options.seed,
            "sample": self.options.sample,
            "suites": [selection.label for selection, _ in self.loaded],
            "judge": self.options.judge,
            "judge_model": self.options.judge_model,
            "gate": {
                "mode": self.options.gate,
                "on": self.options.gate_on,
                "max_undersafety": self.options.max_undersafety,
                "max_oversafety": self.options.max_oversafety,
            },
            "cache": str(self.options.cache_dir) if self.options.cache_dir else None,
            "generations": stats.generations,
            "cache_hits": stats.cache_hits,
            "timings": {
                "model_load_s": round(stats.model_load_s, 3),
                "generation_s": round(stats.generation_s, 3),
                "judge_s": round(stats.judge_s, 3),
            },
            "workers": self.worker_summaries,
        }

    def thresholds(self) -> Thresholds:
        return Thresholds(self.options.max_undersafety, self.options.max_oversafety, self.options.gate_on)

    def finish(self, session: pytest.Session) -> None:
        records = [Record.from_dict(data) for data in self.received.values()]
        nodeids = {key: data.get("nodeid") for key, data in self.received.items()}
        self.results = build_results(self.run_facts(), records, self.suites, self.thresholds(), nodeids)
        for suite_name, summary in self.results["suites"].items():
            self.report_gate(session, suite_name, summary["gate"])
        if self.baseline is not None:
            self.compare_with_baseline(session, self.results)
        report_dir = self.config.invocation_params.dir / self.options.report_dir
        self.results_path = write_json_atomic(self.results, report_dir / RESULTS_FILENAME)
        from .report.html import write_html_report

        self.report_path = write_html_report(self.results, report_dir / REPORT_FILENAME)

    def compare_with_baseline(self, session: pytest.Session, results: dict[str, Any]) -> None:
        assert self.baseline is not None
        comparison = compare_to_baseline(results["items"], self.baseline)
        section = baseline_section(self.baseline, comparison, max_regression=self.options.max_regression)
        results["baseline"] = section
        gate = {"passed": not section["regressions"], "failures": section["regressions"]}
        self.report_gate(session, "baseline", gate, title="regression against the baseline")
        if section["regressions"]:
            results["gate"]["passed"] = False
            results["gate"]["failures"].extend(f"baseline: {message}" for message in section["regressions"])

    def report_gate(
        self, session: pytest.Session, name: str, gate: dict[str, Any], title: str = "calibration thresholds exceeded"
    ) -> None:
        """A gate (a suite's calibration, or the baseline), reported as a test of its own so that
        JUnit XML shows it."""
        failed = not gate["passed"]
        report = pytest.TestReport(
            nodeid=f"vlmsafety::gate::{name}",
            location=("vlmsafety", None, f"gate [{name}]"),
            keywords={"vlmsafety": 1},
            outcome="failed" if failed else "passed",
            longrepr=f"{title}:\n  " + "\n  ".join(gate["failures"]) if failed else None,
            when="call",
        )
        session.testscollected += 1
        self.config.hook.pytest_runtest_logreport(report=report)
        if failed:
            session.testsfailed += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.results is None:
            return
        tr = terminalreporter
        tr.write_sep("=", "vlm safety calibration")
        model = self.results["run"]["model"]
        tr.write_line(f"model: {model.get('spec')} ({model.get('id')}), backend {model.get('backend')}")
        if model.get("noise"):
            tr.write_line(f"WARNING: {NOISE_WARNING}", yellow=True, bold=True)
        for line in calibration_table(self.results["suites"]):
            tr.write_line(line)
        for line in official_lines(self.results["suites"]):
            tr.write_line(line)
        run = self.results["run"]
        tr.write_line(f"generations: {run['generations']}, cache hits: {run['cache_hits']}")
        for worker in run["workers"]:
            device = worker.get("device") or (worker.get("model") or {}).get("device")
            stats = worker["stats"]
            tr.write_line(
                f"worker {worker.get('worker_id', '?')}: device {device}, load {stats['model_load_s']:.1f}s, "
                f"{stats['generations']} generated in {stats['generation_s']:.1f}s"
            )
        gate = self.results["gate"]
        if gate["passed"]:
            tr.write_line("calibration gate: PASSED", green=True, bold=True)
        else:
            tr.write_line("calibration gate: FAILED", red=True, bold=True)
            for failure in gate["failures"]:
                tr.write_line(f"  {printable(failure)}", red=True)
        baseline = self.results.get("baseline")
        if baseline:
            for suite, comparison in baseline["suites"].items():
                flips = {k: len(comparison.get(k) or []) for k in ("newly_undersafe", "newly_oversafe", "newly_fixed")}
                tr.write_line(
                    f"against baseline {baseline['path']}: {suite}: {flips['newly_undersafe']} newly undersafe, "
                    f"{flips['newly_oversafe']} newly oversafe, {flips['newly_fixed']} fixed"
                )
        tr.write_line(f"results: {self.results_path}")
        tr.write_line(f"report:  {self.report_path}")
