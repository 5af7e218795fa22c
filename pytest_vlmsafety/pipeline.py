"""Items as a stream: one background thread per process generates a shard's batches while the
main thread (pytest's) judges and reports the batches already made.

- The runner submits a shard when its first item is reached, and the next shard ahead of time
  (the next item's shard; in a single process, the next shard of the collection): the worker
  starts a shard only once the one before it has been reached, so at most two shards'
  generations are held (bounded memory).
- The worker checks the shard's items, looks them up in the cache and generates the rest with
  the backend's own batching; every finished batch is published at once. An item waits for the
  batch that holds it, never for its whole shard (the HF backend generates its batches in the
  order of their first item).
- The main thread judges a batch when the first of its items is run, while the worker generates
  the next one: an LLM judge's calls overlap generation.
- The model is loaded in the main thread (vLLM's engine wants it), before the item's own
  protocol starts (`wait_ready`): pytest-timeout times an item's batch, not the model's load.
- Each item's share of its batch (generation and judging) is kept for its reported duration.
- `stop` ends the worker after the batch in progress (Ctrl-C, -x, --maxfail, the session's end).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .backends import Backend, Generation
from .engine import Engine
from .errors import VlmSafetyError
from .items import Record, SafetyItem, record_for

# How often the main thread wakes while it waits: to load the model when the worker asks, and
# to redraw the live progress line.
WAIT_TICK_S = 0.25
# Cache hits are judged in groups of this many (or --vlm-batch-size) when no batch size is known.
CACHED_CHUNK = 16


class PipelineStopped(Exception):
    """Raised in the worker to stop generating: the run is ending."""


@dataclass
class Chunk:
    """Items whose generations are all ready (a batch, or a group of cache hits), or that failed
    before or during generation, with the worker's seconds spent on them (model load excluded)."""

    items: list[SafetyItem]
    generations: dict[str, list[tuple[Generation, bool]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    judged: bool = False


@dataclass
class ShardJob:
    label: str
    items: list[SafetyItem]
    chunk_of: dict[str, Chunk] = field(default_factory=dict)
    # Past the cache lookup and, when it needs the model, the model's load.
    ready: bool = False
    finished: bool = False
    # The main thread has asked for one of its items: the worker may start the next shard.
    reached: bool = False


class Pipeline:
    """The background generation of shards for one process's engine."""

    def __init__(self, engine: Engine, *, on_wait: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_wait = on_wait
        self.condition = threading.Condition()
        self.jobs: dict[str, ShardJob] = {}
        self.queue: deque[ShardJob] = deque()
        self.started: ShardJob | None = None
        self.thread: threading.Thread | None = None
        self.stopped = False
        # The shard whose generation waits for the model's load (done by the main thread).
        self.load_wanted: ShardJob | None = None
        # Each streamed item's share of its batch's generation and judging, in seconds.
        self.item_seconds: dict[str, float] = {}
        engine.serve_while_waiting = self.serve_load

    # -- the main thread -------------------------------------------------------------------------

    def submit(self, items: Sequence[SafetyItem], label: str) -> ShardJob | None:
        """Queue a shard for generation (once); None once the pipeline has stopped."""
        with self.condition:
            job = self.jobs.get(label)
            if job is not None or self.stopped:
                return job
            job = ShardJob(label, [item for item in items if item.key not in self.engine.records])
            self.jobs[label] = job
            self.queue.append(job)
            if self.thread is None:
                self.thread = threading.Thread(target=self._work, name="vlmsafety-pipeline", daemon=True)
                self.thread.start()
            self.condition.notify_all()
            return job

    def wait_ready(self, job: ShardJob) -> None:
        """Wait until the shard is past its cache lookup and the model's load (done here)."""
        # Before the item's own protocol: any load the worker asks for is served here.
        self._wait(lambda: job.ready or job.finished or self.stopped, load_for=None)

    def record_for(self, job: ShardJob, item: SafetyItem) -> Record | None:
        """The item's record: wait for its batch and judge the batch. None when the pipeline
        stopped before the item's batch was made."""
        with self.condition:
            if not job.reached:
                job.reached = True
                self.condition.notify_all()
        # Inside the item's protocol (and its timeout): only its own shard's load.
        self._wait(lambda: item.key in job.chunk_of or job.finished or self.stopped, load_for=job)
        chunk = job.chunk_of.get(item.key)
        if chunk is None:
            if job.finished and not self.stopped:
                # Not expected: every item of a finished shard is published. Never lose it.
                message = "the generation pipeline did not reach this item"
                self.engine.records[item.key] = record_for(item, error=message)
            return self.engine.records.get(item.key)
        if not chunk.judged:
            self._judge(chunk)
        return self.engine.records.get(item.key)

    def _judge(self, chunk: Chunk) -> None:
        started = time.perf_counter()
        for item in chunk.items:
            if item.key in chunk.errors:
                self.engine.records[item.key] = record_for(item, error=chunk.errors[item.key])
        generated = [item for item in chunk.items if item.key in chunk.generations]
        if generated:
            self.engine.judge_items(generated, [chunk.generations[item.key] for item in generated])
        # Marked only once judged: a judge cut short (pytest-timeout, Ctrl-C) is judged again.
        chunk.judged = True
        share = (chunk.seconds + time.perf_counter() - started) / max(len(chunk.items), 1)
        for item in chunk.items:
            self.item_seconds[item.key] = share

    def _wait(self, done: Callable[[], bool], *, load_for: ShardJob | None) -> None:
        """Wait until `done`, loading the model when the worker asks for it (for any shard when
        `load_for` is None, else only for that one) and drawing the live line."""
        while True:
            with self.condition:
                if done():
                    return
                load_now = self.load_wanted is not None and load_for in (None, self.load_wanted)
                if not load_now:
                    self.condition.wait(WAIT_TICK_S)
            if load_now:
                self.serve_load()
            elif self.on_wait is not None:
                self.on_wait()

    def serve_load(self) -> None:
        """Load the model here, in the main thread, when the worker asked for it."""
        with self.condition:
            if self.load_wanted is None:
                return
        try:
            self.engine.backend()
        except VlmSafetyError:
            pass  # kept by the engine: the worker reads it and the items report it
        finally:
            with self.condition:
                self.load_wanted = None
                self.condition.notify_all()

    def stop(self, *, wait: bool = True) -> None:
        """Stop after the batch in progress; with `wait`, until the worker has ended."""
        with self.condition:
            self.stopped = True
            self.condition.notify_all()
        if wait and self.thread is not None:
            self.thread.join()

    # -- the worker thread -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self.condition:
                while not self.stopped and not (self.queue and (self.started is None or self.started.reached)):
                    self.condition.wait()
                if self.stopped:
                    return
                job = self.started = self.queue.popleft()
            try:
                self._run(job)
            except PipelineStopped:
                return
            except Exception as exc:  # noqa: BLE001 - a backend's failure costs the items it left
                self._fail_rest(job, f"{type(exc).__name__}: {exc}")  # and the next shards still run
            finally:
                with self.condition:
                    job.ready = job.finished = True
                    self.condition.notify_all()

    def _publish(self, job: ShardJob, chunk: Chunk) -> None:
        with self.condition:
            for item in chunk.items:
                job.chunk_of[item.key] = chunk
            self.condition.notify_all()

    def _load(self, job: ShardJob) -> Backend:
        """The model, loaded by the main thread on the worker's request."""
        with self.condition:
            while not self.engine.backend_settled():
                if self.stopped:
                    raise PipelineStopped
                self.load_wanted = job
                self.condition.notify_all()
                self.condition.wait(WAIT_TICK_S)
            job.ready = True
            self.condition.notify_all()
        return self.engine.backend()

    def _run(self, job: ShardJob) -> None:
        engine = self.engine
        clock = time.perf_counter()
        engine.stats.shards += 1
        runnable, errors = engine.check_items(job.items)
        if errors:
            failed = [item for item in job.items if item.key in errors]
            self._publish(job, Chunk(failed, errors=errors, seconds=time.perf_counter() - clock))
        if not runnable:
            return
        samples = engine.generation.samples
        slots: list[list[tuple[Generation, bool] | None]] = [[None] * samples for _ in runnable]
        left = [samples] * len(runnable)
        mark = [time.perf_counter(), engine.stats.model_load_s]
        chunk_size = engine.generation.batch_limit or CACHED_CHUNK

        def on_ready(results: list[tuple[int, Generation, bool]]) -> None:
            if self.stopped:
                raise PipelineStopped
            complete: list[int] = []
            for index, generation, from_store in results:
                position, sample = divmod(index, samples)
                slots[position][sample] = (generation, from_store)
                left[position] -= 1
                if left[position] == 0:
                    complete.append(position)
            now, loaded = time.perf_counter(), engine.stats.model_load_s
            seconds = max(now - mark[0] - (loaded - mark[1]), 0.0)
            mark[:] = [now, loaded]
            groups = [complete[start:start + chunk_size] for start in range(0, len(complete), chunk_size)]
            for group in groups:
                items = [runnable[p] for p in group]
                generations = {runnable[p].key: [s for s in slots[p] if s is not None] for p in group}
                self._publish(job, Chunk(items, generations, seconds=seconds * len(group) / len(complete)))

        try:
            engine.generate(engine.requests_for(runnable), job.label, on_ready=on_ready, load=lambda: self._load(job))
        except PipelineStopped:
            raise
        except VlmSafetyError as exc:
            self._fail_rest(job, f"model unavailable: {exc}")

    def _fail_rest(self, job: ShardJob, message: str) -> None:
        """The items of the shard not published yet become errors with `message`."""
        with self.condition:
            left_items = [item for item in job.items if item.key not in job.chunk_of]
        if left_items:
            self._publish(job, Chunk(left_items, errors={item.key: message for item in left_items}))
