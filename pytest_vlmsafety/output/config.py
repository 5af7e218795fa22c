"""Where a run writes: the output options, declared once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import option, path, positive_int

DEFAULT_CACHE_DIR = ".vlmsafety_cache"
DEFAULT_REPORT_DIR = "reports"
# Values of --vlm-cache that turn the cache off.
CACHE_OFF_VALUES: tuple[str, ...] = ("off", "none", "no", "false", "0")


def _cache_dir(flag: str, raw: str) -> Path | None:
    return None if raw.strip().lower() in CACHE_OFF_VALUES else Path(raw).expanduser()


@dataclass(frozen=True)
class OutputConfig:
    """The report folder, the generation cache, and the audit sample written for a reviewer."""

    report_dir: Path = option(
        "--safety-report", f"folder for vlmsafety-results.json and the HTML report (default: {DEFAULT_REPORT_DIR})",
        "DIR", default=DEFAULT_REPORT_DIR, parse=path,
    )
    cache_dir: Path | None = option(
        "--vlm-cache", f"folder of the generation cache, or 'off' (default: {DEFAULT_CACHE_DIR})", "DIR",
        default=DEFAULT_CACHE_DIR, parse=_cache_dir,
    )
    audit_size: int | None = option(
        "--safety-audit", "write vlmsafety-audit.jsonl to the report folder: N judged items drawn at random (seeded "
        "by --safety-seed), stratified by suite and verdict, for a reviewer to label (also in the HTML report's "
        "Audit view)", "N", parse=positive_int,
    )
