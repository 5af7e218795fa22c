"""Tiny random models of every VLM architecture the plugin supports, built locally.

Each is saved to a folder and loads through `AutoProcessor` + `AutoModelForImageTextToText`
exactly like the real checkpoint: the architecture's real processor, image processor (and video
processor, where the real processor always builds one) classes, its real image geometry (patch,
merge and tile sizes), and a chat template in the real model's format (BOS written by the template
where the real one writes it, the same image placeholders and turn markers). Widths are tiny,
the tokenizer is trained on the spot, and the output layer is sharpened (as in `tiny.py`) so
greedy decoding does not meet float ties between batch shapes; random vision weights make the
output depend on the image. Only resize limits that decide how many tiles or patches an image
becomes are lowered (listed in `TinyArchitecture.caps`) so a CPU runs the matrix in minutes.

Used by the test suite (one build per architecture per test session) and by `benchmarks/`:

    python -m pytest_vlmsafety.backends.tiny_archs qwen2-vl  # prints the folder; then --vlm=FOLDER

To add an architecture: write a `_write_<name>(folder)` that builds its tokenizer (`_tokenizer`),
processor, config and model with `_save`, add a `TinyArchitecture` to `TINY_ARCHITECTURES`, and
the test matrix (`tests/test_architectures.py`) runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tiny import _CORPUS, LOGIT_SHARPNESS, build_model_folder_once, cache_home, save_model_folder

# Bump when any builder changes: it names the cache folders.
TINY_ARCHS_VERSION = 1

HIDDEN = 64
LAYERS = 2
HEADS = 2
VISION_HIDDEN = 32


@dataclass(frozen=True)
class TinyArchitecture:
    name: str
    mimics: str  # the hub id whose formats it copies
    write: Callable[[Path], None]
    # Resize limits lowered from the real processor's (name -> value), for CPU speed.
    caps: Mapping[str, Any] = field(default_factory=dict)


def build_tiny_architecture(name: str, root: Path | None = None) -> Path:
    """Build (once, race-safe across processes) and return the folder of tiny model `name`."""
    architecture = TINY_ARCHITECTURES[name]
    folder = (root or cache_home()) / f"tiny-{name}-v{TINY_ARCHS_VERSION}"
    return build_model_folder_once(folder, architecture.write)


# --- shared parts ---------------------------------------------------------------------------------


def _tokenizer(
    specials: Sequence[str],
    *,
    bos: str | None,
    eos: str,
    pad: str,
    unk: str | None = None,
    add_bos: bool = False,
    extra: Mapping[str, str] | None = None,
) -> Any:
    """A byte-level BPE tokenizer trained on the built-in corpus. `specials` become special
    tokens (the first ones get the lowest ids); `add_bos` makes it add BOS to every encoding
    with special tokens, as Llama-3 and Gemma tokenizers do; `extra` names special tokens as
    attributes (`image_token`, ...), as the real tokenizers' configs do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    ordered = list(dict.fromkeys([t for t in (unk, pad, bos, eos) if t] + list(specials)))
    bpe = Tokenizer(models.BPE(unk_token=unk))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400 + len(ordered), special_tokens=ordered, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_CORPUS.strip().splitlines() * 4, trainer)
    if add_bos and bos:
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bpe.token_to_id(bos))]
        )
    kwargs: dict[str, Any] = {"eos_token": eos, "pad_token": pad, "padding_side": "left"}
    if bos:
        kwargs["bos_token"] = bos
    if unk:
        kwargs["unk_token"] = unk
    if extra:
        kwargs["extra_special_tokens"] = dict(extra)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **kwargs)


def _token_id(tokenizer: Any, token: str) -> int:
    value = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(value, int) or value == tokenizer.unk_token_id:
        raise RuntimeError(f"tiny tokenizer lacks {token!r}")
    return value


def _text_sizes(tokenizer: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "max_position_embeddings": 8192,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        # Untied: the sharpened output layer must not scale the input embeddings too.
        "tie_word_embeddings": False,
    }


def _save(
    folder: Path, model_class: Any, config: Any, processor: Any, adjust: Callable[[Any], None] | None = None
) -> None:
    """Seeded random weights (the global generator left as it was), a sharpened output layer and
    `adjust` (weights that keep the image from being drowned out), then model and processor saved
    to `folder`."""
    import torch

    config.tie_word_embeddings = False
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        model = model_class(config)
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(LOGIT_SHARPNESS)
            if adjust is not None:
                adjust(model)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    save_model_folder(model, processor, folder)


def _parts(kind: str, prefix: str = "", suffix: str = "") -> str:
    """Jinja for a message's content parts: images as `kind`, text as is."""
    return (
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for part in message['content'] %}"
        f"{{% if part['type'] == 'image' %}}{{{{ {prefix!r} + {kind!r} + {suffix!r} }}}}"
        "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endif %}"
    )


# --- chat templates, in each real model's format --------------------------------------------------

# Qwen2-VL / Qwen2.5-VL: ChatML with a default system turn; each image as
# <|vision_start|><|image_pad|><|vision_end|>.
QWEN_VL_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    + _parts("<|image_pad|>", "<|vision_start|>", "<|vision_end|>")
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# InternVL3 (-hf): ChatML with a system turn; each image as <IMG_CONTEXT> and a newline.
INTERNVL_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are InternVL, a multimodal assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    + _parts("<IMG_CONTEXT>", "", "\n")
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# LLaVA-OneVision (Qwen2 based): '<|im_start|>user ' + every image + '\n' + text.
ONEVISION_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + part['text'] }}{% endfor %}"
    "{% endif %}{{ '<|im_end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# LLaVA-NeXT (Mistral 7B): [INST] <image>\ntext [/INST]; no BOS in the template, the tokenizer adds it.
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'text') %}{{ part['text'] }}{% endfor %}"
    "{% endif %}{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'text') %}{{ ' ' + part['text'] }}{% endfor %}"
    "{{ '</s>' }}{% endif %}{% endfor %}"
)

# Idefics3 (Llama 3 based) and SmolVLM: BOS written by the template, "User:<image>text<end_of_utterance>\n".
_IDEFICS_BODY = (
    "{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is not string and message['content'][0]['type'] == 'image' %}{{ ':' }}"
    "{% else %}{{ ': ' }}{% endif %}"
    + _parts("<image>")
    + "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IDEFICS3_TEMPLATE = "<|begin_of_text|>" + _IDEFICS_BODY
SMOLVLM_TEMPLATE = "<|im_start|>" + _IDEFICS_BODY

# Gemma 3: {{ bos_token }}<start_of_turn>user\n<start_of_image>text<end_of_turn>\n<start_of_turn>model\n
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] | trim }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Llama 3.2 Vision: {{ bos_token }} and header blocks; <|image|> before the text.
MLLAMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    + _parts("<|image|>")
    + "{{ '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


# --- the builders ---------------------------------------------------------------------------------

_QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# Qwen2-VL's processor: 14-pixel patches, 2x2 merge, 2-frame temporal patches; the tiny cap keeps an
# image at most 64 merged tokens (the real max_pixels is 12,845,056).
_QWEN_MAX_PIXELS = 28 * 28 * 64


def _qwen_vl(folder: Path, *, v2_5: bool) -> None:
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tokenizer = _tokenizer(
        _QWEN_SPECIALS, bos=None, eos="<|im_end|>", pad="<|endoftext|>",
        extra={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    image_processor = Qwen2VLImageProcessor(
        patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=28 * 28 * 4, max_pixels=_QWEN_MAX_PIXELS
    )
    video_processor = Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2)
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]}
    text = {**_text_sizes(tokenizer), "rope_parameters": rope}
    processor: Any
    config: Any
    ids: dict[str, Any] = {
        "image_token_id": _token_id(tokenizer, "<|image_pad|>"),
        "video_token_id": _token_id(tokenizer, "<|video_pad|>"),
        "vision_start_token_id": _token_id(tokenizer, "<|vision_start|>"),
        "vision_end_token_id": _token_id(tokenizer, "<|vision_end|>"),
    }
    if v2_5:
        from transformers import (
            Qwen2_5_VLConfig,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2_5_VLProcessor,
        )

        processor = Qwen2_5_VLProcessor(image_processor, tokenizer, video_processor, chat_template=QWEN_VL_TEMPLATE)
        vision = {
            "depth": 2, "hidden_size": VISION_HIDDEN, "intermediate_size": 2 * VISION_HIDDEN, "num_heads": 2,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
            "out_hidden_size": HIDDEN, "fullatt_block_indexes": [1],
        }
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
        _save(folder, Qwen2_5_VLForConditionalGeneration, config, processor)
    else:
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

        processor = Qwen2VLProcessor(image_processor, tokenizer, video_processor, chat_template=QWEN_VL_TEMPLATE)
        vision = {
            "depth": 2, "embed_dim": VISION_HIDDEN, "hidden_size": HIDDEN, "mlp_ratio": 2, "num_heads": 2,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        }
        config = Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
        _save(folder, Qwen2VLForConditionalGeneration, config, processor)


def _write_qwen2_vl(folder: Path) -> None:
    _qwen_vl(folder, v2_5=False)


def _write_qwen2_5_vl(folder: Path) -> None:
    _qwen_vl(folder, v2_5=True)


# LLaVA-NeXT's CLIP-L/336 geometry: 336-pixel tiles of 14-pixel patches; the real grid goes to
# 672x672 and 1008x336 (up to 4 tiles + the overview); the tiny one to 2 tiles.
_LLAVA_NEXT_PINPOINTS = [[336, 672], [672, 336]]


def _write_llava_next(folder: Path) -> None:
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor
    from transformers.models.llava_next import LlavaNextImageProcessor

    tokenizer = _tokenizer(["<image>"], bos="<s>", eos="</s>", pad="<pad>", unk="<unk>", add_bos=True,
                           extra={"image_token": "<image>"})
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}, image_grid_pinpoints=_LLAVA_NEXT_PINPOINTS
    )
    processor = LlavaNextProcessor(
        image_processor, tokenizer, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=LLAVA_NEXT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN, intermediate_size=2 * VISION_HIDDEN, num_hidden_layers=2, num_attention_heads=2,
        image_size=336, patch_size=14, projection_dim=VISION_HIDDEN,
    )
    config = LlavaNextConfig(
        text_config={"model_type": "mistral", **_text_sizes(tokenizer)}, vision_config=vision,
        image_token_index=_token_id(tokenizer, "<image>"), image_grid_pinpoints=_LLAVA_NEXT_PINPOINTS,
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    _save(folder, LlavaNextForConditionalGeneration, config, processor)


# LLaVA-OneVision's SigLIP-so400m/384 geometry: 384-pixel tiles of 14-pixel patches (729 tokens a
# tile); the real anyres grid goes to 6x6 tiles, the tiny one to 2x1.
_ONEVISION_PINPOINTS = [[384, 384], [384, 768], [768, 384]]


def _write_llava_onevision(folder: Path) -> None:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionProcessor,
        SiglipVisionConfig,
    )
    from transformers.models.llava_onevision import LlavaOnevisionImageProcessor, LlavaOnevisionVideoProcessor

    tokenizer = _tokenizer(
        ["<|im_start|>", "<|im_end|>", "<image>", "<video>"], bos=None, eos="<|im_end|>", pad="<|endoftext|>",
        extra={"image_token": "<image>", "video_token": "<video>"},
    )
    image_processor = LlavaOnevisionImageProcessor(
        size={"height": 384, "width": 384}, image_grid_pinpoints=_ONEVISION_PINPOINTS
    )
    video_processor = LlavaOnevisionVideoProcessor(size={"height": 384, "width": 384})
    processor = LlavaOnevisionProcessor(
        image_processor, tokenizer, video_processor, num_image_tokens=729, vision_feature_select_strategy="full",
        chat_template=ONEVISION_TEMPLATE, vision_aspect_ratio="anyres_max_9",
    )
    vision = SiglipVisionConfig(
        hidden_size=VISION_HIDDEN, intermediate_size=2 * VISION_HIDDEN, num_hidden_layers=2, num_attention_heads=2,
        image_size=384, patch_size=14, vision_use_head=False,
    )
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", **_text_sizes(tokenizer)}, vision_config=vision,
        image_token_index=_token_id(tokenizer, "<image>"), video_token_index=_token_id(tokenizer, "<video>"),
        image_grid_pinpoints=_ONEVISION_PINPOINTS, vision_feature_select_strategy="full",
        vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9",
    )
    _save(folder, LlavaOnevisionForConditionalGeneration, config, processor)


_IDEFICS_SPECIALS = [
    "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
    *[f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)],
]


def _idefics(folder: Path, *, smolvlm: bool) -> None:
    """Idefics3 (364-pixel tiles of 14-pixel patches, pixel shuffle 2: 169 tokens a tile) or
    SmolVLM2 (384-pixel tiles, pixel shuffle 3: 81 tokens a tile). The real processors split an
    image into tiles up to several tiles on its longest edge (1,456 pixels for Idefics3-8B); the
    tiny ones up to 2 tiles."""
    tile, shuffle = (384, 3) if smolvlm else (364, 2)
    seq_len = (tile // 14) ** 2 // shuffle**2
    bos = "<|im_start|>" if smolvlm else "<|begin_of_text|>"
    tokenizer = _tokenizer(
        _IDEFICS_SPECIALS, bos=bos, eos="<end_of_utterance>", pad="<|finetune_right_pad_id|>",
        add_bos=not smolvlm, extra={"image_token": "<image>"},
    )
    processor: Any
    config: Any
    sizes: dict[str, Any] = {
        "size": {"longest_edge": 2 * tile}, "max_image_size": {"longest_edge": tile},
        "do_image_splitting": True,
    }
    vision = {
        "hidden_size": VISION_HIDDEN, "intermediate_size": 2 * VISION_HIDDEN, "num_hidden_layers": 2,
        "num_attention_heads": 2, "image_size": tile, "patch_size": 14,
    }
    text = {"model_type": "llama", **_text_sizes(tokenizer)}
    if smolvlm:
        from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMProcessor
        from transformers.models.smolvlm import SmolVLMImageProcessor, SmolVLMVideoProcessor

        processor = SmolVLMProcessor(
            SmolVLMImageProcessor(**sizes), tokenizer, SmolVLMVideoProcessor(), image_seq_len=seq_len,
            chat_template=SMOLVLM_TEMPLATE,
        )
        config = SmolVLMConfig(
            text_config=text, vision_config=vision, scale_factor=shuffle, image_token_id=_token_id(tokenizer, "<image>")
        )
        _save(folder, SmolVLMForConditionalGeneration, config, processor)
    else:
        from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
        from transformers.models.idefics3 import Idefics3ImageProcessor

        processor = Idefics3Processor(
            Idefics3ImageProcessor(**sizes), tokenizer, image_seq_len=seq_len, chat_template=IDEFICS3_TEMPLATE
        )
        config = Idefics3Config(
            text_config=text, vision_config=vision, scale_factor=shuffle, image_token_id=_token_id(tokenizer, "<image>")
        )
        _save(folder, Idefics3ForConditionalGeneration, config, processor)


def _write_idefics3(folder: Path) -> None:
    _idefics(folder, smolvlm=False)


def _write_smolvlm(folder: Path) -> None:
    _idefics(folder, smolvlm=True)


def _write_gemma3(folder: Path) -> None:
    """Gemma 3: SigLIP at 896 pixels with 14-pixel patches, pooled to 256 tokens an image."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3 import Gemma3ImageProcessor

    tokenizer = _tokenizer(
        ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"],
        bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>", add_bos=True,
        extra={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    )
    image_processor = Gemma3ImageProcessor(size={"height": 896, "width": 896})
    processor = Gemma3Processor(image_processor, tokenizer, chat_template=GEMMA3_TEMPLATE, image_seq_length=256)
    text = {**_text_sizes(tokenizer), "head_dim": HIDDEN // HEADS, "sliding_window": 512}
    vision = {
        "model_type": "siglip_vision_model", "hidden_size": VISION_HIDDEN, "intermediate_size": 2 * VISION_HIDDEN,
        "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 896, "patch_size": 14, "vision_use_head": False,
    }
    config = Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=256,
        boi_token_index=_token_id(tokenizer, "<start_of_image>"),
        eoi_token_index=_token_id(tokenizer, "<end_of_image>"),
        image_token_index=_token_id(tokenizer, "<image_soft_token>"),
    )
    _save(folder, Gemma3ForConditionalGeneration, config, processor, _louder_gemma3_images)


def _louder_gemma3_images(model: Any) -> None:
    """Gemma 3's image projection starts at zero (every image embeds alike); random weights of
    the scale of its text embeddings (which Gemma multiplies by sqrt(hidden size)) instead."""
    import torch

    weight = model.model.multi_modal_projector.mm_input_projection_weight
    generator = torch.Generator().manual_seed(0)
    weight.copy_(torch.randn(weight.shape, generator=generator) * HIDDEN**0.5 / weight.shape[0] ** 0.5)


def _write_internvl(folder: Path) -> None:
    """InternVL3: 448-pixel tiles of 14-pixel patches, pixel shuffle 0.5: 256 tokens a tile. The
    real processor crops an image into up to 12 tiles plus a thumbnail; the tiny one up to 2."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor
    from transformers.models.got_ocr2 import GotOcr2ImageProcessor
    from transformers.models.internvl import InternVLVideoProcessor

    tokenizer = _tokenizer(
        ["<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
        bos=None, eos="<|im_end|>", pad="<|endoftext|>",
        extra={"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
               "video_token": "<video>"},
    )
    image_processor = GotOcr2ImageProcessor(
        size={"height": 448, "width": 448}, crop_to_patches=True, min_patches=1, max_patches=2,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    processor = InternVLProcessor(
        image_processor, tokenizer, InternVLVideoProcessor(), image_seq_length=256, chat_template=INTERNVL_TEMPLATE
    )
    vision = {
        "hidden_size": VISION_HIDDEN, "intermediate_size": 2 * VISION_HIDDEN, "num_hidden_layers": 2,
        "num_attention_heads": 2, "image_size": [448, 448], "patch_size": [14, 14],
    }
    config = InternVLConfig(
        text_config={"model_type": "qwen2", **_text_sizes(tokenizer)}, vision_config=vision,
        image_token_id=_token_id(tokenizer, "<IMG_CONTEXT>"), image_seq_length=256, downsample_ratio=0.5,
    )
    _save(folder, InternVLForConditionalGeneration, config, processor)


def _write_mllama(folder: Path) -> None:
    """Llama 3.2 Vision: 560-pixel tiles of 14-pixel patches, up to 4 tiles an image, images
    attended to through cross-attention layers."""
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaProcessor
    from transformers.models.mllama import MllamaImageProcessor

    tokenizer = _tokenizer(
        ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|image|>", "<|python_tag|>"],
        bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|finetune_right_pad_id|>", add_bos=True,
        extra={"image_token": "<|image|>"},
    )
    image_processor = MllamaImageProcessor(size={"height": 560, "width": 560}, max_image_tiles=4)
    processor = MllamaProcessor(image_processor, tokenizer, chat_template=MLLAMA_TEMPLATE)
    text = {
        **_text_sizes(tokenizer), "num_hidden_layers": 3, "cross_attention_layers": [1],
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
    }
    vision = {
        "hidden_size": VISION_HIDDEN, "intermediate_size": 2 * VISION_HIDDEN, "num_hidden_layers": 2,
        "num_global_layers": 1, "attention_heads": 2, "vision_output_dim": 2 * VISION_HIDDEN,
        "intermediate_layers_indices": [0], "image_size": 560, "patch_size": 14, "max_num_tiles": 4,
    }
    config = MllamaConfig(text_config=text, vision_config=vision, image_token_index=_token_id(tokenizer, "<|image|>"))
    _save(folder, MllamaForConditionalGeneration, config, processor, _open_cross_attention_gates)


def _open_cross_attention_gates(model: Any) -> None:
    """Mllama's cross-attention gates start at 0 (tanh(0) = 0: the image is ignored); open them."""
    for name, parameter in model.named_parameters():
        if name.endswith(("cross_attn_attn_gate", "cross_attn_mlp_gate")):
            parameter.fill_(1.0)


TINY_ARCHITECTURES: dict[str, TinyArchitecture] = {
    arch.name: arch
    for arch in (
        TinyArchitecture("qwen2-vl", "Qwen/Qwen2-VL-7B-Instruct", _write_qwen2_vl, {"max_pixels": _QWEN_MAX_PIXELS}),
        TinyArchitecture("qwen2.5-vl", "Qwen/Qwen2.5-VL-7B-Instruct", _write_qwen2_5_vl,
                         {"max_pixels": _QWEN_MAX_PIXELS}),
        TinyArchitecture("llava-next", "llava-hf/llava-v1.6-mistral-7b-hf", _write_llava_next,
                         {"image_grid_pinpoints": _LLAVA_NEXT_PINPOINTS}),
        TinyArchitecture("llava-onevision", "llava-hf/llava-onevision-qwen2-7b-ov-hf", _write_llava_onevision,
                         {"image_grid_pinpoints": _ONEVISION_PINPOINTS}),
        TinyArchitecture("idefics3", "HuggingFaceM4/Idefics3-8B-Llama3", _write_idefics3,
                         {"size": {"longest_edge": 728}}),
        TinyArchitecture("smolvlm", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", _write_smolvlm,
                         {"size": {"longest_edge": 768}}),
        TinyArchitecture("gemma-3", "google/gemma-3-4b-it", _write_gemma3),
        TinyArchitecture("internvl", "OpenGVLab/InternVL3-1B-hf", _write_internvl, {"max_patches": 2}),
        TinyArchitecture("llama-3.2-vision", "meta-llama/Llama-3.2-11B-Vision-Instruct", _write_mllama),
    )
}


def main(argv: Sequence[str]) -> int:
    names = list(argv) or list(TINY_ARCHITECTURES)
    unknown = [n for n in names if n not in TINY_ARCHITECTURES]
    if unknown:
        print(f"unknown architecture(s) {unknown}; known: {', '.join(TINY_ARCHITECTURES)}", file=sys.stderr)
        return 2
    for name in names:
        print(build_tiny_architecture(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
