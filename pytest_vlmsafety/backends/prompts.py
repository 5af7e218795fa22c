"""The prompt a local model receives, built exactly as the model's own processor builds it.

A system turn when the request has one (`--vlm-system-prompt`, `vlm.ask(system=...)`), then one
user turn: every image first, then the prompt text (the text first when the request says
`text_first`; the order the server backends use too, `messages.py`). The text comes from the
processor's chat template; it is then tokenized the way
`processor.apply_chat_template(..., tokenize=True)` tokenizes it: a rendered prompt that already
starts with the tokenizer's BOS token (Llama-3, Gemma-3, Idefics3, Mllama templates) is tokenized
without special tokens, so the model never sees two BOS tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import GenerationRequest


def conversation(request: GenerationRequest, images: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """The chat for one request. With `images` (decoded PIL images, one per path) each image part
    carries its image: the form `apply_chat_template(..., tokenize=True)` takes."""
    content: list[dict[str, Any]] = [
        {"type": "image", "image": images[index]} if images is not None else {"type": "image"}
        for index in range(len(request.images))
    ]
    text = {"type": "text", "text": request.prompt}
    content = [text, *content] if request.text_first else [*content, text]
    user = {"role": "user", "content": content}
    if request.system is None:
        return [user]
    # Content parts, the form every transformers chat template reads (Gemma-3's folds the system
    # turn into the first user turn; that renders too).
    return [{"role": "system", "content": [{"type": "text", "text": request.system}]}, user]


def chat_text(processor: Any, request: GenerationRequest) -> str:
    """The prompt text of one request: the processor's chat template with the generation prompt."""
    text = processor.apply_chat_template(conversation(request), add_generation_prompt=True, tokenize=False)
    return str(text)


def check_system_turn(processor: Any, system: str, *, model: str, option: str) -> None:
    """Render one conversation with `system` through the chat template. A template that rejects a
    system turn (some raise) or silently drops it (LLaVA-NeXT's Mistral `[INST]` template renders
    only user and assistant turns) becomes one ConfigError naming `option` and the model, before
    any item runs, instead of an error per item or a run that never showed the model its system
    prompt. Folding it into the first user turn (Gemma-3) renders the text, so it passes."""
    from ..errors import ConfigError

    probe = GenerationRequest("probe", "probe", "Hello.", (), 1, system=system)
    try:
        text = chat_text(processor, probe)
    except Exception as exc:  # noqa: BLE001 - templates raise whatever jinja raises
        raise ConfigError(
            f"{option}: the chat template of {model!r} does not accept a system turn "
            f"({type(exc).__name__}: {exc}); run this model without {option}, or put the instructions "
            "into the prompts"
        ) from exc
    if system.strip() not in text:
        raise ConfigError(
            f"{option}: the chat template of {model!r} leaves the system turn out of the prompt, so the model "
            f"would never see it; run this model without {option}, or put the instructions into the prompts"
        )


def adds_special_tokens(tokenizer: Any, text: str) -> bool:
    """Whether tokenizing the rendered prompt `text` should add the tokenizer's special tokens:
    not when the chat template already wrote BOS (transformers' rule in
    `ProcessorMixin.apply_chat_template`)."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos is not None and text.startswith(bos))
