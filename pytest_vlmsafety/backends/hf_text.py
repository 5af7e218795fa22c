"""Text-only causal language models (Llama Guard 3, WildGuard, Qwen2.5-Instruct...) as judges.

Most judge and guard models are not vision-language models: `AutoModelForImageTextToText`
cannot load them. This backend loads them with `AutoModelForCausalLM` and the tokenizer's own
chat template, greedy, in left-padded batches. It reads text only: a request with images is a
usage error (a judge scheme that must see the image needs a vision-language judge model).

`is_text_only_model` decides, from the model's config alone (no weights loaded), which of the
two loaders a `--judge-model` hub id or folder needs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from ..items import record_key
from .base import Backend, Generation, GenerationRequest, ProgressCallback

DEFAULT_BATCH_SIZE = 8


def is_text_only_model(model: str, *, revision: str | None = None, trust_remote_code: bool = False) -> bool:
    """True when `model` (hub id or folder) is a causal LM with no image-text-to-text class:
    its config's model type is in transformers' causal-LM mapping and not in the
    image-text-to-text one. A config that cannot be read is left to the vision-language loader,
    whose error message names the model."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    try:
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return False
    model_type = getattr(config, "model_type", "")
    is_causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return is_causal and model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


class TextCausalLMBackend(Backend):
    """A text-only causal LM, greedy; `accepts_images` is False."""

    name = "hf-text"
    accepts_images = False

    def __init__(
        self,
        model: str,
        *,
        spec: str,
        option: str = "--judge-model",
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .hf import choose_device, choose_dtype

        self.spec = spec
        self.option = option
        self.model_id = model
        self.device = choose_device(device)
        self.torch_dtype = choose_dtype(dtype, self.device)
        started = time.perf_counter()
        common = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, **common)
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=self.torch_dtype, **common)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{option}={spec}: could not load {model!r} with AutoModelForCausalLM: {exc}") from exc
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(
                f"{option}={spec}: the tokenizer of {model!r} has no chat template; a judge prompt is sent as one "
                "user turn through the model's own chat template"
            )
        self.model.to(self.device).eval()  # type: ignore[arg-type]  # transformers types .to() loosely
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.revision = getattr(self.model.config, "_commit_hash", None) or revision
        self.load_seconds = time.perf_counter() - started
        self._torch = torch

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "id": self.model_id,
            "backend": self.name,
            "revision": self.revision,
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "device": self.device,
        }

    def default_batch_size(self) -> int:
        return DEFAULT_BATCH_SIZE

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        with_images = [request for request in requests if request.images]
        if with_images:
            first = record_key(with_images[0].suite, with_images[0].item_id)
            suites = ", ".join(sorted({request.suite for request in with_images}))
            raise ConfigError(
                f"{self.option}={self.spec} is a text-only model, but {len(with_images)} judgement(s) must show the "
                f"judge the item's images (first: {first}); the judge scheme of {suites} shows the images, as its "
                f"official judge does: use a vision-language judge model for it"
            )
        size = batch_size or self.default_batch_size()
        out: list[Generation] = []
        for start in range(0, len(requests), size):
            batch = list(requests[start : start + size])
            generations = self._generate_batch(batch)
            if progress is not None:
                progress([(start + offset, generation) for offset, generation in enumerate(generations)])
            out += generations
        return out

    def _generate_batch(self, batch: Sequence[GenerationRequest]) -> list[Generation]:
        texts = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": request.prompt}], tokenize=False, add_generation_prompt=True
            )
            for request in batch
        ]
        # The chat template already wrote the special tokens it wants.
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with self._torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max(request.max_new_tokens for request in batch),
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        generations = []
        for request, tokens in zip(batch, new_tokens, strict=True):
            tokens = tokens[: request.max_new_tokens]
            kept = [int(t) for t in tokens if int(t) != self.tokenizer.pad_token_id]
            text = str(self.tokenizer.decode(kept, skip_special_tokens=True)).strip()
            generations.append(Generation(text=text, generated_tokens=len(kept)))
        return generations


__all__ = ["TextCausalLMBackend", "is_text_only_model"]
