"""Live generation progress of xdist workers, shown by the controller.

xdist's own worker-to-controller channel accepts only xdist's events, so the controller opens a
side channel per worker (an execnet channel of the worker's gateway, handed over in
`workerinput`). A worker's engine reports each finished batch on it (`ChannelProgress`); the
controller keeps the latest state of every worker (`ProgressBoard`) and a background thread
draws one line for all of them: every few seconds on a terminal, at most every 30 s in a
non-interactive log (CI), so the log is not a line per shard between the test dots.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

# The side channel's key in xdist's workerinput.
PROGRESS_CHANNEL_KEY = "vlmsafety_progress"
# How often the controller draws the progress line.
INTERACTIVE_INTERVAL_S = 5.0
LOG_INTERVAL_S = 30.0
# How often a worker reports within a shard (a report per batch at most).
WORKER_SEND_INTERVAL_S = 1.0


class ChannelProgress:
    """On a worker: one shard's generation progress, sent to the controller (engine.Progress)."""

    def __init__(self, channel: Any, label: str, total: int) -> None:
        self.channel = channel
        self.label, self.total, self.done = label, total, 0
        self.last_sent = 0.0
        self._send()

    def _send(self) -> None:
        self.last_sent = time.monotonic()
        try:
            self.channel.send({"label": self.label, "done": self.done, "total": self.total})
        except Exception:  # noqa: BLE001 - progress is a courtesy: a closed channel costs nothing
            pass

    def advance(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.last_sent >= WORKER_SEND_INTERVAL_S:
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


class ProgressBoard:
    """On the controller: the latest progress of every worker, and the thread that shows it."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.interval = INTERACTIVE_INTERVAL_S if self.reporter is not None and self.reporter.isatty else LOG_INTERVAL_S
        self.workers: dict[str, WorkerProgress] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def open_channel(self, node: Any) -> Any:
        """A side channel of the node's gateway whose messages update this board."""
        worker_id = node.workerinput["workerid"]
        channel = node.gateway.newchannel()
        # Runs in execnet's receiver thread: record only; drawing happens in the board's thread.
        channel.setcallback(lambda message: self.update(worker_id, message))
        if self.thread is None and self.reporter is not None:
            self.thread = threading.Thread(target=self._draw_loop, name="vlmsafety-progress", daemon=True)
            self.thread.start()
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
            parts = [f"{worker_id}: {self.workers[worker_id].describe(now)}" for worker_id in sorted(self.workers)]
        return "vlmsafety generating: " + "; ".join(parts)

    def _draw_loop(self) -> None:
        # A line while any worker generates, also when a long batch brought no news: the
        # estimate moves and the log shows the run is alive.
        while not self.stopped.wait(self.interval):
            text = self.line()
            if text is not None:
                self.reporter.write_line(text)

    def stop(self) -> None:
        self.stopped.set()
