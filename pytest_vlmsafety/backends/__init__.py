"""Which backend a `--vlm` value means, and the one loaded instance per process.

Resolving a spec is pure and cheap (no torch import), so bad values are usage errors at start-up;
loading happens on the first item that needs the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .aliases import MODEL_ALIASES
from .base import CHAT_TEMPLATE, Backend, Generation, GenerationRequest

if TYPE_CHECKING:
    from ..cache import Cache, ModelFingerprint
    from .config import LoadConfig

TINY_RANDOM = "tiny-random"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class BackendSpec:
    """A parsed `--vlm` value. `kind` is hf, tiny, replay, vllm or openai; `target` the hub id,
    folder or file (vllm: also tiny-random; openai: the served model's name). `base_url` is the
    server named in an `openai:MODEL@URL` spec."""

    raw: str
    kind: str
    target: str
    base_url: str | None = None

    @property
    def backend(self) -> BackendKind:
        """What the spec's kind can do (its registration in `BACKEND_KINDS`)."""
        return backend_kind(self.kind)

    @property
    def is_noise(self) -> bool:
        return self.backend.noise or (self.backend.local and self.target == TINY_RANDOM)


@dataclass(frozen=True)
class BackendKind:
    """One kind of backend, registered once in `BACKEND_KINDS`: how it loads and what it can do.
    Code outside this module asks these attributes, never the kind's name.

    `load`: the backend for a spec and the run's options; `location`: the hub id or folder it loads
    (None for a kind that loads no weights); `reported_as`: `model.backend` in the results;
    `local`: loads weights in this process (`--vlm-device` applies); `replays`: its responses are
    read from a file (never cached: `caches_generations`; no system prompt, no sampling; a test's
    answer is its own);
    `served`: a model behind an OpenAI-compatible server, identified by its name and URL;
    `renders_chat_template`: the system turn goes through the processor's chat template;
    `text_judge`: as `--judge-model`, a text-only causal LM loads with AutoModelForCausalLM;
    `noise`: random weights whatever the target; `locate`: the hub id or folder a local kind loads."""

    name: str
    load: Callable[[BackendSpec, LoadConfig], Backend]
    reported_as: str
    local: bool = False
    replays: bool = False
    served: bool = False
    renders_chat_template: bool = False
    text_judge: bool = False
    noise: bool = False
    locate: Callable[[BackendSpec], str] = lambda spec: spec.target

    @property
    def caches_generations(self) -> bool:
        """Whether the generation cache keeps this kind's responses: replayed ones are not
        cached, since reading the replay file again is as cheap as reading the cache."""
        return not self.replays


def accepted_forms() -> str:
    return (
        f"an alias ({', '.join(MODEL_ALIASES)}), a hub id like org/name, a local model folder, "
        f"{TINY_RANDOM}, replay:FILE, vllm:MODEL (any of the model forms, run by vLLM in-process), "
        "or openai:NAME[@URL] (a model served by an OpenAI-compatible server)"
    )


def parse_backend_spec(raw: str, option: str = "--vlm") -> BackendSpec:
    """`option` names the flag in messages (`--judge-model` takes the same forms)."""
    value = raw.strip()
    if value == TINY_RANDOM:
        return BackendSpec(raw, "tiny", TINY_RANDOM)
    if value.startswith("replay:"):
        path = Path(value.removeprefix("replay:")).expanduser()
        if not path.is_file():
            raise ConfigError(f"{option}={raw}: replay file {path} not found")
        return BackendSpec(raw, "replay", str(path))
    if value.startswith("vllm:"):
        return BackendSpec(raw, "vllm", _vllm_target(raw, value.removeprefix("vllm:").strip(), option))
    if value.startswith("openai:"):
        model, base_url = _split_server_spec(raw, value.removeprefix("openai:").strip(), option)
        from .openai_api import require_openai

        require_openai(option, raw)
        return BackendSpec(raw, "openai", model, base_url)
    target = _model_target(value)
    if target is None:
        raise ConfigError(f"{option}={raw}: unknown model; accepted: {accepted_forms()}")
    return BackendSpec(raw, "hf", target)


def _model_target(value: str) -> str | None:
    """An alias, local folder or hub id as the name to load; None when it is none of them."""
    if value in MODEL_ALIASES:
        return MODEL_ALIASES[value]
    if value and Path(value).expanduser().is_dir():
        return str(Path(value).expanduser().resolve())
    if _HUB_ID.match(value):
        return value
    return None


def _vllm_target(raw: str, model: str, option: str) -> str:
    if model == TINY_RANDOM:
        return TINY_RANDOM
    target = _model_target(model)
    if target is None:
        raise ConfigError(
            f"{option}={raw}: unknown model after 'vllm:'; give an alias ({', '.join(MODEL_ALIASES)}), a hub id "
            f"like org/name, a local model folder or {TINY_RANDOM}"
        )
    return target


def _split_server_spec(raw: str, value: str, option: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@http(s)://host:port/v1` -> (name, base URL or None)."""
    model, base_url = value, None
    for scheme in ("@http://", "@https://"):
        if scheme in value:
            model, _, rest = value.rpartition(scheme)
            base_url = scheme[1:] + rest
            break
    if not model:
        raise ConfigError(
            f"{option}={raw}: give the served model's name after 'openai:', e.g. openai:gpt-4o-mini or "
            "openai:Qwen/Qwen2-VL-7B-Instruct@http://127.0.0.1:8000/v1"
        )
    if base_url is not None:
        from .openai_api import resolve_base_url

        base_url = resolve_base_url(base_url)
    return model, base_url


_loaded: dict[tuple[BackendSpec, LoadConfig], Backend] = {}


def load_backend(spec: BackendSpec, load: LoadConfig) -> Backend:
    """The backend for `spec` loaded with `load` (the model under test's `--vlm-*` or the judge
    model's `--judge-*`), at most once per process."""
    key = (spec, load)
    if key not in _loaded:
        _loaded[key] = spec.backend.load(spec, load)
    return _loaded[key]


def _load_openai(spec: BackendSpec, load: LoadConfig) -> Backend:
    from .openai_api import OpenAIBackend, RetryPolicy, resolve_base_url

    return OpenAIBackend(
        spec.target,
        spec=spec.raw,
        base_url=resolve_base_url(spec.base_url or load.base_url),
        concurrency=load.concurrency,
        policy=RetryPolicy.from_options(load.retries, load.timeout_s),
    )


def _load_vllm(spec: BackendSpec, load: LoadConfig) -> Backend:
    from .vllm_engine import VllmBackend

    return VllmBackend(
        model_location(spec),
        spec=spec.raw,
        revision=load.revision,
        dtype=load.dtype,
        tensor_parallel=load.tensor_parallel,
        trust_remote_code=load.trust_remote_code,
        noise=spec.is_noise,
        processor_kwargs=load.processor_settings,
    )


def _load_replay(spec: BackendSpec, load: LoadConfig) -> Backend:
    from .replay import ReplayBackend

    return ReplayBackend(Path(spec.target))


def _load_hf(spec: BackendSpec, load: LoadConfig) -> Backend:
    from .hf import HuggingFaceBackend

    return HuggingFaceBackend(
        model_location(spec),
        spec=spec.raw,
        revision=load.revision,
        dtype=load.dtype,
        device=load.device,
        trust_remote_code=load.trust_remote_code,
        noise=spec.is_noise,
        processor_kwargs=load.processor_settings,
    )


def _tiny_location(spec: BackendSpec) -> str:
    from .tiny import build_tiny_model

    return str(build_tiny_model())


def _vllm_location(spec: BackendSpec) -> str:
    if spec.target != TINY_RANDOM:
        return spec.target
    from .vllm_engine import tiny_model_for_vllm

    return str(tiny_model_for_vllm())


# The backend kinds, one registration each (see `BackendKind`).
BACKEND_KINDS: dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("hf", _load_hf, "hf", local=True, renders_chat_template=True, text_judge=True),
        # `tiny-random`: the hf backend on a tiny model with random weights, built on first use.
        BackendKind("tiny", _load_hf, "hf", local=True, noise=True, locate=_tiny_location),
        BackendKind("vllm", _load_vllm, "vllm", local=True, renders_chat_template=True, locate=_vllm_location),
        BackendKind("replay", _load_replay, "replay", replays=True),
        BackendKind("openai", _load_openai, "openai", served=True),
    )
}


def backend_kind(name: str) -> BackendKind:
    kind = BACKEND_KINDS.get(name)
    if kind is None:
        raise ConfigError(f"unknown backend kind {name!r}; accepted: {', '.join(BACKEND_KINDS)}")
    return kind


def model_location(spec: BackendSpec) -> str:
    """The hub id or folder a local backend loads; `tiny-random` is built on first use (in
    vLLM's weight layout for `vllm:tiny-random`)."""
    return spec.backend.locate(spec)


def store_identity(
    spec: BackendSpec, load: LoadConfig, prompt_format: str, cache: Cache
) -> tuple[ModelFingerprint, dict[str, Any]]:
    """(model fingerprint, generation parameters) that key this backend's generations in the
    cache. A served model is its name at its server's URL (never the API key); a local model
    its weights; each backend kind keys apart, since their outputs need not agree bit for bit."""
    from ..cache import ModelFingerprint, fingerprint_model, replay_fingerprint

    if spec.backend.served:
        from .openai_api import resolve_base_url, server_fingerprint

        url = resolve_base_url(spec.base_url or load.base_url)
        # "content_order": since API models get VSCBench's and UnsafeConcepts' text before the
        # image (`Suite.api_text_first`), older generations (image first) no longer match.
        params = {"backend": "openai", "do_sample": False, "seed": 0, "content_order": "official"}
        return ModelFingerprint(server_fingerprint(spec.target, url)), params
    from ..distributed.devices import probable_device_type

    fingerprint = (
        replay_fingerprint(cache, Path(spec.target)) if spec.backend.replays
        else fingerprint_model(cache, model_location(spec), load.revision)
    )
    device_type = probable_device_type(load.device)
    params = {"backend": spec.kind, "dtype": load.dtype, "device_type": device_type, "do_sample": False}
    if load.processor_kwargs:  # absent when unset: keys of existing caches stay valid
        params["processor_kwargs"] = load.processor_settings
    if prompt_format != CHAT_TEMPLATE:
        # The official per-model formats (backends/official_prompts.py) change the prompt of some
        # models on some suites; generations made before them used the chat template.
        params["prompt_format"] = prompt_format
    return fingerprint, params


__all__ = [
    "Backend",
    "BACKEND_KINDS",
    "BackendKind",
    "BackendSpec",
    "Generation",
    "GenerationRequest",
    "MODEL_ALIASES",
    "TINY_RANDOM",
    "backend_kind",
    "load_backend",
    "parse_backend_spec",
    "store_identity",
]
