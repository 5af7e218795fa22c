"""Reading item images: every failure names the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PilImage

from ..errors import ItemError

# Modes of images with more than 8 bits a channel (16-bit PNG grayscale opens as I;16, 32-bit
# integer as I): convert("RGB") clips every value above 255, so a 16-bit image looks almost white.
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def _to_rgb(image: PilImage) -> PilImage:
    if image.mode in _WIDE_MODES:
        # Scale the image's own range to 0-255 (16-bit data spans 0-65535).
        wide = image.convert("I") if image.mode != "I" else image
        extrema = wide.getextrema()  # (low, high) of the one band
        top = extrema[1] if isinstance(extrema[1], (int, float)) else 255
        high = 65535 if image.mode.startswith("I;16") else max(int(top), 255)
        return wide.point(lambda value: value * 255 / high).convert("L").convert("RGB")
    return image.convert("RGB")


def load_image(path: Path) -> PilImage:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return _to_rgb(image)
    except FileNotFoundError:
        raise ItemError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ItemError(f"corrupt or unreadable image {path}: {exc}") from None


def check_images_exist(paths: Sequence[Path]) -> None:
    """Raise ItemError naming the first image that is not a file."""
    for path in paths:
        if not Path(path).is_file():
            raise ItemError(f"image not found: {path}")


def check_image_sizes(paths: Sequence[Path], max_pixels: int | None) -> None:
    """Raise ItemError naming the first image larger than `max_pixels`, read from the file's header
    (no decoding): a small PNG can decode to gigabytes, under Pillow's own bomb limit."""
    if max_pixels is None:
        return
    from PIL import Image

    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:  # noqa: BLE001 - unreadable files are reported by the decode, naming them
            continue
        if width * height > max_pixels:
            raise ItemError(
                f"image {path} is {width}x{height} = {width * height} pixels, more than --vlm-max-image-pixels="
                f"{max_pixels}; downscale it, or raise the option (or 'off') if the model needs it"
            )


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


def load_images(paths: Sequence[Path]) -> list[PilImage]:
    return [load_image(path) for path in paths]
