"""`--vlm=tiny-random`: a tiny randomly initialised LLaVA built locally in about a second.

It goes through the same path as a real model (saved to a folder, then loaded with
`AutoProcessor` and `AutoModelForImageTextToText`), so a CI pipeline can check its wiring with no
download and no GPU. Its output is noise. The tokenizer is trained on the spot from a small
built-in corpus. Sizes are chosen so vLLM's CPU attention accepts it too (head dim 32).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the architecture or corpus changes: it names the cache folder.
TINY_MODEL_VERSION = 2
LOGIT_SHARPNESS = 50.0
IMAGE_SIZE = 32
PATCH_SIZE = 8

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '</s>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

_CORPUS = """
I'm sorry, but I can't help with that request. I cannot assist with this.
Sure! Here is a step-by-step explanation of how you can do it safely.
The image shows a kitchen knife on a wooden table next to some vegetables.
As an AI language model, I must decline. It is not appropriate to provide this.
Of course. First, open the settings. Second, choose the option. Finally, save your changes.
What is shown in this image? Answer the question in the image. Describe the picture in detail.
This is illegal and dangerous. Please contact a professional or local authorities.
The answer is B. Yes, it is safe. No, it is not safe for viewing on social media.
"""


def cache_home() -> Path:
    base = os.environ.get("VLMSAFETY_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "pytest-vlmsafety"
    )
    return Path(base)


def build_tiny_model(target: Path | None = None) -> Path:
    """Build (once) and return the folder of the tiny model."""
    return build_model_folder_once(target or cache_home() / f"tiny-random-v{TINY_MODEL_VERSION}", _write_tiny_model)


def build_model_folder_once(target: Path, write: Callable[[Path], None]) -> Path:
    """`target`, written by `write` unless it already holds a model. Safe when several processes
    race: each writes a scratch folder beside it and the first rename wins."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-build-", dir=target.parent))
    try:
        write(scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _write_tiny_model(folder: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.clip import CLIPImageProcessorPil

    specials = ["<unk>", "<pad>", "<s>", "</s>", "<image>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_CORPUS.strip().splitlines() * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=CLIPVisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
            projection_dim=64,
        ),
        image_token_index=_token_id(tokenizer, "<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        model = LlavaForConditionalGeneration(config)
        # Random weights give nearly flat logits, so greedy decoding meets near-ties that float
        # noise can flip between backends (transformers vs vLLM) or batch shapes. A sharper
        # output layer keeps the argmax clear of ties; the output is still noise.
        with torch.no_grad():
            model.lm_head.weight.mul_(LOGIT_SHARPNESS)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    save_model_folder(model, processor, folder)
    _pin_pil_image_processor(folder / "processor_config.json")


def save_model_folder(model: Any, processor: Any, folder: Path) -> None:
    """Save a built model and its processor as a hub folder would hold them, without progress bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    finally:
        hf_logging.enable_progress_bar()


def _token_id(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(token_id, int):
        raise TypeError(f"the tiny tokenizer has no single id for {token!r}: {token_id!r}")
    return token_id


def _pin_pil_image_processor(config_path: Path) -> None:
    """Record the PIL image processor by name: the default one needs torchvision, which a CPU
    machine may lack, and transformers would warn on every load."""
    config = json.loads(config_path.read_text())
    config["image_processor"]["image_processor_type"] = "CLIPImageProcessorPil"
    config_path.write_text(json.dumps(config, indent=2))
