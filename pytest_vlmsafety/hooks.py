"""The hooks this plugin adds to pytest (registered with `pytest_addhooks` in plugin.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .suites.registry import SuiteRegistration


@pytest.hookspec
def pytest_vlmsafety_register_suites(config: pytest.Config) -> Sequence[SuiteRegistration]:
    """Return the suites (`pytest_vlmsafety.SuiteRegistration`) that a conftest.py or a plugin
    adds to this run: each one's suite class, rule judges, hub dataset (the LLM judge's schemes
    come with the suite class). Called once per run at configure, before the options are read;
    every implementation's registrations are used. An installed package registers through the
    entry-point group `pytest_vlmsafety.suites` instead, which also adds its suites' options."""
    raise NotImplementedError  # pragma: no cover - a hook specification, never called
