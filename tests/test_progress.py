"""Live generation progress of xdist workers on the controller."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_vlmsafety.plugin import progress
from pytest_vlmsafety.plugin.progress import ChannelProgress, ProgressBoard, format_duration


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


class FakeConfig:
    class pluginmanager:  # noqa: N801 - stands in for config.pluginmanager
        @staticmethod
        def get_plugin(name: str) -> None:
            return None


def test_worker_reports_the_start_throttled_batches_and_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = FakeChannel()
    monkeypatch.setattr(progress, "WORKER_SEND_INTERVAL_S", 3600.0)
    shard = ChannelProgress(channel, "sample::drugs", 10)
    shard.advance(4)
    shard.advance(4)
    shard.close()
    assert channel.sent == [
        {"label": "sample::drugs", "done": 0, "total": 10},
        {"label": "sample::drugs", "done": 8, "total": 10},
    ]


def test_board_shows_every_worker_with_rate_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    board = ProgressBoard(FakeConfig())
    assert board.line() is None
    board.update("gw1", {"label": "sample::weapons", "done": 0, "total": 40})
    board.update("gw0", {"label": "vscbench::text", "done": 0, "total": 100})
    clock[0] = 110.0
    board.update("gw0", {"label": "vscbench::text", "done": 20, "total": 100})
    board.update("gw1", {"label": "sample::weapons", "done": 40, "total": 40})
    assert board.line() == (
        "vlmsafety generating: gw0: vscbench::text 20/100, 2.0 items/s, ~40s left; gw1: sample::weapons 40/40 done"
    )
    board.update("gw0", {"label": "vscbench::text", "done": 100, "total": 100})
    assert board.line() is None, "no line once every worker has finished"
    board.update("gw0", {"label": "vscbench::image", "done": 0, "total": 5})
    clock[0] = 112.0
    assert "vscbench::image 0/5, 0.0 items/s, starting" in (board.line() or "")


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (4.4, 75, 3725)] == ["4s", "1m15s", "1h02m"]


@pytest.mark.slow
@pytest.mark.usefixtures("vlm_env")
def test_controller_shows_worker_progress_in_a_log(pytester: pytest.Pytester) -> None:
    # The interval of a non-interactive log shortened from 30 s, for a run of seconds.
    pytester.makeconftest(
        "import pytest_vlmsafety.plugin.progress as progress\n"
        "progress.LOG_INTERVAL_S = 0.2\n"
        "progress.WORKER_SEND_INTERVAL_S = 0.0\n"
    )
    result = pytester.runpytest_subprocess(
        "--vlm=tiny-random", "--safety-suite=sample", "--safety-sample=8", "--vlm-batch-size=1",
        "--vlm-cache=off", "-n", "2", "-p", "no:cacheprovider", "--max-undersafety=off", "--max-oversafety=off",
    )
    assert result.ret == 0
    lines = [line for line in result.outlines if line.startswith("vlmsafety generating: ")]
    assert lines, result.stdout.str()
    pattern = re.compile(r"gw[01]: sample::\S+ \d+/\d+(, \d+\.\d items/s, (~\S+ left|starting)| done)")
    assert all(pattern.search(line) for line in lines), lines
