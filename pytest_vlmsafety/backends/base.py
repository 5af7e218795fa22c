"""The model-under-test protocol: a batch of requests in, one generation per request out."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Requests in flight per process to an OpenAI-compatible server (`--vlm-concurrency`).
DEFAULT_CONCURRENCY = 8
# How a request's prompt is written (`--prompt-format`, backends/official_prompts.py): a
# benchmark's official format where it has one for the model's family, or the chat template.
OFFICIAL = "official"
CHAT_TEMPLATE = "chat-template"

# The suite of a request of the `vlm` fixture (fixture.Vlm): a question, not a suite item.
QUESTION_SUITE = "vlm"

# Called with each batch as it finishes: (index into the requests, its generation) pairs. The
# engine writes them to the cache at once, so a run killed mid-way keeps what it generated.
ProgressCallback = Callable[[list[tuple[int, "Generation"]]], None]


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding (`--vlm-temperature`, `--vlm-top-p`, `--vlm-seed`). A request without one
    decodes greedily, the default. `seed` None: unseeded, so not reproducible."""

    temperature: float
    top_p: float = 1.0
    seed: int | None = None

    def key_fields(self, sample_index: int) -> dict[str, object]:
        """What goes into a generation's cache key: the settings and which sample this is."""
        return {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed, "sample": sample_index}


def request_seed(request: GenerationRequest) -> int | None:
    """The seed of one sampled request: derived from `--vlm-seed`, the request's content (suite,
    item, prompt, system turn) and its sample index, so a request draws the same tokens
    whatever else shares its batch or process, and the N samples of an item differ. None when
    the run is unseeded or greedy. Image paths are left out: a dataset moved to another folder
    keeps its seeds."""
    if request.sampling is None or request.sampling.seed is None:
        return None
    material = "\x1f".join([
        str(request.sampling.seed), request.suite, request.item_id, request.prompt, request.system or "",
        str(request.sample_index),
    ])
    # 63 bits: every backend's seed type (torch, vLLM, OpenAI's integer) takes it.
    return int.from_bytes(hashlib.sha256(material.encode("utf-8")).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class GenerationRequest:
    suite: str
    item_id: str
    prompt: str
    images: tuple[Path, ...]
    max_new_tokens: int
    # A system turn before the user's (the `vlm` fixture's `system=`); None: no system turn.
    # The engine refuses such a request with a clear message unless the backend sets
    # `supports_system_prompt`.
    system: str | None = None
    # None: greedy decoding. `sample_index` tells the N samples of one item apart (`--vlm-samples`).
    sampling: Sampling | None = None
    sample_index: int = 0
    # A question of the `vlm` fixture (suite `QUESTION_SUITE`, no item id: its seed and cache key
    # follow its content, whoever asks it): the (suite, id) of the case record of the test that
    # asked it in its own body or a function fixture, None when a broader fixture asked. Only
    # `replay:` reads it, to answer from that test's record.
    asked_by: tuple[str, str] | None = None
    # The user turn's order: False, every image then the text (our default); True, the text then
    # the images, as some official code sends them (a judge scheme's `JudgeCall.text_first`, a
    # suite's `api_text_first` for API models).
    text_first: bool = False
    # The model under test's `--prompt-format` (GenerationConfig.request); any other request (an
    # LLM judge's call) gets the chat template.
    prompt_format: str = CHAT_TEMPLATE


def is_question(request: GenerationRequest) -> bool:
    """A question of the `vlm` fixture, not a suite item: suite items have non-empty ids, so a
    suite of that name (a `vlm.jsonl`) is never taken for one."""
    return request.suite == QUESTION_SUITE and request.item_id == ""


@dataclass(frozen=True)
class Generation:
    """The text a model produced for one request, or why it could not."""

    text: str | None
    error: str | None = None
    generated_tokens: int = 0

    @classmethod
    def failed(cls, message: str) -> Generation:
        return cls(text=None, error=message)


class Backend(ABC):
    """A model that answers requests. One instance per process: loading is the expensive part."""

    name: str = "backend"
    # True when the output is meaningless by construction (the tiny random model).
    noise: bool = False
    # True when the backend renders `GenerationRequest.system` as a system turn.
    supports_system_prompt: bool = False

    def check_system_turn(self, system: str, option: str) -> None:
        """Raise ConfigError naming `option` when the model's chat template cannot render a system
        turn. Local backends render one probe conversation; a server says so per request."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Model identity for the results file: spec, id, revision or weights hash, dtype, device."""

    @abstractmethod
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        """One Generation per request, in the order given. A failure of one request is returned as
        `Generation.failed`, never raised, so the other requests keep their results.
        `batch_size` None means the backend's own default."""
