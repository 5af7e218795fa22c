"""The Hugging Face backend: `AutoProcessor` + `AutoModelForImageTextToText` + the processor's chat
template; batched, left-padded generation: greedy by default, sampled with `--vlm-temperature`.

Seeded sampling (`--vlm-seed`) runs one request per `generate` call, with torch's generator
seeded from that request's own seed (`base.request_seed`): a batch shares one random stream, so a
request's tokens would otherwise depend on what else is in its batch. Batch 1 and batch 8 then
give the same responses on one machine; other hardware or library versions may draw differently.
Unseeded sampling stays batched."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ConfigError, ItemError
from .base import Backend, Generation, GenerationRequest, ProgressCallback, Sampling, request_seed
from .dtypes import resolve_dtype
from .images import image_pixels, load_images
from .official_prompts import prompt_text
from .prompts import adds_special_tokens, check_system_turn

log = logging.getLogger("pytest_vlmsafety")

def choose_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(requested: str, device: str) -> Any:
    """The torch dtype for `--vlm-dtype` on `device` (the policy: `dtypes.resolve_dtype`)."""
    import torch

    cuda = device.startswith("cuda")
    return getattr(torch, resolve_dtype(requested, cuda, cuda and torch.cuda.is_bf16_supported()))


# Tokens a VLM prompt occupies before generation, images included (Qwen2-VL at ~1 megapixel is
# about 1,000 visual tokens; LLaVA-1.5 576). An estimate on the generous side keeps `auto` safe.
PROMPT_TOKENS_ESTIMATE = 1024
MAX_AUTO_BATCH = 64
# Share of free GPU memory the KV cache may take; the rest is activations, the vision tower and
# the allocator's slack.
KV_MEMORY_SHARE = 0.5


def kv_bytes_per_token(text_config: Any, dtype_bytes: int) -> int:
    """Bytes of key/value cache one token costs across all layers."""
    layers = text_config.num_hidden_layers
    heads = getattr(text_config, "num_key_value_heads", None) or text_config.num_attention_heads
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
    return int(2 * layers * heads * head_dim * dtype_bytes)


def auto_batch_size(free_bytes: int, bytes_per_token: int, tokens_per_item: int) -> int:
    """The largest batch whose KV cache fits in a share of free memory, between 1 and 64."""
    per_item = max(bytes_per_token * tokens_per_item, 1)
    return max(1, min(MAX_AUTO_BATCH, int(free_bytes * KV_MEMORY_SHARE // per_item)))


def order_for_batching(requests: Sequence[GenerationRequest], pixels: Sequence[int] | None = None) -> list[int]:
    """Indices sorted so that a batch holds requests of one image count and generation length,
    with similar image sizes (which decide the visual token count of dynamic-resolution models
    such as Qwen2-VL) and prompt lengths: less padding."""
    sizes = pixels or [0] * len(requests)
    return sorted(
        range(len(requests)),
        key=lambda i: (len(requests[i].images), requests[i].max_new_tokens, sizes[i], len(requests[i].prompt)),
    )


def batches(order: list[int], requests: Sequence[GenerationRequest], size: int) -> list[list[int]]:
    """Split `order` into batches of at most `size` that never mix image counts, lengths or
    decoding settings (`generate` takes one of each per call)."""
    out: list[list[int]] = []

    def shape(index: int) -> tuple[int, int, Sampling | None]:
        return len(requests[index].images), requests[index].max_new_tokens, requests[index].sampling

    for index in order:
        last = out[-1] if out else None
        if last and len(last) < size and shape(last[0]) == shape(index):
            last.append(index)
        else:
            out.append([index])
    return out


# Packages a processor or model may import only when it loads, and how to install them.
_INSTALL = {
    "torchvision": "pip install torchvision (matching your torch: on a CPU-only machine "
    "pip install torch==2.14.1 torchvision==0.29.1)",
    "num2words": "pip install num2words",
}


def missing_dependency(spec: str, model: str, exc: ImportError) -> ConfigError:
    """One clear message for a package the model's processor or code needs but this environment
    lacks, naming the package and the command that installs it."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    named = re.search(r"[Pp]ackage `?([\w.-]+)`? is required|No module named '([\w.-]+)'", text)
    package = exc.name or next((name for name in _INSTALL if name in text.lower()), None)
    if package is None and named:
        package = named.group(1) or named.group(2)
    package = package.split(".")[0] if package else None
    command = _INSTALL.get(package or "", f"pip install {package}" if package else "install the missing package")
    return ConfigError(
        f"--vlm={spec}: loading {model!r} needs {package or 'a package'}, which is not installed ({text}). "
        f"Install it: {command}"
    )


class HuggingFaceBackend(Backend):
    name = "hf"
    supports_system_prompt = True

    def __init__(
        self,
        model: str,
        *,
        spec: str,
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        trust_remote_code: bool = False,
        noise: bool = False,
        processor_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.spec = spec
        self.model_id = model
        self.noise = noise
        self.processor_kwargs = dict(processor_kwargs or {})
        self.device = choose_device(device)
        self.torch_dtype = choose_dtype(dtype, self.device)
        started = time.perf_counter()
        common = {"revision": revision, "trust_remote_code": trust_remote_code}
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress line reports generation
        try:
            self.processor = AutoProcessor.from_pretrained(model, **common, **self.processor_kwargs)
            self.model = AutoModelForImageTextToText.from_pretrained(model, dtype=self.torch_dtype, **common)
        except ImportError as exc:
            raise missing_dependency(spec, model, exc) from exc
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"--vlm={spec}: could not load {model!r} with AutoModelForImageTextToText: {exc}. "
                "Check the name, that the model is a vision-language model, HF_TOKEN for gated models, "
                "and --vlm-trust-remote-code for models with their own code."
            ) from exc
        finally:
            hf_logging.enable_progress_bar()
        if self.processor_kwargs:
            from .processor_kwargs import check_processor_kwargs

            check_processor_kwargs(self.processor, self.processor_kwargs, model=model)
        self.model.to(self.device).eval()  # type: ignore[arg-type]  # transformers' stub types `to` oddly
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        model_type = getattr(self.model.config, "model_type", None)
        self.model_type = model_type if isinstance(model_type, str) else None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.processor, "chat_template", None):
            raise ConfigError(
                f"--vlm={spec}: the processor of {model!r} has no chat template; pytest-vlmsafety formats "
                "prompts only through the model's own chat template"
            )
        self._system_turn_checked: set[str] = set()
        self.revision = getattr(self.model.config, "_commit_hash", None) or revision
        self.oom_batch_cap: int | None = None
        self.load_seconds = time.perf_counter() - started
        self._torch = torch

    def check_system_turn(self, system: str, option: str) -> None:
        if system not in self._system_turn_checked:
            check_system_turn(self.processor, system, model=self.model_id, option=option)
            self._system_turn_checked.add(system)

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "id": self.model_id,
            "revision": self.revision,
            "backend": self.name,
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "device": self.device,
            "noise": self.noise,
            "processor_kwargs": self.processor_kwargs,
            "load_s": round(self.load_seconds, 3),
            # The family that official prompt formats are chosen by (the engine adds which one each suite gets).
            "model_type": self.model_type,
        }

    def default_batch_size(self, max_new_tokens: int = 256) -> int:
        """On CUDA, from free memory (an out-of-memory batch is still halved and retried); on the
        CPU a fixed 16, where larger batches stop paying off."""
        if not self.device.startswith("cuda"):
            return 16
        free, _ = self._torch.cuda.mem_get_info(self._torch.device(self.device))
        dtype_bytes = self._torch.tensor([], dtype=self.torch_dtype).element_size()
        per_token = kv_bytes_per_token(self.model.config.get_text_config(), dtype_bytes)
        return auto_batch_size(free, per_token, PROMPT_TOKENS_ESTIMATE + max_new_tokens)

    def _prepare(self, batch: Sequence[GenerationRequest]) -> Any:
        """Processor inputs for one batch (runs on a helper thread while the previous batch
        generates): the token ids `processor.apply_chat_template(..., tokenize=True)` gives each
        conversation, left-padded."""
        texts = [prompt_text(self.processor, r, self.model_type) for r in batch]
        images = [load_images(r.images) for r in batch]
        kwargs: dict[str, Any] = {
            "text": texts,
            "return_tensors": "pt",
            "padding": True,
            "add_special_tokens": adds_special_tokens(self.tokenizer, texts[0]),
        }
        if any(images):
            kwargs["images"] = images
        return self.processor(**kwargs)

    def _generate_prepared(self, inputs: Any, first: GenerationRequest) -> tuple[list[str], list[int]]:
        """Generate one prepared batch with the settings of its `first` request (a batch never
        mixes lengths or decoding settings: `batches`)."""
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
        decoding: dict[str, Any] = {"do_sample": False}
        if first.sampling is not None:
            # top_k=0: no top-k cut, which the model's generation_config may otherwise impose
            # (vLLM and the OpenAI API sample with temperature and top-p alone too).
            decoding = {
                "do_sample": True, "temperature": first.sampling.temperature, "top_p": first.sampling.top_p, "top_k": 0,
            }
            seed = request_seed(first)
            if seed is not None:
                self._torch.manual_seed(seed)  # seeds every device's generator
        with self._torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=first.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **decoding,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        pad = self.tokenizer.pad_token_id
        counts = [int((row != pad).sum()) for row in new_tokens]
        return [t.strip() for t in texts], counts

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        if not requests:
            return []
        size = batch_size or self.default_batch_size(max(r.max_new_tokens for r in requests))
        if self.oom_batch_cap:
            size = min(size, self.oom_batch_cap)
        if any(request_seed(r) is not None for r in requests):
            size = 1  # one random stream per request: see the module docstring
        order = order_for_batching(requests, [image_pixels(r.images) for r in requests])
        # The same batches, generated in the order of their first request: a caller that runs
        # items in request order (the pipeline) waits for one batch per item, not for the shard.
        plan = sorted(batches(order, requests, size), key=min)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlmsafety-prepare") as pool:
            pending = pool.submit(self._prepare, [requests[i] for i in plan[0]]) if plan else None
            for number, indices in enumerate(plan):
                assert pending is not None
                prepared = pending
                pending = (
                    pool.submit(self._prepare, [requests[i] for i in plan[number + 1]])
                    if number + 1 < len(plan)
                    else None
                )
                finished = list(zip(indices, self._run_batch(requests, indices, prepared), strict=True))
                for index, generation in finished:
                    results[index] = generation
                if progress:
                    progress(finished)
        return [r if r is not None else Generation.failed("not generated") for r in results]

    def _run_batch(self, requests: Sequence[GenerationRequest], indices: list[int], prepared: Any) -> list[Generation]:
        """Generate one batch; on CUDA out-of-memory halve it and retry, down to single items; an
        item that still fails becomes an error of its own."""
        batch = [requests[i] for i in indices]
        try:
            inputs = prepared.result()
            texts, counts = self._generate_prepared(inputs, batch[0])
            return [Generation(text=t, generated_tokens=n) for t, n in zip(texts, counts, strict=True)]
        except self._torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                return [Generation.failed("CUDA out of memory even with a batch of one")]
            self._torch.cuda.empty_cache()
            half = len(indices) // 2
            if self.oom_batch_cap is None or half < self.oom_batch_cap:
                log.warning(
                    "vlmsafety: CUDA out of memory at batch size %d; batches of %d from now on", len(batch), half
                )
            # Later batches start at the size that fits instead of failing first every time.
            self.oom_batch_cap = min(self.oom_batch_cap or half, half)
            return [
                *self._run_sub_batch(requests, indices[:half]),
                *self._run_sub_batch(requests, indices[half:]),
            ]
        except Exception as exc:  # noqa: BLE001 - one bad batch must not lose the others
            if len(batch) == 1:
                message = str(exc) if isinstance(exc, ItemError) else f"{type(exc).__name__}: {exc}"
                return [Generation.failed(message)]
            return [g for i in indices for g in self._run_sub_batch(requests, [i])]

    def _run_sub_batch(self, requests: Sequence[GenerationRequest], indices: list[int]) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            prepared = pool.submit(self._prepare, [requests[i] for i in indices])
            return self._run_batch(requests, indices, prepared)
