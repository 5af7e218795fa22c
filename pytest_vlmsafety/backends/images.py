"""Reading item images: every failure names the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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


def check_images_exist(paths: Sequence[Path]) -> None:
    """Raise ItemError naming the first image that is not a file."""
    for path in paths:
        if not Path(path).is_file():
            raise ItemError(f"image not found: {path}")


def image_pixels(paths: Sequence[Path]) -> int:
    """Total pixel count, read from the file headers (no decoding); 0 for an unreadable file."""
    from PIL import Image

    total = 0
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:  # noqa: BLE001 - the decode later reports the file properly
            continue
        total += width * height
    return total


def load_images(paths: Sequence[Path]) -> list:
    return [load_image(path) for path in paths]
