"""Reading item images: every failure names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import ItemError


def load_image(path: Path):  # -> PIL.Image.Image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise ItemError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ItemError(f"corrupt or unreadable image {path}: {exc}") from None


def check_images(paths: Sequence[Path]) -> None:
    """Raise ItemError naming the first missing or undecodable image, before any model work."""
    for path in paths:
        load_image(path)


def load_images(paths: Sequence[Path]) -> list:
    return [load_image(path) for path in paths]
