"""Start of an active run (`--vlm` given): resolve the model and suites, then register the
plugins of this process's role, once, as pytest-xdist and pytest-cov do:

- `worker` (an xdist worker): runner.ItemRunner and runner.WorkerSummaryWriter;
- `controller` (the xdist controller, which runs no items): controller.Controller and the
  terminal summary;
- `single` (no xdist): all of the runner, the controller and the terminal summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from ..backends import BackendSpec, parse_backend_spec
from ..engine import Engine, GenerationStore, ProgressFactory
from ..errors import ConfigError, DataError
from ..gate.audit import read_labels
from ..gate.baseline import check_pairing, load_baseline
from ..gate.completeness import suite_nodes
from ..items import SafetyItem
from ..sampling import stratified_sample
from ..suites import SuiteSelection, resolve_suite
from ..suites.config import DEFAULT_SUITE, DataConfig
from .collect import node_name
from .controller import Controller
from .fixture import CaseRecorder
from .progress import PROGRESS_CHANNEL_KEY, ChannelProgress, LocalChannel, ProgressBoard
from .run_options import RunOptions
from .runner import ItemRunner, WorkerSummaryWriter
from .terminal import SummaryReporter

Role = Literal["worker", "controller", "single"]


def process_role(config: pytest.Config) -> Role:
    """Which side of the run this process is; see xdist.plugin: a controller exists when xdist
    distributes (`dist` not `no` with test environments), and never for --collect-only."""
    if hasattr(config, "workerinput"):
        return "worker"
    distributed = config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))
    if distributed and not config.getoption("collectonly"):
        return "controller"
    return "single"


def start_session(config: pytest.Config, options: RunOptions) -> Role:
    """Resolve the model and suites and load the items, turning bad input into usage errors;
    then register this process's plugins."""
    role = process_role(config)
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    # Workers get the controller's decision: xdist hands them the testpaths as explicit args.
    explicit_paths = bool(
        workerinput.get("vlmsafety_explicit_paths", config.args_source == pytest.Config.ArgsSource.ARGS)
    )
    # Test paths and no --safety-suite: the user's own tests only; neither: the sample suite.
    suite_names = options.data.suites or (() if explicit_paths else (DEFAULT_SUITE,))
    try:
        spec = parse_backend_spec(options.model.spec or "")
        selections = [resolve_suite(name) for name in suite_names]
        if options.data.download and role != "worker":
            download_data(selections, options.data)
        loaded = [(selection, load_selection(selection, options.data)) for selection in selections]
        baseline = load_baseline(options.gate.baseline) if options.gate.baseline else None
        # Read in every process: a label decides its item's outcome where the item runs.
        audit_labels = read_labels(options.gate.audit_labels) if options.gate.audit_labels else None
        if baseline is not None:
            check_pairing(baseline, ((item.suite, item.id) for _, items in loaded for item in items))
        if role != "worker":
            from .preflight import check_run

            check_run(config.invocation_params.dir, options, spec, loaded)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(f"pytest-vlmsafety: {exc}") from None

    suites = {selection.suite.name: selection.suite for selection, _ in loaded}
    # Only when a pytest-html report is asked for: extras cost a rendering per item.
    html_extras = config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))
    manager = config.pluginmanager

    runner: ItemRunner | None = None
    if role != "controller":
        # A single process draws its own progress line; a worker sends its progress to the controller.
        board = ProgressBoard(config) if role == "single" else None
        engine = Engine(
            spec,
            suites,
            load=options.model.load,
            generation=options.generation,
            judging=options.judging,
            data=options.data,
            progress_factory=progress_factory(board, workerinput),
            store_factory=lambda: open_store(config, options, spec),
            base_dir=config.invocation_params.dir,
        )
        runner = ItemRunner(
            config, options, loaded, engine,
            explicit_paths=explicit_paths, baseline=baseline, html_extras=html_extras,
            worker_id=workerinput.get("workerid"), device=workerinput.get("vlmsafety_device"),
            audit_labels=audit_labels,
        )
        if board is not None:
            runner.pipeline.on_wait = board.tick
        manager.register(runner, "vlmsafety-runner")
        manager.register(CaseRecorder(config, engine, runner), "vlmsafety-cases")
    if role == "worker":
        assert runner is not None
        manager.register(WorkerSummaryWriter(config, runner), "vlmsafety-worker")
        return role

    controller = Controller(
        config, options, spec, suites,
        suite_labels=[selection.label for selection, _ in loaded],
        suite_node_names={node_name(selection.label) for selection, _ in loaded},
        explicit_paths=explicit_paths, baseline=baseline,
        local_summary=runner.summary if runner is not None else None,
        audit_labels=audit_labels,
        suite_nodes=suite_nodes(loaded, {selection.label: node_name(selection.label) for selection, _ in loaded}),
    )
    manager.register(controller, "vlmsafety-controller")
    manager.register(SummaryReporter(lambda: controller.output), "vlmsafety-terminal")
    if html_extras:
        from ..output.pytest_html import PytestHtmlExtras

        manager.register(
            PytestHtmlExtras(lambda: controller.output.document if controller.output else None),
            "vlmsafety-pytest-html",
        )
    return role


def progress_factory(board: ProgressBoard | None, workerinput: dict[str, Any]) -> ProgressFactory | None:
    """To this process's own progress line, or on a worker to the controller's side channel."""
    if board is not None:
        return lambda label, total: ChannelProgress(LocalChannel(board), label, total, interval=0.0)
    channel = workerinput.get(PROGRESS_CHANNEL_KEY)
    if channel is None:
        return None
    return lambda label, total: ChannelProgress(channel, label, total)


def download_data(selections: list[SuiteSelection], data: DataConfig) -> None:
    from ..download import download_suite_data
    from ..suites.registry import hub_suites

    if data.data_root is None:
        raise ConfigError("--safety-download needs --safety-data DIR: the folder to download into")
    for name in sorted({s.suite.name for s in selections} & set(hub_suites())):
        download_suite_data(name, data.data_root)


def open_store(config: pytest.Config, options: RunOptions, spec: BackendSpec) -> GenerationStore | None:
    """The generation cache for this model and these generation parameters, or None when off
    or when the backend's responses are not cached (`BackendKind.caches_generations`)."""
    if options.output.cache_dir is None or not spec.backend.caches_generations:
        return None
    from ..backends import store_identity
    from ..cache import Cache, GenerationStore

    cache = Cache(Path(config.invocation_params.dir) / options.output.cache_dir)
    fingerprint, params = store_identity(spec, options.model.load, options.generation.prompt_format, cache)
    return GenerationStore(cache, fingerprint, params)


def load_selection(selection: SuiteSelection, data: DataConfig) -> list[SafetyItem]:
    items = selection.suite.load(data.data_root, selection.subset)
    if data.sample is not None:
        items = stratified_sample(items, data.sample, data.seed)
    return items
