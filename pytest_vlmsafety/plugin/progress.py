"""The live generation progress line: a single process's own, or every xdist worker's on the
controller.

A process's engine reports each finished batch (`ChannelProgress`): to its own board in a single
process, and on a side channel to the controller's board under xdist (xdist's own
worker-to-controller channel accepts only xdist's events, so the controller opens an execnet
channel of the worker's gateway, handed over in `workerinput`). The board (`ProgressBoard`) keeps
the latest state of every worker and draws one line, only from pytest's main thread, only
between test outcomes, so it never splits pytest's own output: on a terminal, after the current
outcomes, rewritten in place and erased before pytest writes again; in a non-interactive log
(CI), a line at most every 30 s.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest

from ..text import printable

# The side channel's key in xdist's workerinput.
PROGRESS_CHANNEL_KEY = "vlmsafety_progress"
# How often the progress line is drawn at most: in place on a terminal, a new line in a log.
INTERACTIVE_INTERVAL_S = 0.5
LOG_INTERVAL_S = 30.0
# ANSI: save the cursor, restore it, erase to the end of the line.
SAVE_CURSOR, RESTORE_CURSOR, ERASE_LINE_END = "\x1b7", "\x1b8", "\x1b[K"
# The worker name of a single process's own progress.
LOCAL = ""
# How often a worker reports within a shard (a report per batch at most).
WORKER_SEND_INTERVAL_S = 1.0


class ChannelProgress:
    """On a worker: one shard's generation progress, sent to the controller (engine.Progress)."""

    def __init__(self, channel: Any, label: str, total: int, *, interval: float | None = None) -> None:
        self.channel = channel
        self.label, self.total, self.done = label, total, 0
        self.last_sent = 0.0
        # None: WORKER_SEND_INTERVAL_S, read when sending (a process's own board takes every batch).
        self.interval = interval
        self._send()

    def _send(self) -> None:
        self.last_sent = time.monotonic()
        try:
            self.channel.send({"label": self.label, "done": self.done, "total": self.total})
        except Exception:  # noqa: BLE001 - progress is a courtesy: a closed channel costs nothing
            pass

    def advance(self, count: int) -> None:
        self.done += count
        interval = WORKER_SEND_INTERVAL_S if self.interval is None else self.interval
        if time.monotonic() - self.last_sent >= interval:
            self._send()

    def close(self) -> None:
        self._send()


@dataclass
class WorkerProgress:
    label: str
    done: int
    total: int
    started: float
    updated: float

    @property
    def active(self) -> bool:
        return self.done < self.total

    def describe(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        if not self.active:
            return f"{self.label} {self.done}/{self.total} done"
        left = f"~{format_duration((self.total - self.done) / rate)} left" if rate > 0 else "starting"
        return f"{self.label} {self.done}/{self.total}, {rate:.1f} items/s, {left}"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class LocalChannel:
    """A single process's `ChannelProgress` target: its own board."""

    def __init__(self, board: ProgressBoard) -> None:
        self.board = board

    def send(self, message: Any) -> None:
        self.board.update(LOCAL, message)


class ProgressBoard:
    """The latest progress of every worker (or of the single process), and the line that shows
    it. Registered as a plugin to draw between test outcomes; `tick` draws from the main thread
    while it waits for a batch."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.workers: dict[str, WorkerProgress] = {}
        self.lock = threading.Lock()
        self.stopped = False
        self.drawn = False
        # A run shorter than the interval shows no line in a log.
        self.last_drawn = time.monotonic()
        if hasattr(config.pluginmanager, "register"):
            config.pluginmanager.register(self, "vlmsafety-progress-line")

    # Looked up when drawing: a single process makes its board before pytest's terminal exists.
    @property
    def reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    @property
    def interactive(self) -> bool:
        return self.reporter is not None and bool(self.reporter.isatty)

    @property
    def interval(self) -> float:
        return INTERACTIVE_INTERVAL_S if self.interactive else LOG_INTERVAL_S

    def open_channel(self, node: Any) -> Any:
        """A side channel of the node's gateway whose messages update this board."""
        worker_id = node.workerinput["workerid"]
        channel = node.gateway.newchannel()
        # Runs in execnet's receiver thread: record only; drawing happens in the main thread.
        channel.setcallback(lambda message: self.update(worker_id, message))
        return channel

    def update(self, worker_id: str, message: Any) -> None:
        if not isinstance(message, dict):
            return
        now = time.monotonic()
        with self.lock:
            previous = self.workers.get(worker_id)
            label = str(message.get("label", "?"))
            same_shard = previous is not None and previous.label == label and previous.active
            self.workers[worker_id] = WorkerProgress(
                label=label,
                done=int(message.get("done", 0)),
                total=int(message.get("total", 0)),
                started=previous.started if same_shard and previous is not None else now,
                updated=now,
            )

    def line(self, now: float | None = None) -> str | None:
        """The progress of every worker on one line, None when no worker is generating."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if not any(w.active for w in self.workers.values()):
                return None
            # A single process's own progress needs no worker name.
            parts = [
                f"{worker_id}: {progress.describe(now)}" if worker_id else progress.describe(now)
                for worker_id, progress in sorted(self.workers.items())
            ]
        # Shard labels come from suite data: one printable line, never a terminal escape.
        return printable("vlmsafety generating: " + "; ".join(parts))

    # -- drawing, in the main thread only --------------------------------------------------------

    def _terminal(self) -> Any:
        """The terminal itself: a tick comes while an item's setup waits, under output capture."""
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        return capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()

    def _raw_write(self, text: str) -> None:
        # Past pytest's TerminalWriter: the cursor comes back where it was, so pytest's count of
        # the current line's width (for its `[ 45%]` column) stays right.
        file = self.reporter._tw._file
        file.write(text)
        file.flush()

    def clear(self) -> None:
        if self.drawn:
            self.drawn = False
            with self._terminal():
                self._raw_write(ERASE_LINE_END)

    def draw(self, *, force: bool = False) -> None:
        """Show the line if it is due: in place on a terminal, as a line of its own in a log."""
        now = time.monotonic()
        if self.reporter is None or self.stopped or (not force and now - self.last_drawn < self.interval):
            return
        text = self.line(now)
        if text is None:
            self.clear()
            return
        self.last_drawn = now
        with self._terminal():
            if not self.interactive:
                if self.reporter._tw.width_of_current_line:
                    self.reporter._tw.line()  # after the dots so far (-q shows no path to end the line)
                self.reporter.write_line(text)
                return
            room = self.reporter._tw.fullwidth - self.reporter._tw.width_of_current_line - len(" [100%]") - 2
            if room < 20:
                return
            shown = text if len(text) <= room else text[: room - 3] + "..."
            self._raw_write(ERASE_LINE_END + SAVE_CURSOR + " " + shown + RESTORE_CURSOR)
            self.drawn = True

    def tick(self) -> None:
        """Called by the main thread while it waits for generation."""
        self.draw()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self) -> None:
        self.clear()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self) -> Generator[None, None, None]:
        # Around everything pytest writes for an outcome: erased before, drawn again after.
        self.clear()
        try:
            return (yield)
        finally:
            self.draw(force=self.interactive)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtestloop(self) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            self.stop()  # before pytest writes its final progress

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped = True
        self.clear()
