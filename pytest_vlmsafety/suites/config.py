"""Which items a run takes and what one item may cost: the data options, declared once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import any_int, limit, option, path, positive_int

DEFAULT_SUITE = "sample"
# Bounds on what one item may cost (issue 11): a hostile or broken suite must not exhaust the
# machine. An item above a bound is an error item naming the bound's option; `off` lifts it.
DEFAULT_MAX_PROMPT_CHARS = 32_000  # the benchmarks' prompts are under 2,000 characters
DEFAULT_MAX_IMAGE_PIXELS = 36_000_000  # 6000 x 6000, about 108 MB decoded as RGB


@dataclass(frozen=True)
class DataConfig:
    """The suites, where their data is, the sample of their items, and the bounds on an item."""

    suites: tuple[str, ...] = option(
        "--safety-suite", "suite to run: a built-in name, name:subset, or a .jsonl file; repeatable", "NAME",
        kind="append",
    )
    data_root: Path | None = option(
        "--safety-data", "folder holding <suite>/ in each benchmark's native layout", "DIR", parse=path
    )
    download: bool = option(
        "--safety-download", "fetch hub-hosted suite data (holisafe, unsafeconcepts, mis) into --safety-data first, "
        "honouring HF_TOKEN and offline mode", kind="flag",
    )
    sample: int | None = option(
        "--safety-sample", "run N items per suite, stratified by category and expected behaviour", "N",
        parse=positive_int,
    )
    seed: int = option(
        "--safety-seed", "seed for --safety-sample and --safety-audit (default: 0)", "SEED", default="0",
        parse=any_int,
    )
    max_prompt_chars: int | None = option(
        "--vlm-max-prompt-chars", "longest prompt an item may have; longer ones are error items "
        f"(default: {DEFAULT_MAX_PROMPT_CHARS}, or off)", "N", default=str(DEFAULT_MAX_PROMPT_CHARS), parse=limit,
    )
    max_image_pixels: int | None = option(
        "--vlm-max-image-pixels", "largest image (width x height) an item may have; larger ones are error items, "
        f"never decoded (default: {DEFAULT_MAX_IMAGE_PIXELS}, or off)", "N", default=str(DEFAULT_MAX_IMAGE_PIXELS),
        parse=limit,
    )
