"""Turns a shard of items into records on a worker: check images, generate in batches (or take
cached generations), judge, and keep the records for the per-item tests to look up."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .backends import Backend, BackendSpec, Generation, GenerationRequest, load_backend
from .backends.base import Sampling
from .backends.config import GenerationConfig, LoadConfig
from .backends.images import check_image_sizes, check_images_exist
from .backends.official_prompts import prompt_formats
from .errors import ItemError, VlmSafetyError
from .items import Record, SafetyItem, Verdict, record_for
from .judges import get_judge
from .judges.base import LLM_JUDGE_NAME, REFUSAL_JUDGE_NAME
from .judges.config import JudgeConfig
from .output.document import ModelInfo, RunStats, parse_as
from .suites import Suite
from .suites.base import api_text_first
from .suites.config import DataConfig

DEFAULT_MAX_NEW_TOKENS = 256
# The tiny random model's output is noise whatever its length: keep wiring checks quick.
NOISE_MAX_NEW_TOKENS = 32


class Progress(Protocol):
    def advance(self, count: int) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[str, int], Progress]

# Called with finished generations as they are ready: (index into the requests, generation,
# served from the store). The cache hits come first, then each batch the model finishes.
ReadyCallback = Callable[[list[tuple[int, Generation, bool]]], None]


class GenerationStore(Protocol):
    """Where generations are kept between runs (see cache.py); `None` results mean a miss."""

    def key(
        self,
        prompt: str,
        images: Sequence[Path],
        max_new_tokens: int,
        system: str | None = None,
        sampling: Sampling | None = None,
        sample_index: int = 0,
        item: tuple[str, str] | None = None,
    ) -> str: ...

    def get_many(self, keys: Sequence[str]) -> list[str | None]: ...

    def put_many(self, entries: Mapping[str, str]) -> None: ...


def check_prompt_length(item: SafetyItem, max_chars: int | None) -> None:
    """A prompt above the bound is an error item: a 50 MB prompt took 23 GB and an OOM kill."""
    if max_chars is not None and len(item.prompt) > max_chars:
        raise ItemError(
            f"the prompt has {len(item.prompt)} characters, more than --vlm-max-prompt-chars={max_chars}; "
            "shorten it, or raise the option (or 'off') if the model's context holds it"
        )


@dataclass
class Engine:
    """The configs it is given are the concerns it serves: loading the model under test, its
    generation, judging, and the bounds on an item."""

    backend_spec: BackendSpec
    suites: Mapping[str, Suite]
    load: LoadConfig = field(default_factory=LoadConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    judging: JudgeConfig = field(default_factory=JudgeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    progress_factory: ProgressFactory | None = None
    # Where relative paths of the run resolve (the LLM judge's cache and prompt files).
    base_dir: Path | None = None
    # Opened on first use: fingerprinting a local model folder reads its weights once.
    store_factory: Callable[[], GenerationStore | None] | None = None
    stats: RunStats = field(default_factory=RunStats)
    records: dict[str, Record] = field(default_factory=dict)
    _backend: Backend | None = None
    _backend_error: str | None = None
    _store: GenerationStore | None = None
    _store_opened: bool = False
    # One generation at a time: the pipeline's worker thread and a `vlm` fixture's question in
    # the main thread share the model and the store.
    _generation_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Called by the main thread while it waits for that lock: the pipeline's worker, which may
    # hold it, asks the main thread to load the model (pipeline.Pipeline.serve_load).
    serve_while_waiting: Callable[[], None] | None = None

    @property
    def store(self) -> GenerationStore | None:
        if not self._store_opened:
            self._store_opened = True
            self._store = self.store_factory() if self.store_factory else None
        return self._store

    def model_info(self) -> ModelInfo | None:
        """The loaded model's identity for the results, None when no model was loaded here."""
        if self._backend is None:
            return None
        details = self._backend.describe()
        if "model_type" in details:
            # Which prompt format the items of each suite with official formats get (the items of
            # every other suite, and any request with a system turn, get the chat template).
            details["prompt_formats"] = prompt_formats(details["model_type"], self.generation.prompt_format)
        return parse_as(ModelInfo, details, "model")

    def backend_settled(self) -> bool:
        """The model is loaded, or failed to load (and `backend` raises that failure)."""
        return self._backend is not None or self._backend_error is not None

    def backend(self) -> Backend:
        """Load the model on first use (once per process). A failure is kept, so every later shard
        reports the same one clear message instead of trying again."""
        if self._backend_error:
            raise VlmSafetyError(self._backend_error)
        if self._backend is None:
            started = time.perf_counter()
            try:
                self._backend = load_backend(self.backend_spec, self.load)
            except Exception as exc:
                self._backend_error = str(exc) if isinstance(exc, VlmSafetyError) else f"{type(exc).__name__}: {exc}"
                raise VlmSafetyError(self._backend_error) from exc
            self.stats.model_load_s += time.perf_counter() - started
        return self._backend

    def max_new_tokens(self, item: SafetyItem) -> int:
        return self.default_max_new_tokens(item.max_new_tokens)

    def default_max_new_tokens(self, protocol: int | None = None) -> int:
        """--vlm-max-new-tokens, else the tiny model's short length, else `protocol` (a benchmark's
        own length), else the default."""
        if self.generation.max_new_tokens:
            return self.generation.max_new_tokens
        if self.backend_spec.is_noise:
            return NOISE_MAX_NEW_TOKENS
        return protocol or DEFAULT_MAX_NEW_TOKENS

    def run_shard(self, items: Sequence[SafetyItem], label: str) -> None:
        """Produce a record for every item of the shard at once (the pipeline, pipeline.py, streams
        them batch by batch instead); never raises for one item's failure."""
        todo = [item for item in items if item.key not in self.records]
        if not todo:
            return
        self.stats.shards += 1
        runnable, errors = self.check_items(todo)
        for item in todo:
            if item.key in errors:
                self.records[item.key] = record_for(item, error=errors[item.key])
        if not runnable:
            return
        try:
            generations = self._generate(runnable, label)
        except VlmSafetyError as exc:
            for item in runnable:
                self.records[item.key] = record_for(item, error=f"model unavailable: {exc}")
            return
        self.judge_items(runnable, generations)

    def check_items(self, items: Sequence[SafetyItem]) -> tuple[list[SafetyItem], dict[str, str]]:
        """The items that can be generated, and the error of each one that cannot (by key)."""
        runnable: list[SafetyItem] = []
        errors: dict[str, str] = {}
        for item in items:
            try:
                check_prompt_length(item, self.data.max_prompt_chars)
                # Existence and the size in the header only: decoding every image again on a cache
                # hit or a replay costs more than the rest of the item; the model backend decodes
                # and names a corrupt file.
                check_images_exist(item.images)
                check_image_sizes(item.images, self.data.max_image_pixels)
            except ItemError as exc:
                errors[item.key] = str(exc)
            else:
                runnable.append(item)
        return runnable, errors

    def requests_for(self, items: Sequence[SafetyItem]) -> list[GenerationRequest]:
        """One request per sample (`--vlm-samples`) per item, item-major."""
        return [
            self.generation.request(
                item.suite, item.id, item.prompt, item.images, self.max_new_tokens(item), sample_index=index,
                # An API model gets the text first where its suite's official code sends it so.
                text_first=self.backend_spec.backend.served and api_text_first(item.suite),
            )
            for item in items
            for index in range(self.generation.samples)
        ]

    def _generate(self, items: Sequence[SafetyItem], label: str) -> list[list[tuple[Generation, bool]]]:
        """(generation, served from the store) per sample (`--vlm-samples`), per item."""
        samples = self.generation.samples
        flat = self.generate(self.requests_for(items), label)
        return [flat[start:start + samples] for start in range(0, len(flat), samples)]

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        label: str,
        *,
        show_progress: bool = True,
        on_ready: ReadyCallback | None = None,
        load: Callable[[], Backend] | None = None,
    ) -> list[tuple[Generation, bool]]:
        """(generation, served from the store) per request: the store first, then the model in
        batches. Raises VlmSafetyError when the model cannot be loaded or cannot honour a request.
        `on_ready` hears of each generation as soon as it is ready (and may raise to stop);
        `load` gives the model (default: `backend`, loading it in this thread)."""
        main = threading.current_thread() is threading.main_thread()
        while not self._generation_lock.acquire(timeout=0.1):
            if main and self.serve_while_waiting is not None:
                self.serve_while_waiting()
        try:
            return self._generate_locked(requests, label, show_progress, on_ready, load or self.backend)
        finally:
            self._generation_lock.release()

    def _generate_locked(
        self,
        requests: Sequence[GenerationRequest],
        label: str,
        show_progress: bool,
        on_ready: ReadyCallback | None,
        load: Callable[[], Backend],
    ) -> list[tuple[Generation, bool]]:
        systems = {r.system for r in requests if r.system is not None}
        if systems:
            backend = load()
            if not backend.supports_system_prompt:
                raise VlmSafetyError(
                    f"system prompts need a backend that renders them; the {backend.name} backend of "
                    f"--vlm={self.backend_spec.raw} does not: run without --vlm-system-prompt and system="
                )
            for system in sorted(systems):
                option = "--vlm-system-prompt" if system == self.generation.system_prompt else "vlm.ask(system=...)"
                backend.check_system_turn(system, option)
        store = self.store
        keys = (
            [
                store.key(
                    r.prompt, r.images, r.max_new_tokens, r.system, r.sampling, r.sample_index,
                    item=(r.suite, r.item_id),
                )
                for r in requests
            ]
            if store
            else []
        )
        cached = store.get_many(keys) if store else [None] * len(requests)
        missing = [i for i, text in enumerate(cached) if text is None]
        out: list[tuple[Generation, bool]] = [
            (Generation(text=text), True) if text is not None else (Generation.failed("pending"), False)
            for text in cached
        ]
        self.stats.cache_hits += len(requests) - len(missing)
        if on_ready is not None and len(missing) < len(requests):
            on_ready([(index, generation, True) for index, (generation, hit) in enumerate(out) if hit])
        if missing:
            backend = load()
            progress = self.progress_factory(label, len(missing)) if self.progress_factory and show_progress else None

            def finished(batch: list[tuple[int, Generation]]) -> None:
                done = [(missing[i], g) for i, g in batch if g.text is not None]
                self.stats.generations += len(done)
                self.stats.generated_tokens += sum(g.generated_tokens for _, g in batch)
                if store and done:
                    store.put_many({keys[index]: g.text for index, g in done if g.text is not None})
                if progress:
                    progress.advance(len(batch))
                if on_ready is not None:
                    on_ready([(missing[i], g, False) for i, g in batch])

            started = time.perf_counter()
            try:
                fresh = backend.generate(
                    [requests[i] for i in missing], progress=finished, batch_size=self.generation.batch_limit
                )
            finally:
                if progress:
                    progress.close()
                self.stats.generation_s += time.perf_counter() - started
            for index, generation in zip(missing, fresh, strict=True):
                out[index] = (generation, False)
        return out

    def judge_name(self, item: SafetyItem) -> str:
        return self.suites[item.suite].judge_name_for(item, self.judging.judge)

    def judge_answer(self, item: SafetyItem, response: str) -> Verdict:
        """An answer of the `vlm` fixture (`Answer.refused`, a `vlmsafety_case` record) judged
        exactly as an open item of a suite whose own judge is `refusal` (a JSONL suite): by the
        run's --safety-judge, built from the run's options (--refusal-phrases, the LLM judge)."""
        requested = self.judging.judge
        name = REFUSAL_JUDGE_NAME if requested in (None, "auto") else requested
        return self._verdicts(name, [item], [response])[0]

    def _verdicts(self, name: str, items: Sequence[SafetyItem], responses: Sequence[str]) -> list[Verdict]:
        judge = get_judge(name, self.judging, self.base_dir)
        if name != LLM_JUDGE_NAME:
            return judge.judge(items, responses)
        from .judges.llm import judge_with_second_opinion

        # The suite's own rule judge gives a second opinion, for the agreement (Cohen's kappa).
        return judge_with_second_opinion(
            judge,
            items,
            responses,
            # A `vlm` fixture answer belongs to no loaded suite: its own judge is `refusal`.
            lambda item: (
                self.suites[item.suite].judge_name_for(item, "auto") if item.suite in self.suites
                else REFUSAL_JUDGE_NAME
            ),
            self.judging,
            self.base_dir,
        )

    def judge_items(
        self, items: Sequence[SafetyItem], generations: Sequence[Sequence[tuple[Generation, bool]]]
    ) -> None:
        """Judge every sample of every item with the item's judge; an item's record takes the
        worst sample's verdict (`items.worst_sample`). One sample without a response makes the
        item an error: its worst case is unknown."""
        started = time.perf_counter()
        by_judge: dict[str, list[int]] = defaultdict(list)
        for index, (item, samples) in enumerate(zip(items, generations, strict=True)):
            failed = next((g for g, _ in samples if g.text is None), None)
            if failed is not None:
                error = failed.error or "no response"
                if len(samples) > 1:
                    error = f"sample {[g for g, _ in samples].index(failed) + 1} of {len(samples)}: {error}"
                self.records[item.key] = record_for(item, error=error)
            else:
                by_judge[self.judge_name(item)].append(index)
        for name, indices in sorted(by_judge.items()):
            # Flat: every sample of every item of the group, item-major.
            group = [items[i] for i in indices for _ in generations[i]]
            responses = [g.text or "" for i in indices for g, _ in generations[i]]
            try:
                verdicts = self._verdicts(name, group, responses)
            except Exception as exc:  # noqa: BLE001 - a judge failure costs its items, not the run
                for i in indices:
                    self.records[items[i].key] = record_for(
                        items[i], response=generations[i][0][0].text,
                        error=f"judge {name!r} failed: {type(exc).__name__}: {exc}",
                    )
                continue
            start = 0
            for i in indices:
                count = len(generations[i])
                self.records[items[i].key] = self._record(
                    items[i], responses[start:start + count], verdicts[start:start + count],
                    cached=all(from_store for _, from_store in generations[i]),
                )
                start += count
        self.stats.judge_s += time.perf_counter() - started

    @staticmethod
    def _record(item: SafetyItem, responses: Sequence[str], verdicts: Sequence[Verdict], *, cached: bool) -> Record:
        if len(responses) == 1:
            return record_for(item, response=responses[0], verdict=verdicts[0], cached=cached)
        return record_for(item, response=responses[0], verdicts=verdicts, responses=responses, cached=cached)
