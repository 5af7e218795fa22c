"""The prompt formats a benchmark's official code writes itself for particular model families.

Most official code renders a model's own chat template (as this plugin does). Some writes the
prompt string by hand for the models it ran, and those models' published rows come from that
string, not from the chat template:

- MIS (`evaluation/inference_vllm.py`, `prepare_inputs`, github.com/DripNowhy/MIS): Idefics3,
  Phi-3.5-Vision and LLaVA-OneVision get hand-written strings with "Image-1: <image>" labels;
  InternVL2.5 gets the labels inside its chat template's user turn;
- UnsafeConcepts (`vlms.py`, github.com/TrustAIRLab/SaferVLM): LLaVA-v1.5 gets the `llava_v1`
  conversation of the LLaVA repository, system sentence included.

One table per benchmark (`FORMAT_TABLES`: suite -> model family -> format), the family being the
model's `config.model_type`. A local backend (hf.py, vllm_engine.py) uses the table's format for an item of that suite
when the model's family is in it (`--prompt-format=official`, the default), and the chat template
otherwise or with `--prompt-format=chat-template`. The official strings name the image with the
official code's placeholder; each format writes the processor's own image token instead, the
token the official placeholder becomes.

Quirks kept: MIS writes the LLaVA-OneVision prompt with Phi-3's turn markers (`<|user|>` ...
`<|end|>`), not Qwen2's, and only for its 72B model; here every LLaVA-OneVision model gets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import CHAT_TEMPLATE, OFFICIAL, GenerationRequest
from .prompts import chat_text

# `--prompt-format` values.
PROMPT_FORMAT_CHOICES: tuple[str, ...] = (OFFICIAL, CHAT_TEMPLATE)


@dataclass(frozen=True)
class PromptFormat:
    """One official prompt format: `render(query, image count, processor)` gives the prompt text
    the processor tokenizes, as the official code writes it."""

    name: str
    source: str
    render: Callable[[str, int, Any], str]


def image_token(processor: Any, default: str = "<image>") -> str:
    """The text that stands for one image in the processor's prompts."""
    token = getattr(processor, "image_token", None)
    return token if isinstance(token, str) and token else default


def _labelled_images(count: int, token: str) -> str:
    # MIS: "\n".join(f"Image-{i}: <image>\n" for i, _ in enumerate(images, start=1))
    return "\n".join(f"Image-{i}: {token}\n" for i in range(1, count + 1))


def _mis_idefics3(query: str, count: int, processor: Any) -> str:
    placeholders = _labelled_images(count, image_token(processor))
    return f"<|begin_of_text|>User:{placeholders}\n{query}<end_of_utterance>\nAssistant:"


def _mis_phi3_v(query: str, count: int, processor: Any) -> str:
    placeholders = "\n".join(f"<|image_{i}|>" for i in range(1, count + 1))
    return f"<|user|>\n{placeholders}\n{query}<|end|>\n<|assistant|>\n"


def _mis_llava_onevision(query: str, count: int, processor: Any) -> str:
    placeholders = _labelled_images(count, image_token(processor))
    return f"<|user|>\n{placeholders}\n{query}<|end|>\n<|assistant|>\n"


def _mis_internvl(query: str, count: int, processor: Any) -> str:
    # The labels go into the user turn as plain text; the chat template writes the rest.
    placeholders = _labelled_images(count, image_token(processor, "<IMG_CONTEXT>"))
    messages = [{"role": "user", "content": f"{placeholders}\n{query}"}]
    return str(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


# The llava_v1 conversation (llava/conversation.py, `conv_llava_v1`), as `get_prompt` writes one
# user turn "<image>\n{prompt}" and an empty assistant turn.
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


def _unsafeconcepts_llava_v1(query: str, count: int, processor: Any) -> str:
    images = "".join(f"{image_token(processor)}\n" for _ in range(count))
    return f"{LLAVA_V1_SYSTEM} USER: {images}{query} ASSISTANT:"


MIS_SOURCE = "github.com/DripNowhy/MIS evaluation/inference_vllm.py prepare_inputs"
MIS_FORMATS: Mapping[str, PromptFormat] = {
    "idefics3": PromptFormat("mis/idefics3", MIS_SOURCE, _mis_idefics3),
    "phi3_v": PromptFormat("mis/phi3_v", MIS_SOURCE, _mis_phi3_v),
    "llava_onevision": PromptFormat("mis/llava_onevision", MIS_SOURCE, _mis_llava_onevision),
    # InternVL2.5 (remote code) and the transformers port of the InternVL family.
    "internvl_chat": PromptFormat("mis/internvl", MIS_SOURCE, _mis_internvl),
    "internvl": PromptFormat("mis/internvl", MIS_SOURCE, _mis_internvl),
}
UNSAFECONCEPTS_FORMATS: Mapping[str, PromptFormat] = {
    "llava": PromptFormat(
        "unsafeconcepts/llava_v1", "github.com/TrustAIRLab/SaferVLM vlms.py (conv_templates['llava_v1'])",
        _unsafeconcepts_llava_v1,
    ),
}
FORMAT_TABLES: Mapping[str, Mapping[str, PromptFormat]] = {
    "mis": MIS_FORMATS,
    "unsafeconcepts": UNSAFECONCEPTS_FORMATS,
}


def official_format(suite: str, model_type: str | None) -> PromptFormat | None:
    """The format the official code of `suite` writes for a model of family `model_type`."""
    if model_type is None:
        return None
    return FORMAT_TABLES.get(suite, {}).get(model_type)


def prompt_text(processor: Any, request: GenerationRequest, model_type: str | None) -> str:
    """The prompt text of one request: the official format of its suite for this model family
    (the request's `prompt_format` is `official`), else the chat template (`prompts.chat_text`). Only a request
    with images and without a system turn can take an official format (each is a prompt with
    images and none writes a system turn): so an LLM judge's call about a suite's item (a
    text-only scheme, or MIS's with its system turn) keeps the judge model's chat template."""
    applies = request.prompt_format == OFFICIAL and request.system is None and bool(request.images)
    found = official_format(request.suite, model_type) if applies else None
    if found is None:
        return chat_text(processor, request)
    return found.render(request.prompt, len(request.images), processor)


def format_name(suite: str, model_type: str | None, setting: str) -> str:
    """Which format an item of `suite` gets under `--prompt-format=setting`: the official
    format's name, or `chat-template`."""
    found = official_format(suite, model_type) if setting == OFFICIAL else None
    return found.name if found is not None else CHAT_TEMPLATE


def config_model_type(model: str, revision: str | None, trust_remote_code: bool) -> str | None:
    """The `model_type` of a model's config (its family), None when the config cannot be read."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
        model_type = config.model_type
    except Exception:  # noqa: BLE001 - the model's own loading reports the real problem
        return None
    return model_type if isinstance(model_type, str) else None


def prompt_formats(model_type: str | None, setting: str) -> dict[str, str]:
    """Per suite with official formats, the format its items get (`format_name`)."""
    return {suite: format_name(suite, model_type, setting) for suite in FORMAT_TABLES}


__all__ = [
    "CHAT_TEMPLATE",
    "FORMAT_TABLES",
    "LLAVA_V1_SYSTEM",
    "MIS_FORMATS",
    "OFFICIAL",
    "PROMPT_FORMAT_CHOICES",
    "UNSAFECONCEPTS_FORMATS",
    "PromptFormat",
    "config_model_type",
    "format_name",
    "image_token",
    "official_format",
    "prompt_formats",
    "prompt_text",
]
