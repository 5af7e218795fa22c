"""pytest entry point (`pytest11`): options, ini keys and activation.

Importing this module loads only the standard library, pytest and light modules of this package:
a project that has the plugin installed but never passes `--vlm` pays nothing (no torch import).
"""

from __future__ import annotations

from typing import Any

import pytest

from ..errors import ConfigError
from ..options import OptionSpec, check_no_empty_values
from ..suites.registry import set_hook_registrations, set_option_values, suite_options
from .fixture import CASE_MARKER_HELP, vlm
from .run_options import option_spec, parse_options, run_option_specs

MARKER_HELP = (
    "vlmsafety(suite, subset, category, expected, task, ...): an item of a VLM safety suite "
    "(pytest-vlmsafety); select with -m \"vlmsafety(category='violence')\""
)
# The `vlm` fixture is defined in fixture.py; a fixture of the entry-point module is available to
# every test of a project that has the plugin (it skips without --vlm).
__all__ = ["vlm"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from .. import hooks

    pluginmanager.add_hookspecs(hooks)


def _option_specs() -> list[OptionSpec]:
    """Every option of a run: the fields of each concern's config (plugin/run_options.py), then the
    registered suites' own (suites/registry.py), in the same group."""
    return [*run_option_specs(), *(option.spec() for option in suite_options())]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vlmsafety", "VLM safety benchmarks (pytest-vlmsafety)")
    try:
        specs = _option_specs()
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-vlmsafety: {exc}") from None
    for spec in specs:
        if spec.kind == "flag":
            group.addoption(spec.flag, action="store_true", default=None, dest=spec.dest, help=spec.help)
            parser.addini(spec.ini_name, spec.help, type="bool", default=False)
        elif spec.kind == "append":
            group.addoption(
                spec.flag, action="append", default=None, dest=spec.dest, metavar=spec.metavar, help=spec.help
            )
            parser.addini(spec.ini_name, spec.help, type="args", default=[])
        else:
            group.addoption(spec.flag, default=None, dest=spec.dest, metavar=spec.metavar, help=spec.help)
            parser.addini(spec.ini_name, spec.help, default=spec.default)


def _register_suites(config: pytest.Config) -> None:
    """The suites of the `pytest_vlmsafety_register_suites` hook and the values of the suites' own
    options, for this run."""
    set_hook_registrations(
        registration for registrations in config.hook.pytest_vlmsafety_register_suites(config=config)
        for registration in registrations
    )
    lookup = _lookup(config)
    specs = [option.spec() for option in suite_options()]
    set_option_values({spec.flag: spec.value_of(lookup(spec)) for spec in specs})


def _lookup(config: pytest.Config) -> Any:
    def lookup(spec: OptionSpec) -> Any:
        value = config.getoption(spec.dest)
        return config.getini(spec.ini_name) if value is None else value

    return lookup


def pytest_configure(config: pytest.Config) -> None:
    try:
        _configure(config)
    except pytest.UsageError as exc:
        raise pytest.UsageError(_without_stale_results(config, str(exc))) from None


def _configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", CASE_MARKER_HELP)
    try:
        _register_suites(config)
        check_no_empty_values(_option_specs(), lambda spec: config.getoption(spec.dest))
        options = parse_options(_lookup(config))
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-vlmsafety: {exc}") from None
    if not options.active:
        if config.getoption("vlmsafety_safety_suite"):
            raise pytest.UsageError("pytest-vlmsafety: --safety-suite needs --vlm MODEL (the model to test)")
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        from ..distributed.devices import apply_worker_device

        apply_worker_device(workerinput.get("vlmsafety_device"), int(workerinput.get("workercount", 1)))
    from .session import start_session

    start_session(config, options)


def _without_stale_results(config: pytest.Config, message: str) -> str:
    """A safety run stopped by a usage error decides nothing: the results an earlier run left in
    the report folder are removed (a CI step reading them would read that run's verdict), and the
    message says so. The folder is --safety-report as given, else its default."""
    if hasattr(config, "workerinput"):
        return message
    from ..gate.completeness import remove_stale_results, stale_note

    spec = option_spec("--safety-report")
    raw = _lookup(config)(spec)
    folder = raw if isinstance(raw, str) and raw.strip() else spec.default
    assert folder is not None, "--safety-report has a default"
    removed = remove_stale_results(config.invocation_params.dir / folder)
    return f"{message}\n(pytest-vlmsafety: {stale_note(removed)})" if removed else message


def pytest_unconfigure(config: pytest.Config) -> None:
    set_hook_registrations(())
    set_option_values({})
