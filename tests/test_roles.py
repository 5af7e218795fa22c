"""Which plugins a process registers: decided once, at configure, from xdist's own settings."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_vlmsafety.plugin.session import process_role


class FakeConfig:
    def __init__(self, **options: Any) -> None:
        self.options = options

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


class FakeWorkerConfig(FakeConfig):
    workerinput = {"workerid": "gw0"}


@pytest.mark.parametrize(
    ("config", "role"),
    [
        (FakeConfig(dist="no", tx=[], collectonly=False), "single"),
        (FakeConfig(), "single"),  # xdist not installed: no dist option at all
        (FakeConfig(dist="load", tx=["popen", "popen"], collectonly=False), "controller"),
        # xdist runs collection in the main process for --collect-only: no controller then
        (FakeConfig(dist="load", tx=["popen"], collectonly=True), "single"),
        (FakeWorkerConfig(dist="load", tx=["popen"], collectonly=False), "worker"),
    ],
)
def test_process_role(config: FakeConfig, role: str) -> None:
    assert process_role(config) == role  # type: ignore[arg-type]
