"""The model-under-test protocol: a batch of requests in, one generation per request out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Requests in flight per process to an OpenAI-compatible server (`--vlm-concurrency`).
DEFAULT_CONCURRENCY = 8

# Called with each batch as it finishes: (index into the requests, its generation) pairs. The
# engine writes them to the cache at once, so a run killed mid-way keeps what it generated.
ProgressCallback = Callable[[list[tuple[int, "Generation"]]], None]


@dataclass(frozen=True)
class GenerationRequest:
    suite: str
    item_id: str
    prompt: str
    images: tuple[Path, ...]
    max_new_tokens: int
    # A system turn before the user's (the `vlm` fixture's `system=`); None: no system turn.
    # No backend renders one yet: the engine refuses such a request with a clear message
    # unless the backend sets `supports_system_prompt`.
    system: str | None = None


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
    # True once the backend renders `GenerationRequest.system` as a system turn.
    supports_system_prompt: bool = False

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
