"""Shared fixtures: a tiny model built once per test session through the real from_pretrained path."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# torch (and the C extensions it loads: numpy, PIL...) imported before any in-process pytester run:
# such a run removes the modules it imported when it ends, and an extension initialised a second
# time in one process broke the next import of torch (SystemError "bad call flags", then a
# segfault of the test process). About 3 s once per test process.
import torch  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutation testing (benchmarks/mutation.py; mutmut sets MUTANT_UNDER_TEST), tests that
    run the plugin in-process go after the pure ones: mutmut stops at the first failure, so a mutant
    that a pure test kills costs milliseconds. Elsewhere the order is left alone."""
    if "MUTANT_UNDER_TEST" in os.environ:
        items.sort(key=lambda item: "pytester" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def vlmsafety_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache home shared by all xdist workers of this test run (the parent of each worker's basetemp)."""
    root = tmp_path_factory.getbasetemp()
    shared = root.parent if root.name.startswith("popen-gw") else root
    home = shared / "vlmsafety-home"
    home.mkdir(exist_ok=True)
    return home


@pytest.fixture(scope="session")
def tiny_model(vlmsafety_home: Path) -> Path:
    from pytest_vlmsafety.backends.tiny import TINY_MODEL_VERSION, build_tiny_model

    return build_tiny_model(vlmsafety_home / f"tiny-random-v{TINY_MODEL_VERSION}")


@pytest.fixture
def vlm_env(monkeypatch: pytest.MonkeyPatch, vlmsafety_home: Path, tiny_model: Path) -> Path:
    """Subprocess pytest runs find the prebuilt tiny model through VLMSAFETY_HOME."""
    monkeypatch.setenv("VLMSAFETY_HOME", str(vlmsafety_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return vlmsafety_home


@pytest.fixture(autouse=True)
def _results_files_validate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every results file a test makes the plugin write validates against the published schema
    and is strict JSON: the test errors in teardown otherwise."""
    started = time.time() - 1  # file times may have a coarser resolution than the clock
    # Looked up before the test runs: the fixtures are torn down before this one resumes.
    folders = [
        request.getfixturevalue(name).path if name == "pytester" else request.getfixturevalue(name)
        for name in ("pytester", "tmp_path")
        if name in request.fixturenames
    ]
    yield
    if not folders:
        return
    from results_validation import results_file_problems, written_results_files

    problems = [problem for path in written_results_files(folders, started) for problem in results_file_problems(path)]
    if problems:
        pytest.fail("results files that do not validate:\n" + "\n".join(problems[:20]), pytrace=False)


@pytest.fixture(scope="session")
def tiny_architecture(vlmsafety_home: Path) -> Callable[[str], Path]:
    """Builds a tiny model of an architecture (`backends.tiny_archs`) once per test run, shared by
    xdist workers through the cache home (race-safe)."""
    from pytest_vlmsafety.backends.tiny_archs import build_tiny_architecture

    return lambda name: build_tiny_architecture(name, vlmsafety_home)
