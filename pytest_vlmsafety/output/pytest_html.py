"""pytest-html integration: the calibration summary at the top of pytest-html's report and,
per test, the item's prompt, response, verdict and image thumbnails as extras.

The plugin registers a `PytestHtmlExtras` only when pytest-html is installed, and calls
`add_item_extras` on the call-phase report of each safety item. pytest-html inserts the HTML we
give it without escaping, so everything here is rendered through the report's autoescaping
jinja2 environment.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..items import Record
from .document import ResultsDocument
from .html import RATES, template_environment, thumbnail_jpeg

# Response characters shown in a test's extra; the full text is in the results JSON.
EXTRA_TEXT_CHARS = 2_000
# Images attached to one failing test; items with more (MIS has two) are rare.
MAX_EXTRA_IMAGES = 4
EXTRA_THUMB_PX = 160

ResultsProvider = Callable[[], "ResultsDocument | None"]


class PytestHtmlExtras:
    """pytest-html hook implementations; `results_provider` returns the run's results document
    once the run has it, None before."""

    def __init__(self, results_provider: ResultsProvider, *, report_path: Path | None = None) -> None:
        self._results_provider = results_provider
        self._report_path = report_path

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: Any
    ) -> None:
        results = self._results_provider()
        if results:
            prefix.append(render_summary_html(results, report_path=self._report_path))


def render_summary_html(results: ResultsDocument, *, report_path: Path | None = None) -> str:
    """The gate verdict and each suite's rates, as an HTML fragment with inline styles
    (pytest-html's stylesheet knows none of our classes)."""
    suites = [
        {
            "name": name,
            "status": data.gate.status,
            "rates": {rate: data.calibration.rate(rate) for rate in RATES},
        }
        for name, data in results.suites.items()
    ]
    return (
        template_environment()
        .get_template("pytest_html_summary.html.j2")
        .render(
            gate_passed=results.gate.passed,
            gate_status=results.gate.status,
            gate_failures=list(results.gate.failures),
            suites=suites,
            report_uri=Path(report_path).resolve().as_uri() if report_path else None,
        )
    )


def add_item_extras(report: Any, record: Record) -> None:
    """Append the item's details to `report.extras` (a pytest TestReport, call phase):
    one HTML extra with prompt, response and verdict for every item, and JPEG thumbnails
    for the items that did not pass."""
    from pytest_html import extras  # only called when pytest-html is installed

    added = [extras.html(render_item_html(record))]
    if record.outcome != "pass":
        for image in record.images[:MAX_EXTRA_IMAGES]:
            encoded = _thumbnail_base64(image, EXTRA_THUMB_PX)
            if encoded is not None:
                added.append(extras.jpg(encoded, name=Path(image).name))
    report.extras = [*getattr(report, "extras", []), *added]


def render_item_html(record: Record) -> str:
    response = record.response or ""
    return (
        template_environment()
        .get_template("pytest_html_item.html.j2")
        .render(
            item=record,
            response=response[:EXTRA_TEXT_CHARS],
            response_cut=max(0, len(response) - EXTRA_TEXT_CHARS),
            image_names=[Path(image).name for image in record.images],
        )
    )


@functools.lru_cache(maxsize=1024)
def _thumbnail_base64(path: str, size_px: int) -> str | None:
    """Cached: many items of a benchmark share an image. None when it cannot be read (the
    item's HTML extra still names the file)."""
    try:
        jpeg, _, _ = thumbnail_jpeg(Path(path), size_px)
    # Any decoding problem only costs this thumbnail; see ThumbnailStore.
    except Exception:  # noqa: BLE001
        return None
    return base64.b64encode(jpeg).decode("ascii")


__all__ = ["PytestHtmlExtras", "add_item_extras", "render_item_html", "render_summary_html"]
