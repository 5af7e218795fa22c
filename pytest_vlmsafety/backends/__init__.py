"""Which backend a `--vlm` value means, and the one loaded instance per process.

Resolving a spec is pure and cheap (no torch import), so bad values are usage errors at start-up;
loading happens on the first item that needs the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .aliases import MODEL_ALIASES
from .base import Backend, Generation, GenerationRequest

if TYPE_CHECKING:
    from ..options import RunOptions

TINY_RANDOM = "tiny-random"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class BackendSpec:
    """A parsed `--vlm` value. `kind` is hf, tiny or replay; `target` the hub id, folder or file."""

    raw: str
    kind: str
    target: str

    @property
    def is_noise(self) -> bool:
        return self.kind == "tiny"


def accepted_forms() -> str:
    return (
        f"an alias ({', '.join(MODEL_ALIASES)}), a hub id like org/name, a local model folder, "
        f"{TINY_RANDOM}, or replay:FILE"
    )


def parse_backend_spec(raw: str) -> BackendSpec:
    value = raw.strip()
    if value == TINY_RANDOM:
        return BackendSpec(raw, "tiny", TINY_RANDOM)
    if value.startswith("replay:"):
        path = Path(value.removeprefix("replay:")).expanduser()
        if not path.is_file():
            raise ConfigError(f"--vlm={raw}: replay file {path} not found")
        return BackendSpec(raw, "replay", str(path))
    if value in MODEL_ALIASES:
        return BackendSpec(raw, "hf", MODEL_ALIASES[value])
    if Path(value).expanduser().is_dir():
        return BackendSpec(raw, "hf", str(Path(value).expanduser().resolve()))
    if _HUB_ID.match(value):
        return BackendSpec(raw, "hf", value)
    raise ConfigError(f"--vlm={raw}: unknown model; accepted: {accepted_forms()}")


_loaded: dict[tuple, Backend] = {}


def load_backend(spec: BackendSpec, options: "RunOptions") -> Backend:
    """The backend for `spec`, loaded at most once per process."""
    key = (spec, options.dtype, options.device, options.revision, options.trust_remote_code)
    if key not in _loaded:
        if spec.kind == "replay":
            from .replay import ReplayBackend

            _loaded[key] = ReplayBackend(Path(spec.target))
        else:
            from .hf import HuggingFaceBackend

            target = spec.target
            if spec.kind == "tiny":
                from .tiny import build_tiny_model

                target = str(build_tiny_model())
            _loaded[key] = HuggingFaceBackend(
                target,
                spec=spec.raw,
                revision=options.revision,
                dtype=options.dtype,
                device=options.device,
                trust_remote_code=options.trust_remote_code,
                noise=spec.is_noise,
            )
    return _loaded[key]


__all__ = [
    "Backend",
    "BackendSpec",
    "Generation",
    "GenerationRequest",
    "MODEL_ALIASES",
    "TINY_RANDOM",
    "load_backend",
    "parse_backend_spec",
]
