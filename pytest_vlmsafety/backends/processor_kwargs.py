"""Which settings a model's processor takes, to refuse a `--vlm-processor-kwargs` key it would
ignore. `AutoProcessor.from_pretrained(**kwargs)` drops a key none of its parts knows without a
word (`max_pixel` for `max_pixels`), so the run would record as applied a setting that changed
nothing.

A processor of transformers 5 states what its image and video processors take as a TypedDict
(`valid_kwargs`); the processor's own settings are its constructor's parameters. A processor that
states neither is not checked (nothing to check against)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError


def _typed_dict_keys(valid: Any) -> set[str]:
    try:
        return set(typing.get_type_hints(valid))
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: its names still count
        return {name for klass in getattr(valid, "__mro__", (valid,)) for name in getattr(klass, "__annotations__", {})}


def _init_parameters(obj: Any) -> set[str]:
    try:
        parameters = inspect.signature(type(obj).__init__).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def accepted_processor_kwargs(processor: Any) -> set[str] | None:
    """The settings `processor` takes, or None when it does not say."""
    accepted: set[str] = set()
    stated = False
    for part in (processor, getattr(processor, "image_processor", None), getattr(processor, "video_processor", None)):
        if part is None:
            continue
        valid = getattr(part, "valid_kwargs", None)
        if isinstance(valid, type):
            accepted |= _typed_dict_keys(valid)
            stated = True
        accepted |= _init_parameters(part)
    return accepted if stated else None


def check_processor_kwargs(processor: Any, kwargs: Mapping[str, Any], *, model: str) -> None:
    """ConfigError naming each key of `kwargs` the processor does not take, and the ones it does."""
    accepted = accepted_processor_kwargs(processor)
    if accepted is None:
        return
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"--vlm-processor-kwargs: the processor of {model} ({type(processor).__name__}) does not take "
            f"{', '.join(repr(key) for key in unknown)} and would ignore it; it takes: {', '.join(sorted(accepted))}"
        )
