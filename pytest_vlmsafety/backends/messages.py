"""Chat messages for the server backend, built like the Hugging Face backend's (`prompts.py`).

A system turn when the request has one, then one user turn: every image first, then the prompt
text (the text first when the request says `text_first`), the same order `hf.py` gives its chat
template, so a model sees the same conversation whichever backend runs it. Images go through
`images.load_image` (decoded and converted to RGB exactly as for the Hugging Face backend), so
a server sees the same pixels too.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from .base import GenerationRequest
from .images import load_image

# Formats every OpenAI-compatible server decodes; files in them are sent as they are when they
# already hold plain RGB pixels (no alpha to flatten, no palette), which saves re-encoding.
_PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg"}


def image_data_url(path: Path) -> str:
    """A `data:` URL holding the image. A file that is not plain RGB PNG or JPEG is converted to
    RGB the way the Hugging Face backend converts it (alpha dropped, palette expanded) and sent
    as lossless PNG: servers flatten alpha on their own terms (vLLM onto white), which would
    change the pixels the model sees."""
    from PIL import Image

    image = load_image(path)  # raises ItemError naming the file
    with Image.open(path) as original:
        mime = _PASS_THROUGH.get(original.format or "")
        plain_rgb = original.mode == "RGB"
    if mime and plain_rgb:
        payload = path.read_bytes()
    else:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        payload, mime = buffer.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def openai_user_content(request: GenerationRequest) -> list[dict[str, Any]]:
    """The content parts of the user turn in the OpenAI chat-completions format."""
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(path)}} for path in request.images
    ]
    text = {"type": "text", "text": request.prompt}
    return [text, *parts] if request.text_first else [*parts, text]


def openai_messages(request: GenerationRequest) -> list[dict[str, Any]]:
    user = {"role": "user", "content": openai_user_content(request)}
    if request.system is None:
        return [user]
    # Plain-string content: the form every OpenAI-compatible server takes for a system turn.
    return [{"role": "system", "content": request.system}, user]

