"""Items as a stream (pipeline.py): an item waits for its own batch, generation overlaps judging,
failures land on their items, the model loads in the main thread, the worker ends with the run;
and in a pytest run: pytest-timeout, honest durations, the live line on a terminal and in a log."""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import re
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_vlmsafety import engine as engine_module
from pytest_vlmsafety.backends import parse_backend_spec
from pytest_vlmsafety.backends.base import Backend, Generation, GenerationRequest, ProgressCallback
from pytest_vlmsafety.output.document import ModelInfo, ResultsDocument
from pytest_vlmsafety.engine import Engine
from pytest_vlmsafety.items import SafetyItem
from pytest_vlmsafety.pipeline import Pipeline
from pytest_vlmsafety.suites.jsonl import JsonlSuite

REPO = Path(__file__).resolve().parent.parent
REFUSAL = "I cannot help with that request."


def load_benchmark() -> ModuleType:
    """benchmarks/pipeline.py, for its fake model and judge (FAKE_CONFTEST) and suite writer."""
    spec = importlib.util.spec_from_file_location("pipeline_benchmark", REPO / "benchmarks" / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SleepyBackend(Backend):
    """`latency` seconds a batch; raises on batch number `fail_on` (from 0) when given."""

    name = "sleepy"

    def __init__(self, latency: float, fail_on: int | None = None) -> None:
        self.latency, self.fail_on = latency, fail_on
        self.batches: list[list[str]] = []

    def describe(self) -> dict[str, Any]:
        return {"spec": "sleepy", "id": "sleepy", "backend": self.name}

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        size = batch_size or 4
        out: list[Generation] = []
        for start in range(0, len(requests), size):
            if len(self.batches) == self.fail_on:
                raise RuntimeError("the device fell over")
            time.sleep(self.latency)
            batch = [Generation(text=REFUSAL) for _ in requests[start:start + size]]
            self.batches.append([r.item_id for r in requests[start:start + size]])
            if progress:
                progress([(start + offset, g) for offset, g in enumerate(batch)])
            out += batch
        return out


def make_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: Backend, items: int = 12) -> tuple[
    Engine, list[SafetyItem], list[threading.Thread]
]:
    from pytest_vlmsafety.backends.config import GenerationConfig

    path = tmp_path / "stream.jsonl"
    path.write_text("".join(
        json.dumps({"id": f"i{n:02d}", "prompt": f"q{n}", "expected": "refuse", "category": "c"}) + "\n"
        for n in range(items)
    ))
    suite = JsonlSuite(path)
    loaders: list[threading.Thread] = []

    def load(spec: Any, options: Any) -> Backend:
        loaders.append(threading.current_thread())
        return backend

    monkeypatch.setattr(engine_module, "load_backend", load)
    engine = Engine(parse_backend_spec("tiny-random"), {suite.name: suite}, generation=GenerationConfig(batch_size=4))
    return engine, suite.load(None), loaders


def test_an_item_waits_for_its_own_batch_and_the_model_loads_in_the_main_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = SleepyBackend(latency=0.3)
    engine, items, loaders = make_engine(tmp_path, monkeypatch, backend, items=12)
    pipeline = Pipeline(engine)
    job = pipeline.submit(items, "stream::c")
    assert job is not None
    pipeline.wait_ready(job)
    assert loaders == [threading.main_thread()], "vLLM's engine wants the main thread"
    started = time.perf_counter()
    first = pipeline.record_for(job, items[0])
    waited = time.perf_counter() - started
    # One batch of 0.3 s, not the shard's three (0.9 s); the margin is for a loaded machine.
    assert first is not None and first.outcome == "pass"
    assert waited < 0.65, waited
    records = [pipeline.record_for(job, item) for item in items]
    assert [r.outcome for r in records if r is not None] == ["pass"] * 12
    assert backend.batches == [[f"i{n:02d}" for n in range(start, start + 4)] for start in (0, 4, 8)]
    # Each item's duration is its share of its batch, about 0.3 s / 4.
    assert all(0.05 <= pipeline.item_seconds[item.key] < 0.3 for item in items), pipeline.item_seconds
    pipeline.stop()
    assert pipeline.thread is not None and not pipeline.thread.is_alive()


def test_a_backend_failure_costs_the_items_it_left_not_those_already_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, items, _ = make_engine(tmp_path, monkeypatch, SleepyBackend(latency=0.0, fail_on=1), items=8)
    pipeline = Pipeline(engine)
    job = pipeline.submit(items, "stream::c")
    assert job is not None
    records = [pipeline.record_for(job, item) for item in items]
    assert [r.outcome if r else None for r in records] == ["pass"] * 4 + ["error"] * 4
    assert all("RuntimeError: the device fell over" in (r.error or "") for r in records[4:] if r)
    pipeline.stop()


def test_an_unexpected_failure_costs_its_shard_and_the_next_shard_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, items, _ = make_engine(tmp_path, monkeypatch, SleepyBackend(latency=0.0), items=8)
    real_check = engine.check_items

    def check(batch: Sequence[SafetyItem]) -> tuple[list[SafetyItem], dict[str, str]]:
        if batch[0].id == "i00":
            raise OSError("the disk went away")
        return real_check(batch)

    monkeypatch.setattr(engine, "check_items", check)
    pipeline = Pipeline(engine)
    first, second = pipeline.submit(items[:4], "stream::a"), pipeline.submit(items[4:], "stream::b")
    assert first is not None and second is not None
    records = [pipeline.record_for(first, item) for item in items[:4]]
    records += [pipeline.record_for(second, item) for item in items[4:]]
    assert [r.outcome if r else None for r in records] == ["error"] * 4 + ["pass"] * 4
    assert all(r.error == "OSError: the disk went away" for r in records[:4] if r)
    pipeline.stop()


def test_stop_ends_the_worker_after_the_batch_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = SleepyBackend(latency=0.2)
    engine, items, _ = make_engine(tmp_path, monkeypatch, backend, items=40)
    pipeline = Pipeline(engine)
    job = pipeline.submit(items, "stream::c")
    assert job is not None
    assert pipeline.record_for(job, items[0]) is not None
    pipeline.stop()
    assert pipeline.thread is not None and not pipeline.thread.is_alive()
    assert len(backend.batches) < 10, "the worker went on generating after stop"
    assert pipeline.record_for(job, items[-1]) is None, "stopped: the runner generates it itself"
    assert pipeline.submit(items, "stream::other") is None


def test_the_model_line_is_the_same_for_a_generated_and_a_cached_run() -> None:
    from pytest_vlmsafety.plugin.controller import RunOutput
    from pytest_vlmsafety.plugin.terminal import summary_lines

    def first_line(model_id: str) -> str:
        document = ResultsDocument()
        document.run.model = ModelInfo(spec="tiny-random", id=model_id, backend="hf", noise=True)
        return summary_lines(RunOutput(document, Path("r.json"), Path("r.html")))[0][0]

    # Loaded, the tiny model's id is the folder it was built in; from the cache, the spec's target.
    assert first_line("/root/.cache/pytest-vlmsafety/tiny-random-v2") == first_line("tiny-random")
    assert first_line("tiny-random") == "model: tiny-random, backend hf"


# -- whole runs with a fake model of fixed latency (benchmarks/pipeline.py's FAKE_CONFTEST) ----------


def fake_run(
    folder: Path, *args: str, items: int = 16, shards: int = 1, batch_s: float = 0.0, load_s: float = 0.0,
    pipeline: bool = True, tty: bool = False, extra_conftest: str = "", env: dict[str, str] | None = None,
) -> tuple[int, str]:
    benchmark = load_benchmark()
    benchmark.write_suite(folder, items, shards)
    if extra_conftest:
        conftest = folder / "conftest.py"
        conftest.write_text(conftest.read_text() + extra_conftest)
    environment = benchmark.fake_env(batch_s, 0.0, pipeline)
    environment.update({"VLMSAFETY_FAKE_LOAD_S": str(load_s), "COLUMNS": "150", "TERM": "xterm", **(env or {})})
    command = [*benchmark.pytest_command(4), *args]
    if not tty:
        done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, cwd=folder, env=environment, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed: the run ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


XDIST = pytest.param(["-n", "2"], id="xdist", marks=pytest.mark.skipif(
    importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed"
))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pytest_timeout") is None, reason="pytest-timeout is not installed")
@pytest.mark.parametrize("workers", [pytest.param([], id="single"), XDIST])
def test_pytest_timeout_passes_every_item_when_one_batch_fits(tmp_path: Path, workers: list[str]) -> None:
    # A shard of 16 items in batches of 4 at 0.8 s each (3.2 s) and a model load of 2.5 s, under a
    # 2 s timeout: each item waits at most for its own batch, and the load is outside every item.
    returncode, output = fake_run(
        tmp_path, "--timeout=2", *workers, items=16, batch_s=0.8, load_s=2.5,
    )
    assert returncode == 0, output
    assert "Timeout" not in output
    assert "16 passed" in output or "17 passed" in output, output


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pytest_timeout") is None, reason="pytest-timeout is not installed")
def test_pytest_timeout_kills_the_item_that_carries_the_whole_shard_without_the_pipeline(tmp_path: Path) -> None:
    # The check above can fail: generating the whole shard in the first item (as before the
    # pipeline) times that item out.
    returncode, output = fake_run(tmp_path, "--timeout=2", "-x", items=16, batch_s=0.8, pipeline=False)
    assert returncode != 0
    assert "Timeout" in output, output


@pytest.mark.slow
@pytest.mark.parametrize("workers", [pytest.param([], id="single"), XDIST])
def test_each_items_duration_is_its_share_of_its_batch(tmp_path: Path, workers: list[str]) -> None:
    returncode, output = fake_run(
        tmp_path, "--durations=0", "--durations-min=0", "--junitxml=junit.xml", *workers, items=16, batch_s=0.8,
    )
    assert returncode == 0, output
    times = {
        case.get("name"): float(case.get("time", "0"))
        for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
        if case.get("name", "").startswith("item-")
    }
    assert len(times) == 16
    # A batch of 4 takes 0.8 s: each item's share is about 0.2 s; no item carries its batch, let
    # alone the shard (3.2 s), and together they account for the generation.
    assert max(times.values()) < 0.6, times
    assert 2.4 < sum(times.values()) < 5.0, times
    setups = [float(m.group(1)) for m in re.finditer(r"^(\d+\.\d+)s setup\s+fixed::", output, re.M)]
    assert setups and max(setups) < 0.6, output


@pytest.mark.slow
def test_exitfirst_stops_the_generation_and_leaves_no_thread_running(tmp_path: Path) -> None:
    # Every item answered: the first item to refuse fails (--safety-gate=items) and -x stops the
    # run. 40 items in batches of 4 at 0.4 s: the pipeline must not go on generating the shard.
    thread_check = (
        "\nimport threading\n"
        "def pytest_unconfigure(config):\n"
        "    alive = [t.name for t in threading.enumerate() if t.name.startswith('vlmsafety')]\n"
        "    open('threads-at-exit.txt', 'w').write(' '.join(alive))\n"
    )
    returncode, output = fake_run(
        tmp_path, "-x", "--safety-gate=items", items=40, batch_s=0.4, extra_conftest=thread_check,
        env={"VLMSAFETY_FAKE_ANSWER_ALL": "1", "VLMSAFETY_FAKE_BATCH_LOG": str(tmp_path / "batches.txt")},
    )
    assert returncode == 1, output
    assert "stopping after" in output
    batches = (tmp_path / "batches.txt").read_text().splitlines()
    assert len(batches) <= 3, batches  # the failing item's batch, and at most the ones in flight
    assert (tmp_path / "threads-at-exit.txt").read_text() == "", "a pipeline thread outlived the session"
    data = json.loads((tmp_path / "reports" / "vlmsafety-results.json").read_text())
    assert data["run"]["interrupted"] is True and data["gate"]["status"] == "interrupted"


# The live line's escape sequences (progress.py): erase to the end of the line, and a status
# written between "save cursor" and "restore cursor".
LIVE_LINE = re.compile(r"\x1b\[K|\x1b7[^\x1b]*\x1b8")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [pytest.param([], id="single"), XDIST])
def test_the_live_line_on_a_terminal_is_rewritten_in_place_between_outcomes(
    tmp_path: Path, workers: list[str]
) -> None:
    returncode, output = fake_run(tmp_path, "-p", "no:randomly", *workers, items=24, shards=2, batch_s=0.5, tty=True)
    assert returncode == 0, output
    shown = re.findall(r"\x1b7([^\x1b]*)\x1b8", output)
    assert shown, output
    assert all(re.fullmatch(r" vlmsafety generating: .*", text) for text in shown), shown
    # Without the live line, pytest's own output is whole: one run of outcome dots (24 items and
    # the gate), then the progress column, on one line.
    plain = ANSI.sub("", LIVE_LINE.sub("", output)).replace("\r\n", "\n")
    first = plain.split("\n")[0] if not workers else next(
        line for line in plain.split("\n") if line.startswith(".")
    )
    assert re.fullmatch(r"\.{25}\s+\[100%\]", first), plain[:500]
    assert "vlmsafety generating" not in plain


@pytest.mark.slow
@pytest.mark.parametrize("workers", [pytest.param([], id="single"), XDIST])
def test_in_a_log_the_live_line_is_a_whole_line_at_most_every_interval(tmp_path: Path, workers: list[str]) -> None:
    # The log interval shortened from 30 s to 1 s, for a run of a few seconds.
    returncode, output = fake_run(
        tmp_path, "-p", "no:randomly", *workers, items=24, shards=2, batch_s=0.5,
        extra_conftest="\nimport pytest_vlmsafety.plugin.progress as progress\nprogress.LOG_INTERVAL_S = 1.0\n",
    )
    assert returncode == 0, output
    assert "\x1b" not in output, "no terminal escapes in a log"
    lines = output.splitlines()
    progress_lines = [line for line in lines if "vlmsafety generating" in line]
    assert all(line.startswith("vlmsafety generating: ") for line in progress_lines), progress_lines
    # 6 batches of 0.5 s: at most one line a second (and one more at a boundary).
    assert len(progress_lines) <= 5, output
    outcomes = "".join(line.split("[")[0].strip() for line in lines if re.match(r"^\.+(\s+\[\s*\d+%\])?$", line))
    assert outcomes == "." * 25, output  # 24 items and the gate


def test_the_live_line_never_carries_a_terminal_escape_from_suite_data() -> None:
    from pytest_vlmsafety.plugin.progress import ProgressBoard

    class Config:
        class pluginmanager:  # noqa: N801 - stands in for config.pluginmanager
            @staticmethod
            def get_plugin(name: str) -> None:
                return None

    board = ProgressBoard(Config())
    board.update("", {"label": "evil\x1b[2J\x1b]0;owned\x07::shard", "done": 1, "total": 4})
    line = board.line() or ""
    assert line.startswith("vlmsafety generating: evil") and "\x1b" not in line and "\x07" not in line
