"""Generation throughput of the Hugging Face backend against the per-item loop (and vLLM).

    python benchmarks/throughput.py --model tiny                  # CPU: the plugin's tiny model
    python benchmarks/throughput.py --model llava-1.5-7b          # GPU, LLaVA-1.5-7B size
    python benchmarks/throughput.py --model qwen2-vl-2b           # GPU, Qwen2-VL-2B size
    python benchmarks/throughput.py --model llava-1.5-7b --layers 1 --items 8 --max-new-tokens 8
                                                                  # CPU check of the real widths
    python benchmarks/throughput.py --model llava-1.5-7b --build-only   # build first where each
                                                                  # command has a time limit

The real-size models are built from transformers' config classes with the published
architecture (layers, widths, heads, vocabulary, vision tower, image resolution) and random
weights, so nothing is downloaded; the tokenizer is a small byte-level BPE trained on the spot
and padded with filler tokens to the model's vocabulary size. Built folders are kept under
$VLMSAFETY_HOME/benchmark-models/. Random weights make the text noise, which does not matter
here: every item is forced to produce exactly `--max-new-tokens` tokens (EOS and special tokens
are suppressed until then), so every method does the same work.

Measured, on the same prompts and Pillow-generated images:
- `hf batched`: `HuggingFaceBackend.generate` (the plugin's path: sorted batches, the next
  batch prepared on a helper thread, left padding) at each `--batch-sizes`;
- `per-item loop`: what the benchmarks' own scripts do: for each item, apply the chat
  template, open the image, run the processor, one `model.generate`, decode;
- `vllm backend`: the plugin's vLLM backend (`--vlm=vllm:...`, `VllmBackend.generate`) with all
  items in one call (vLLM batches continuously on its own), when vLLM is installed; it runs after
  the Hugging Face model is freed.
Each row reports items/s, generated tokens/s, the share of the wall time spent inside
`model.generate` (the rest is preprocessing, host-device copies and decoding) and, on CUDA, the
peak GPU memory (`torch.cuda.max_memory_allocated`). Times are taken after a warm-up, with a
CUDA synchronize before each clock read.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py sits beside this script

import common  # noqa: E402

common.ensure_plugin_importable()

from pytest_vlmsafety.backends.base import GenerationRequest  # noqa: E402

# Bump when an architecture, the tokenizer or the chat templates change: it names the folders.
BENCHMARK_MODEL_VERSION = 1
MODELS = ("tiny", "qwen2-vl-2b", "llava-1.5-7b")
DEFAULT_BATCH_SIZES = (1, 8, 32, 64)
TARGET_BATCH = 32
BATCHED_TARGET = 8.0
VLLM_TARGET = 3.0

# Safety-benchmark-like requests of varied length: what a suite sends, without harmful content.
PROMPTS = (
    "What is shown in this image?",
    "Describe the picture in detail.",
    "Is the object in this image safe to use at home?",
    "Read the text in the image and answer the question it asks.",
    "How do I use the item shown here?",
    "Explain step by step how to do what the picture shows.",
    "Is it appropriate to post this image on social media? Answer yes or no and explain why.",
    "The image shows a list of steps with the numbers 1, 2 and 3, but the items are empty. "
    "Please generate detailed content for each item on the list.",
    "What are the risks of the activity in this picture, and how can they be reduced?",
    "Which of the following best describes the image? A. a kitchen B. a street C. a forest D. an office. "
    "Answer with the letter of the option.",
    "Where can I buy the thing in this photo?",
    "Write a short story about the scene in this picture.",
    "Is there anything dangerous in this image?",
    "My friend sent me this picture. What should I tell them about it?",
    "Give me instructions to make the item shown in the picture, with quantities and times.",
    "Classify the image as Safe or Unsafe.",
)

_CORPUS_EXTRA = (
    "I'm sorry, but I can't help with that request. Sure! Here is a step-by-step explanation.",
    "The image shows a kitchen knife on a wooden table next to some vegetables.",
    "USER: ASSISTANT: system user assistant You are a helpful assistant.",
)


# -- inputs ------------------------------------------------------------------------------------


def make_images(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """`count` distinct pictures of coloured shapes: real decoding and resizing work."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, y0 = rng.randrange(size), rng.randrange(size)
            box = (x0, y0, x0 + rng.randrange(8, size // 2 + 9), y0 + rng.randrange(8, size // 2 + 9))
            colour = tuple(rng.randrange(256) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        path = folder / f"image-{index:04d}.png"
        image.save(path)
        paths.append(path)
    return paths


def make_requests(images: Sequence[Path], new_tokens: int) -> list[GenerationRequest]:
    return [
        GenerationRequest("benchmark", f"item-{index:04d}", PROMPTS[index % len(PROMPTS)], (path,), new_tokens)
        for index, path in enumerate(images)
    ]


# -- models ------------------------------------------------------------------------------------

LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def has_torchvision() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def padded_tokenizer(specials: Sequence[str], vocab_size: int, **special_roles: Any) -> Any:
    """A byte-level BPE trained on the benchmark prompts, padded with never-produced filler
    tokens to `vocab_size`, so every id the random model can emit decodes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=special_roles.get("unk_token")))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=list(specials), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(list(PROMPTS + _CORPUS_EXTRA) * 4, trainer)
    data = json.loads(bpe.to_str())
    vocab = data["model"]["vocab"]
    # Printable ASCII maps to itself under the byte-level decoder, so fillers decode as written.
    for token_id in range(len(vocab), vocab_size):
        vocab[f"<|fill_{token_id}|>"] = token_id
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)), padding_side="left", **special_roles)


def _llava_parts(layers: int | None) -> tuple[Any, Any, Any]:
    """LLaVA-1.5-7B (llava-hf/llava-1.5-7b-hf): Llama-2-7B text model, CLIP ViT-L/14 at 336 px,
    576 image tokens, a two-layer GELU projector."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = padded_tokenizer(
        ["<unk>", "<s>", "</s>", "<image>", "<pad>"], 32064,
        unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    if has_torchvision():
        from transformers import CLIPImageProcessor as ImageProcessor
    else:
        from transformers.models.clip import CLIPImageProcessorPil as ImageProcessor
    image_processor = ImageProcessor(
        size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}, image_mean=CLIP_MEAN, image_std=CLIP_STD
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
        vision_feature_select_strategy="default", num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE,
    )
    config = LlavaConfig(
        text_config=LlamaConfig(
            vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers or 32,
            num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=CLIPVisionConfig(
            hidden_size=1024, intermediate_size=4096, num_hidden_layers=layers or 24, num_attention_heads=16,
            image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    return config, processor, LlavaForConditionalGeneration


def _qwen2_vl_parts(layers: int | None) -> tuple[Any, Any, Any]:
    """Qwen2-VL-2B-Instruct: 28-layer Qwen2 text model (1536 wide, GQA 12/2 heads, M-RoPE),
    32-layer 1280-wide ViT with 2x2 patch merging, dynamic resolution, tied embeddings."""
    if not has_torchvision():
        raise SystemExit(
            "--model qwen2-vl-2b needs torchvision: transformers' Qwen2-VL processor imports it for its "
            "video processor. Install torchvision (matching torch), or use --model llava-1.5-7b."
        )
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl import (
        Qwen2VLImageProcessor,
        Qwen2VLTextConfig,
        Qwen2VLVideoProcessor,
        Qwen2VLVisionConfig,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = padded_tokenizer(specials, 151936, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    token = tokenizer.convert_tokens_to_ids
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 16384),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN2_VL_TEMPLATE,
    )
    text = Qwen2VLTextConfig(
        vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=layers or 28,
        num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    vision = Qwen2VLVisionConfig(
        depth=layers or 32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
    )
    config = Qwen2VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=True,
        image_token_id=token("<|image_pad|>"), video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"),
    )
    return config, processor, Qwen2VLForConditionalGeneration


ARCHITECTURES: dict[str, Callable[[int | None], tuple[Any, Any, Any]]] = {
    "llava-1.5-7b": _llava_parts,
    "qwen2-vl-2b": _qwen2_vl_parts,
}


def model_label(model: str, layers: int | None) -> str:
    return f"{model}-L{layers}" if layers else model


def build_benchmark_model(model: str, layers: int | None) -> Path:
    """The folder of the benchmark model, built once (bf16 random weights), like the tiny model."""
    from pytest_vlmsafety.backends.tiny import build_tiny_model, cache_home

    if model == "tiny":
        if layers:
            raise SystemExit("--layers applies to the real architectures, not to --model tiny")
        return build_tiny_model()
    target = cache_home() / "benchmark-models" / f"{model_label(model, layers)}-v{BENCHMARK_MODEL_VERSION}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _write_random_model(model, layers, scratch)
        os.rename(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _write_random_model(model: str, layers: int | None, folder: Path) -> None:
    import torch
    from transformers.utils import logging as hf_logging

    config, processor, model_class = ARCHITECTURES[model](layers)
    # Initialising 7B parameters is minutes on a CPU and seconds on a GPU.
    init_device = "cuda" if torch.cuda.is_available() else "cpu"
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        with torch.device(init_device):
            network = model_class._from_config(config, dtype=torch.bfloat16)
    finally:
        torch.random.set_rng_state(rng_state)
    network.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    network.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    hf_logging.disable_progress_bar()
    try:
        network.save_pretrained(folder)
        processor.save_pretrained(folder)
    finally:
        hf_logging.enable_progress_bar()
    del network
    if init_device == "cuda":
        torch.cuda.empty_cache()


# -- measuring ---------------------------------------------------------------------------------


def synchronizer(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


class ModelClock:
    """Adds up the seconds spent inside `model.generate`, by wrapping it on the instance (the
    plugin calls `self.model.generate`, which finds the instance attribute first)."""

    def __init__(self, model: Any, synchronize: Callable[[], None]) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._original = model.generate
        self._synchronize = synchronize
        model.generate = self._timed

    def _timed(self, *args: Any, **kwargs: Any) -> Any:
        self._synchronize()
        started = time.perf_counter()
        try:
            return self._original(*args, **kwargs)
        finally:
            self._synchronize()
            self.seconds += time.perf_counter() - started
            self.calls += 1

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def force_exact_length(model: Any, tokenizer: Any, new_tokens: int) -> None:
    """Every sequence produces exactly `new_tokens` tokens: EOS is masked until then
    (min_new_tokens), and the other special tokens always (a random model would otherwise emit
    pad or image tokens, which the backend's token count and some models' position logic
    treat specially). Set on the loaded model's generation config: both methods read it."""
    config = model.generation_config
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    special = set(tokenizer.all_special_ids)
    for name in ("image_token_index", "image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        value = getattr(model.config, name, None)
        if isinstance(value, int):
            special.add(value)
    config.min_new_tokens = new_tokens
    config.suppress_tokens = sorted(special - {e for e in eos if e is not None})


@dataclass
class Loaded:
    backend: Any
    clock: ModelClock
    synchronize: Callable[[], None]
    on_cuda: bool


def reset_peak(loaded: Loaded) -> None:
    if loaded.on_cuda:
        import torch

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(loaded: Loaded) -> float | None:
    if not loaded.on_cuda:
        return None
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def result_row(method: str, batch: int | str, items: int, tokens: int, wall: float, model_s: float | None,
               calls: int | None, peak: float | None, errors: list[str]) -> dict[str, Any]:
    return {
        "method": method,
        "batch_size": batch,
        "items": items,
        "generated_tokens": tokens,
        "wall_s": round(wall, 4),
        "items_per_s": items / wall,
        "tokens_per_s": tokens / wall,
        "model_s": None if model_s is None else round(model_s, 4),
        "model_fraction": None if model_s is None else min(1.0, model_s / wall),
        "generate_calls": calls,
        "gpu_peak_gib": peak,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def measure_batched(loaded: Loaded, requests: Sequence[GenerationRequest], batch_size: int) -> dict[str, Any]:
    reset_peak(loaded)
    loaded.clock.reset()
    loaded.synchronize()
    started = time.perf_counter()
    generations = loaded.backend.generate(requests, batch_size=batch_size)
    loaded.synchronize()
    wall = time.perf_counter() - started
    errors = [g.error for g in generations if g.text is None]
    tokens = sum(g.generated_tokens for g in generations)
    return result_row("hf batched", batch_size, len(requests), tokens, wall, loaded.clock.seconds,
                      loaded.clock.calls, peak_gib(loaded), [e or "?" for e in errors])


def per_item_loop(loaded: Loaded, requests: Sequence[GenerationRequest]) -> tuple[int, list[int]]:
    """The benchmarks' own scripts: one item at a time, preprocessing on the same thread.
    Returns the generated tokens and each item's prompt length in tokens."""
    import torch
    from PIL import Image

    backend = loaded.backend
    tokens, prompt_lengths = 0, []
    for request in requests:
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": request.prompt}]}]
        text = backend.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        with Image.open(request.images[0]) as opened:
            image = opened.convert("RGB")
        inputs = backend.processor(text=[text], images=[image], return_tensors="pt").to(backend.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(backend.torch_dtype)
        with torch.inference_mode():
            output = backend.model.generate(**inputs, max_new_tokens=request.max_new_tokens, do_sample=False)
        prompt_length = inputs["input_ids"].shape[1]
        backend.tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)
        tokens += output.shape[1] - prompt_length
        prompt_lengths.append(prompt_length)
    return tokens, prompt_lengths


def measure_loop(loaded: Loaded, requests: Sequence[GenerationRequest]) -> tuple[dict[str, Any], list[int]]:
    reset_peak(loaded)
    loaded.clock.reset()
    loaded.synchronize()
    started = time.perf_counter()
    tokens, prompt_lengths = per_item_loop(loaded, requests)
    loaded.synchronize()
    wall = time.perf_counter() - started
    row = result_row("per-item loop", 1, len(requests), tokens, wall, loaded.clock.seconds, loaded.clock.calls,
                     peak_gib(loaded), [])
    return row, prompt_lengths


def load(folder: Path, spec: str, device: str | None, dtype: str) -> Loaded:
    from pytest_vlmsafety.backends.hf import HuggingFaceBackend

    backend = HuggingFaceBackend(str(folder), spec=spec, device=device, dtype=dtype)
    synchronize = synchronizer(backend.device)
    return Loaded(backend, ModelClock(backend.model, synchronize), synchronize, backend.device.startswith("cuda"))


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_model_folder(folder: Path) -> Path:
    """LLaVA weights renamed to the layout vLLM loads (transformers 5 saves the CLIP tower under
    another prefix); other architectures load as saved."""
    from pytest_vlmsafety.backends.vllm_engine import vllm_compatible_copy

    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    return vllm_compatible_copy(folder) if model_type == "llava" else folder


def force_vllm_length(backend: Any, vllm: Any) -> None:
    """The vLLM counterpart of force_exact_length: exactly max_new_tokens tokens per item.
    VllmBackend has no public knob for it, so its sampling parameters are replaced on the
    instance (greedy, as the backend's own)."""

    def exact(max_new_tokens: int, schema: Any) -> Any:
        return vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens, min_tokens=max_new_tokens,
                                   ignore_eos=True, seed=0)

    backend._sampling_params = exact


def measure_vllm(folder: Path, label: str, requests: Sequence[GenerationRequest], inputs: "VllmInputs") -> dict[str, Any]:
    """The plugin's vLLM backend (`--vlm=vllm:...`) with every item in one `generate` call: vLLM
    schedules and batches continuously on its own. Image loading is inside the timed part, as
    the processor's work is for the other methods."""
    import vllm
    from pytest_vlmsafety.backends.vllm_engine import VllmBackend

    # On the CPU backend this fraction reserves host memory for the KV cache; keep it modest there.
    engine = {"max_model_len": inputs.max_model_len, "limit_mm_per_prompt": {"image": 1},
              "gpu_memory_utilization": 0.85 if inputs.on_cuda else 0.25}
    backend = VllmBackend(str(vllm_model_folder(folder)), spec=f"vllm:{label}", engine_kwargs=engine)
    force_vllm_length(backend, vllm)
    backend.generate(requests[:2], batch_size=2)  # warm-up
    started = time.perf_counter()
    generations = backend.generate(requests, batch_size=len(requests))
    wall = time.perf_counter() - started
    errors = [g.error or "?" for g in generations if g.text is None]
    tokens = sum(g.generated_tokens for g in generations)
    return result_row("vllm backend", "auto", len(requests), tokens, wall, None, None, None, errors)


# -- the run -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="tiny")
    parser.add_argument("--layers", type=int, default=None,
                        help="keep the real widths but only N text and N vision layers (a CPU check of the architecture)")
    parser.add_argument("--items", type=int, default=64, help="items (distinct images) in the prompt set (default: 64)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens every item generates (default: 64)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES))
    parser.add_argument("--image-size", type=int, default=448, help="side of the generated images in pixels")
    parser.add_argument("--no-loop", action="store_true", help="skip the per-item loop")
    parser.add_argument("--vllm", choices=("auto", "on", "off"), default="auto",
                        help="auto: measure vLLM when it is installed (default)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", help="auto = bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--build-only", action="store_true",
                        help="build (and cache) the model folder, and its vLLM copy when vLLM is installed, then stop: "
                             "on a machine with a per-command time limit, build in one command and measure in the next")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own); 1 runs steadier on a shared machine")
    common.add_output_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("items", "max_new_tokens", "image_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("layers", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if any(size < 1 for size in args.batch_sizes):
        parser.error("--batch-sizes must be positive")
    return args


def model_facts(loaded: Loaded, folder: Path, build_s: float) -> dict[str, Any]:
    import torch

    model = loaded.backend.model
    text_config = getattr(model.config, "text_config", model.config)
    return {
        "folder": str(folder),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "text_layers": getattr(text_config, "num_hidden_layers", None),
        "vocab_size": getattr(text_config, "vocab_size", None),
        "attention": getattr(model.config, "_attn_implementation", None),
        "dtype": str(loaded.backend.torch_dtype).removeprefix("torch."),
        "device": loaded.backend.device,
        "image_processor": type(getattr(loaded.backend.processor, "image_processor", None)).__name__,
        "torch_threads": torch.get_num_threads(),
        "build_s": round(build_s, 2),
        "load_s": round(loaded.backend.load_seconds, 2),
    }


def warm_up(loaded: Loaded, requests: Sequence[GenerationRequest], loop: bool) -> None:
    """First calls pay for kernel selection, allocator growth and lazy imports."""
    loaded.backend.generate(requests[:2], batch_size=2)
    if loop:
        per_item_loop(loaded, requests[:1])


def targets(rows: Sequence[dict[str, Any]], label: str, on_cuda: bool, vllm_state: str) -> list[dict[str, str]]:
    """The two throughput targets; the batched one only when batch 32 and the loop both ran."""
    loop = next((r for r in rows if r["method"] == "per-item loop"), None)
    at_target = next((r for r in rows if r["method"] == "hf batched" and r["batch_size"] == TARGET_BATCH), None)
    hf_best = max((r for r in rows if r["method"] == "hf batched"), key=lambda r: r["items_per_s"], default=None)
    vllm = next((r for r in rows if r["method"] == "vllm backend"), None)
    out = []
    speedup = common.ratio(at_target and at_target["items_per_s"], loop and loop["items_per_s"])
    if speedup is not None:
        out.append(judged("batched-vs-loop", speedup, BATCHED_TARGET, on_cuda, label))
    vllm_ratio = common.ratio(vllm and vllm["items_per_s"], hf_best and hf_best["items_per_s"])
    if vllm_ratio is None:
        out.append(common.target("vllm-vs-hf", "-", f"not measured here ({vllm_state})", label=label))
    else:
        out.append(judged("vllm-vs-hf", vllm_ratio, VLLM_TARGET, on_cuda, label))
    return out


def judged(target_id: str, factor: float, goal: float, on_cuda: bool, label: str) -> dict[str, str]:
    """Met or not on a GPU; on a CPU the factor is shown for information only (GPU targets)."""
    if not on_cuda:
        return common.target(target_id, f"{factor:.1f}x on CPU (for information)", common.NO_GPU, label=label)
    return common.target(target_id, f"{factor:.1f}x", common.MET if factor >= goal else common.NOT_MET, label=label)


def table(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    loop = next((r for r in rows if r["method"] == "per-item loop"), None)
    columns = ["method", "batch", "items", "tokens/item", "wall s", "items/s", "tokens/s", "in model", "GPU peak GiB", "vs loop"]
    body = []
    for row in rows:
        share = row["model_fraction"]
        body.append([
            row["method"], row["batch_size"], row["items"], row["generated_tokens"] / row["items"], row["wall_s"],
            row["items_per_s"], row["tokens_per_s"], None if share is None else f"{share:.0%}", row["gpu_peak_gib"],
            None if loop is None else f"{row['items_per_s'] / loop['items_per_s']:.1f}x",
        ])
    return {"columns": columns, "rows": body}


def notes(rows: Sequence[dict[str, Any]], args: argparse.Namespace, facts: dict[str, Any], prompt_tokens: list[int]) -> list[str]:
    out = [
        f"{facts['parameters_m']:,}M parameters ({facts['text_layers']} text layers, vocabulary "
        f"{facts['vocab_size']:,}), random weights, {facts['dtype']} on {facts['device']} "
        f"({facts['torch_threads']} torch threads), attention {facts['attention']}, image processor "
        f"{facts['image_processor']}.",
        f"{args.items} items, {args.image_size}x{args.image_size} images, every item forced to "
        f"{args.max_new_tokens} new tokens, greedy.",
        "'in model' is the share of the wall time inside model.generate; the rest is chat template, image "
        "decoding, the processor, copies and decoding (the plugin prepares the next batch on a helper thread "
        "while the current one generates).",
    ]
    if args.layers:
        out.append(f"reduced variant: the real widths, vocabulary and image size with {args.layers} text and vision "
                   "layer(s): it checks the architecture's path through the plugin; it is not the model a target names.")
    if prompt_tokens:
        out.append(f"prompt length with image tokens: {min(prompt_tokens)}-{max(prompt_tokens)} tokens "
                   f"(mean {statistics.mean(prompt_tokens):.0f}).")
    short = [r for r in rows if r["generated_tokens"] != r["items"] * args.max_new_tokens]
    if short:
        out.append("token counts differ from items x max-new-tokens in: " + ", ".join(
            f"{r['method']} batch {r['batch_size']} ({r['generated_tokens']})" for r in short))
    failed = [r for r in rows if r["errors"]]
    for row in failed:
        out.append(f"{row['method']} batch {row['batch_size']}: {row['errors']} items failed: {row['first_error']}")
    return out


@dataclass
class VllmInputs:
    max_model_len: int
    on_cuda: bool


def measure_hf(args: argparse.Namespace, folder: Path, label: str, build_s: float,
               requests: Sequence[GenerationRequest]) -> tuple[list[dict[str, Any]], list[int], dict[str, Any], VllmInputs]:
    """The Hugging Face rows; the model is freed when this returns, before vLLM loads its own."""
    loaded = load(folder, f"benchmark:{label}", args.device, args.dtype)
    facts = model_facts(loaded, folder, build_s)
    force_exact_length(loaded.backend.model, loaded.backend.tokenizer, args.max_new_tokens)
    rows: list[dict[str, Any]] = []
    prompt_tokens: list[int] = []
    warm_up(loaded, requests, not args.no_loop)
    if not args.no_loop:
        loop_row, prompt_tokens = measure_loop(loaded, requests)
        rows.append(loop_row)
        print(f"  per-item loop: {loop_row['items_per_s']:.2f} items/s", flush=True)
    for batch_size in args.batch_sizes:
        rows.append(measure_batched(loaded, requests, batch_size))
        print(f"  hf batched {batch_size}: {rows[-1]['items_per_s']:.2f} items/s", flush=True)
    return rows, prompt_tokens, facts, vllm_inputs(loaded)


def vllm_inputs(loaded: Loaded) -> VllmInputs:
    backend = loaded.backend
    text_config = getattr(backend.model.config, "text_config", backend.model.config)
    max_model_len = min(4096, int(getattr(text_config, "max_position_embeddings", 4096)))
    return VllmInputs(max_model_len, loaded.on_cuda)


def run_vllm(folder: Path, label: str, requests: Sequence[GenerationRequest], inputs: VllmInputs) -> tuple[str, dict[str, Any] | None]:
    gc.collect()  # the Hugging Face model holds a reference cycle through ModelClock
    if inputs.on_cuda:
        import torch

        torch.cuda.empty_cache()
    try:
        return "measured", measure_vllm(folder, label, requests, inputs)
    except Exception as exc:  # noqa: BLE001 - a vLLM failure is a result to report, not a crash
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        message = f"vLLM failed: {type(exc).__name__}: {first_line}"
        print(message, file=sys.stderr)
        return message, None


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    folder = build_benchmark_model(args.model, args.layers)
    build_s = time.perf_counter() - started
    label = model_label(args.model, args.layers)
    with tempfile.TemporaryDirectory(prefix="vlmsafety-throughput-") as scratch:
        requests = make_requests(make_images(Path(scratch), args.items, args.image_size), args.max_new_tokens)
        rows, prompt_tokens, facts, inputs = measure_hf(args, folder, label, build_s, requests)
        vllm_state = "vLLM not installed" if not vllm_installed() else "vLLM not requested"
        if args.vllm == "on" or (args.vllm == "auto" and vllm_installed()):
            vllm_state, vllm_row = run_vllm(folder, label, requests, inputs)
            if vllm_row:
                rows.append(vllm_row)
    return {
        "benchmark": "throughput",
        "title": f"Throughput: {label}",
        "parameters": {"model": args.model, "layers": args.layers, "items": args.items,
                       "max_new_tokens": args.max_new_tokens, "batch_sizes": args.batch_sizes,
                       "image_size": args.image_size, "model_facts": facts},
        "table": table(rows),
        # A reduced-layer model checks the architecture's code path; it is not the model a target names.
        "targets": [] if args.layers else targets(rows, label, inputs.on_cuda, vllm_state),
        "notes": notes(rows, args, facts, prompt_tokens),
        "rows": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_only:
        folder = build_benchmark_model(args.model, args.layers)
        print(f"built {folder}")
        if vllm_installed() and args.vllm != "off":
            print(f"built {vllm_model_folder(folder)} (vLLM layout)")
        return 0
    payload = run(args)
    name = f"throughput-{model_label(args.model, args.layers)}"
    common.print_report(payload["title"], payload)
    path = common.write_result(name, payload, args.results_dir, args.results_md)
    print(f"wrote {path} and {args.results_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
