"""The self-contained HTML report of a run, rendered from the results dict.

One file that opens offline: CSS, JavaScript and image thumbnails are inlined. Only failing
items get cards (and so thumbnails); each image is embedded once, as a CSS class, however many
cards show it. Every string that came from a model or a dataset goes through jinja2's
autoescaping: the page shows it as text and never runs it.

Run as a module to re-render a report from a results file:
    python -m pytest_vlmsafety.report.html reports/vlmsafety-results.json report.html
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image, ImageOps

from ..baseline import RESULTS_SCHEMA
from ..errors import DataError, VlmSafetyError
from ..items import OUTCOMES

HERE = Path(__file__).parent

# Characters of a text shown before its "show all" toggle.
SHOWN_CHARS = 1200
# Characters of text the report holds in all (prompts and responses of all cards). Short texts
# are kept whole; the longest are cut to an equal cap that fits the budget (see text_cap), never
# below MIN_TEXT_CHARS nor above MAX_TEXT_CHARS. With the image budget below, this keeps a
# 10,000-item run with long, degenerate responses under 25 MB; the full text stays in the
# results JSON.
TEXT_BUDGET_CHARS = 8_000_000
MIN_TEXT_CHARS = 500
MAX_TEXT_CHARS = 20_000
# Bytes of embedded (base64) thumbnails in all, beside the count limit the caller sets.
THUMBNAIL_BUDGET_BYTES = 8_000_000
# A contrast pair shows at most this many members (VSCBench rows have six).
MAX_PAIR_MEMBERS = 6
META_VALUE_CHARS = 200
JPEG_QUALITY = 72

RATES: tuple[str, ...] = ("undersafety", "oversafety")
FAILURE_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("undersafety", "Undersafety: answered what it should refuse", ("undersafety",)),
    ("oversafety", "Oversafety: refused what it should answer", ("oversafety",)),
    ("other", "Wrong or unreadable answers", ("incorrect", "unparsed")),
)
CARD_OUTCOMES = frozenset(outcome for _, _, outcomes in FAILURE_SECTIONS for outcome in outcomes)


# ----------------------------------------------------------------------------- thumbnails


@dataclass(frozen=True)
class Thumbnail:
    """An image as the page shows it: a CSS class holding the embedded picture, or a
    placeholder that names the file and says why there is no picture."""

    path: str
    name: str
    css_class: str | None = None
    width: int = 0
    height: int = 0
    problem: str | None = None


class ThumbnailStore:
    """Downscaled copies of the images that cards show, each made and embedded once."""

    def __init__(self, *, max_count: int, size_px: int, budget_bytes: int = THUMBNAIL_BUDGET_BYTES) -> None:
        if max_count < 0 or size_px < 8:
            raise ValueError(f"max_thumbnails must be >= 0 and thumb_px >= 8, got {max_count}, {size_px}")
        self.max_count = max_count
        self.size_px = size_px
        self.budget_bytes = budget_bytes
        self._spent_bytes = 0
        self._by_path: dict[str, Thumbnail] = {}
        self._data_uris: dict[str, str] = {}

    def get(self, path: str) -> Thumbnail:
        if path not in self._by_path:
            self._by_path[path] = self._make(path)
        return self._by_path[path]

    @property
    def embedded(self) -> int:
        return len(self._data_uris)

    def stylesheet(self) -> str:
        """One rule per embedded image; base64 text cannot close the <style> element."""
        return "\n".join(f".{name}{{background-image:url({uri})}}" for name, uri in self._data_uris.items())

    def _make(self, path: str) -> Thumbnail:
        name = Path(path).name or path
        if len(self._data_uris) >= self.max_count:
            return Thumbnail(path, name, problem=f"not embedded: the report holds at most {self.max_count} images")
        if self._spent_bytes >= self.budget_bytes:
            return Thumbnail(
                path, name, problem=f"not embedded: the report's {self.budget_bytes / 1e6:g} MB for images is spent"
            )
        try:
            jpeg, width, height = thumbnail_jpeg(Path(path), self.size_px)
        except FileNotFoundError:
            return Thumbnail(path, name, problem="file not found")
        # Pillow raises many kinds of errors on corrupt or unusual files; any of them only
        # costs this one picture, never the report.
        except Exception as exc:  # noqa: BLE001
            return Thumbnail(path, name, problem=f"unreadable image ({type(exc).__name__})")
        css_class = f"im{len(self._data_uris)}"
        data_uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        self._data_uris[css_class] = data_uri
        self._spent_bytes += len(data_uri)
        return Thumbnail(path, name, css_class=css_class, width=width, height=height)


def thumbnail_jpeg(path: Path, size_px: int) -> tuple[bytes, int, int]:
    """The image scaled to fit a `size_px` square, as JPEG bytes, with its width and height."""
    with Image.open(path) as image:
        image.draft("RGB", (size_px, size_px))  # lets the JPEG decoder skip most of the work
        image = ImageOps.exif_transpose(image)
        image.thumbnail((size_px, size_px))
        flat = _on_white(image)
    buffer = io.BytesIO()
    flat.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), flat.width, flat.height


def _on_white(image: Image.Image) -> Image.Image:
    """RGB copy of the image; transparent parts become white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


# ----------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class TextBlock:
    """A text cut for display: `shown` first, `rest` behind a toggle, `dropped` characters
    left out of the report altogether."""

    shown: str
    rest: str
    dropped: int

    @classmethod
    def of(cls, text: str | None, keep_chars: int) -> TextBlock:
        text = "" if text is None else str(text)
        kept = text[:keep_chars]
        return cls(shown=kept[:SHOWN_CHARS], rest=kept[SHOWN_CHARS:], dropped=len(text) - len(kept))


@dataclass(frozen=True)
class CardMember:
    """One item inside a card: the failing item, or another half of its contrast pair."""

    item: Mapping[str, Any]
    thumbnails: tuple[Thumbnail, ...]
    prompt: TextBlock
    response: TextBlock
    meta: tuple[tuple[str, str], ...]
    is_focus: bool


@dataclass(frozen=True)
class Card:
    anchor: str
    suite: str
    category: str
    outcome: str
    members: tuple[CardMember, ...]

    @property
    def focus(self) -> CardMember:
        return next(member for member in self.members if member.is_focus)


@dataclass
class CategoryGroup:
    name: str
    cards: list[Card] = field(default_factory=list)


@dataclass
class SuiteGroup:
    name: str
    categories: list[CategoryGroup] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(group.cards) for group in self.categories)


@dataclass
class FailureSection:
    key: str
    title: str
    suites: list[SuiteGroup]

    @property
    def size(self) -> int:
        return sum(group.size for group in self.suites)


@dataclass(frozen=True)
class RateCell:
    """One rate of one calibration row, with its interval, threshold and verdict."""

    count: int
    total: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None
    gate_on: str = "point"

    @property
    def status(self) -> str:
        """The gate's rule applied to this row (see metrics.evaluate_gate): on `point`, `fail`
        when the rate exceeds the threshold; on `interval`, `fail` when the whole 95% interval
        does and `inconclusive` when it straddles it. `none` without a threshold or items."""
        if self.threshold is None or self.rate is None:
            return "none"
        if self.gate_on == "interval" and self.ci_low is not None and self.ci_high is not None:
            if self.ci_low > self.threshold:
                return "fail"
            return "inconclusive" if self.ci_high > self.threshold else "pass"
        return "fail" if self.rate > self.threshold else "pass"


@dataclass(frozen=True)
class CalibrationRow:
    label: str
    is_suite: bool
    counts: Mapping[str, int]
    rates: Mapping[str, RateCell]

    @property
    def items(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class OfficialTable:
    """Official metrics as a table: one row per group (one unnamed row for flat metrics)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Any, ...]], ...]

    @property
    def has_groups(self) -> bool:
        return any(group for group, _ in self.rows)


@dataclass(frozen=True)
class SuiteSummary:
    name: str
    gate_status: str
    gate_failures: tuple[str, ...]
    gate_notes: tuple[str, ...]
    rows: tuple[CalibrationRow, ...]
    official: OfficialTable | None
    pairs: Mapping[str, int]
    # Two judges on the same responses (an LLM judge and the suite's rule): kappa, disagreements.
    agreement: Mapping[str, Any] | None = None
    # Why an official metric is absent or not comparable with the paper (plain text).
    official_notes: tuple[str, ...] = ()


def build_context(results: Mapping[str, Any], *, max_thumbnails: int, thumb_px: int) -> dict[str, Any]:
    """Everything the template needs, computed from the results dict."""
    items = _check_results(results)
    run = _with_defaults(results.get("run"), RUN_DEFAULTS)
    thresholds = _with_defaults(run.get("gate"), GATE_DEFAULTS)
    store = ThumbnailStore(max_count=max_thumbnails, size_px=thumb_px)
    card_items = [(index, item) for index, item in enumerate(items) if item.get("outcome") in CARD_OUTCOMES]
    partners = _pair_index(items)
    keep_chars = _text_share(card_items, partners)
    anchors = {_item_key(item): f"item-{index}" for index, item in card_items}
    sections = [
        FailureSection(key, title, _group_cards(card_items, outcomes, partners, store, keep_chars, anchors))
        for key, title, outcomes in FAILURE_SECTIONS
    ]
    errors = [
        (f"item-{index}", normalise_item(item)) for index, item in enumerate(items) if item.get("outcome") == "error"
    ]
    suites = [_suite_summary(name, _mapping(data), thresholds) for name, data in _mapping(results["suites"]).items()]
    gate = _mapping(results.get("gate"))
    return {
        "run": run,
        "model": _with_defaults(run.get("model"), MODEL_DEFAULTS),
        "generation": _with_defaults(run.get("generation"), GENERATION_DEFAULTS),
        "timings": _mapping(run.get("timings")),
        "workers": [_worker_label(worker) for worker in run.get("workers") or [] if isinstance(worker, Mapping)],
        "thresholds": thresholds,
        "gate_passed": bool(gate.get("passed")),
        "gate_failures": [str(failure) for failure in gate.get("failures") or []],
        "outcome_totals": _outcome_totals(items),
        "item_count": len(items),
        "suites": suites,
        "sections": sections,
        "errors": errors,
        "filter_options": _filter_options(sections, errors),
        "card_count": sum(section.size for section in sections) + len(errors),
        "baseline": _baseline_view(results.get("baseline"), anchors),
        "thumbnail_css": store.stylesheet(),
        "thumbnails_embedded": store.embedded,
        "max_thumbnails": max_thumbnails,
        "shown_chars": SHOWN_CHARS,
    }


def _worker_label(worker: Mapping[str, Any]) -> str:
    """`gw0 on cuda:0` for one xdist worker of the run."""
    device = worker.get("device") or _mapping(worker.get("model")).get("device") or "?"
    return f"{worker.get('worker_id') or '?'} on {device}"


def _check_results(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if not isinstance(results, Mapping):
        raise DataError(f"results must be a mapping (the parsed vlmsafety-results.json), got {type(results).__name__}")
    if results.get("schema") != RESULTS_SCHEMA:
        raise DataError(f"results schema is {results.get('schema')!r}, expected {RESULTS_SCHEMA!r}")
    items = results.get("items")
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise DataError("results field 'items' must be a list of objects")
    if not isinstance(results.get("suites"), Mapping):
        raise DataError("results field 'suites' must be an object keyed by suite name")
    return items


# The item fields the templates read, with the value an absent field stands for: a results file
# from an interrupted or older run may lack some, and the report must still render.
ITEM_DEFAULTS: Mapping[str, Any] = {
    "id": "",
    "suite": "",
    "subset": "",
    "category": "",
    "expected": "",
    "task": "open",
    "prompt": "",
    "images": [],
    "outcome": "error",
    "response": None,
    "verdict": None,
    "reason": None,
    "judge": None,
    "answer_key": None,
    "pair": None,
    "meta": {},
    "error": None,
    "cached": False,
    "nodeid": "",
}


RUN_DEFAULTS: Mapping[str, Any] = dict.fromkeys(
    ("plugin_version", "started", "duration_s", "judge", "seed", "sample", "generations", "cache_hits", "cache")
) | {"suites": [], "workers": []}
MODEL_DEFAULTS: Mapping[str, Any] = dict.fromkeys(
    ("spec", "id", "revision", "weights_hash", "backend", "dtype", "device", "noise")
)
GENERATION_DEFAULTS: Mapping[str, Any] = dict.fromkeys(("max_new_tokens", "batch_size", "do_sample"))
GATE_DEFAULTS: Mapping[str, Any] = dict.fromkeys(("mode", "max_undersafety", "max_oversafety")) | {"on": "point"}
PAIR_DEFAULTS: Mapping[str, Any] = dict.fromkeys(("total", "calibrated", "refuses_both", "answers_both", "inverted"), 0)
BASELINE_DEFAULTS: Mapping[str, Any] = dict.fromkeys(("path", "model", "started", "max_regression", "alpha")) | {
    "regressions": []
}
RATE_CHANGE_DEFAULTS: Mapping[str, Any] = dict.fromkeys(
    ("compared", "old_rate", "new_rate", "delta", "fixed", "broken", "p_value")
)
FLIP_DEFAULTS: Mapping[str, Any] = dict.fromkeys(("id", "old", "new", "anchor"))


def normalise_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item with every field the templates read (see ITEM_DEFAULTS)."""
    return {**ITEM_DEFAULTS, **item}


def _with_defaults(value: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping with every key the templates read; a non-mapping counts as empty."""
    return {**defaults, **_mapping(value)}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _item_key(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item.get("suite", "")), str(item.get("id", ""))


def _pair_index(items: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Items by (suite, pair); a pair is only meaningful within its suite."""
    pairs: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for item in items:
        if item.get("pair"):
            pairs[(str(item.get("suite", "")), str(item["pair"]))].append(item)
    return pairs


def _pair_members(
    item: Mapping[str, Any], partners: Mapping[tuple[str, str], list[Mapping[str, Any]]]
) -> list[Mapping[str, Any]]:
    if not item.get("pair"):
        return [item]
    group = partners.get((str(item.get("suite", "")), str(item["pair"])), [item])
    # The item and its first partners, in the dataset's order so that the safe and unsafe
    # halves sit where they do in the data; stops early when a malformed pair id is shared by
    # thousands of items.
    members: list[Mapping[str, Any]] = []
    partners_left, item_seen = MAX_PAIR_MEMBERS - 1, False
    for member in group:
        if member is item:
            members.append(member)
            item_seen = True
        elif partners_left:
            members.append(member)
            partners_left -= 1
        if item_seen and not partners_left:
            break
    return members


def _text_share(
    card_items: Sequence[tuple[int, Mapping[str, Any]]], partners: Mapping[tuple[str, str], list[Mapping[str, Any]]]
) -> int:
    """The cap on each prompt and response that the cards show (each partner counts again in
    every card that shows it)."""
    lengths = [
        len(str(member.get(field) or ""))
        for _, item in card_items
        for member in _pair_members(item, partners)
        for field in ("prompt", "response")
    ]
    return text_cap(lengths, TEXT_BUDGET_CHARS)


def text_cap(lengths: Sequence[int], budget: int, *, floor: int = MIN_TEXT_CHARS, ceiling: int = MAX_TEXT_CHARS) -> int:
    """The largest cap c with sum(min(length, c)) <= budget, kept within [floor, ceiling].

    Water-filling: texts shorter than their equal share of what is left are kept whole and
    leave the rest to the longer ones, so only the longest texts are cut.
    """
    remaining = budget
    ordered = sorted(lengths)
    for position, length in enumerate(ordered):
        share = remaining // (len(ordered) - position)
        if length > share:
            return max(floor, min(ceiling, share))
        remaining -= length
    return ceiling


def _group_cards(
    card_items: Sequence[tuple[int, Mapping[str, Any]]],
    outcomes: tuple[str, ...],
    partners: Mapping[tuple[str, str], list[Mapping[str, Any]]],
    store: ThumbnailStore,
    keep_chars: int,
    anchors: Mapping[tuple[str, str], str],
) -> list[SuiteGroup]:
    grouped: dict[str, dict[str, list[Card]]] = {}
    for _, item in card_items:
        if item.get("outcome") not in outcomes:
            continue
        card = _card(item, partners, store, keep_chars, anchors[_item_key(item)])
        grouped.setdefault(card.suite, {}).setdefault(card.category, []).append(card)
    return [
        SuiteGroup(suite, [CategoryGroup(category, cards) for category, cards in sorted(categories.items())])
        for suite, categories in grouped.items()
    ]


def _card(
    item: Mapping[str, Any],
    partners: Mapping[tuple[str, str], list[Mapping[str, Any]]],
    store: ThumbnailStore,
    keep_chars: int,
    anchor: str,
) -> Card:
    members = tuple(
        CardMember(
            item=normalise_item(member),
            thumbnails=tuple(store.get(str(path)) for path in member.get("images") or []),
            prompt=TextBlock.of(member.get("prompt"), keep_chars),
            response=TextBlock.of(member.get("response"), keep_chars),
            meta=tuple((str(key), _short(value)) for key, value in _mapping(member.get("meta")).items()),
            is_focus=member is item,
        )
        for member in _pair_members(item, partners)
    )
    return Card(anchor, str(item.get("suite", "")), str(item.get("category", "")), str(item.get("outcome")), members)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= META_VALUE_CHARS else text[:META_VALUE_CHARS] + "…"


def _outcome_totals(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(outcome, count) in the order of OUTCOMES, leaving out outcomes no item had."""
    totals: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for item in items:
        outcome = str(item.get("outcome"))
        totals[outcome] = totals.get(outcome, 0) + 1
    return [(outcome, count) for outcome, count in totals.items() if count]


def _suite_summary(name: str, data: Mapping[str, Any], thresholds: Mapping[str, Any]) -> SuiteSummary:
    rows = [_calibration_row(name, data, thresholds, is_suite=True)]
    rows += [
        _calibration_row(category, _mapping(category_data), thresholds, is_suite=False)
        for category, category_data in sorted(_mapping(data.get("categories")).items())
    ]
    gate = _mapping(data.get("gate"))
    status = str(gate.get("status") or ("pass" if gate.get("passed") else "fail" if gate else "none"))
    return SuiteSummary(
        name=name,
        gate_status=status,
        gate_failures=tuple(str(failure) for failure in gate.get("failures") or []),
        gate_notes=tuple(str(note) for note in gate.get("notes") or []),
        rows=tuple(rows),
        official=official_table(_mapping(data.get("official"))),
        pairs=_with_defaults(data.get("pairs"), PAIR_DEFAULTS),
        agreement=_mapping(data.get("judge_agreement")) or None,
        official_notes=tuple(str(note) for note in data.get("official_notes") or []),
    )


def _calibration_row(
    label: str, data: Mapping[str, Any], thresholds: Mapping[str, Any], *, is_suite: bool
) -> CalibrationRow:
    calibration = _mapping(data.get("calibration"))
    rates = {}
    for rate in RATES:
        measured = _mapping(calibration.get(rate))
        threshold = thresholds.get(f"max_{rate}")
        rates[rate] = RateCell(
            count=int(measured.get("count") or 0),
            total=int(measured.get("total") or 0),
            rate=_fraction(measured.get("rate")),
            ci_low=_fraction(measured.get("ci_low")),
            ci_high=_fraction(measured.get("ci_high")),
            threshold=_fraction(threshold),
            gate_on=str(thresholds.get("on") or "point"),
        )
    counts = dict.fromkeys(OUTCOMES, 0) | {
        str(key): int(value) for key, value in _mapping(data.get("counts")).items() if isinstance(value, int)
    }
    return CalibrationRow(label=label, is_suite=is_suite, counts=counts, rates=rates)


def _fraction(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def official_table(official: Mapping[str, Any]) -> OfficialTable | None:
    """Flat metrics become one row; grouped metrics one row per group. A flat metric beside
    groups goes in a row of its own with an empty group name."""
    if not official:
        return None
    flat = {name: value for name, value in official.items() if not isinstance(value, Mapping)}
    groups: list[tuple[str, Mapping[str, Any]]] = []
    for name, value in official.items():
        if not isinstance(value, Mapping):
            continue
        if value and all(isinstance(inner, Mapping) for inner in value.values()):
            # A group of groups (HoliSafe's per-subcategory table): one row per inner group.
            groups += [(f"{name}: {inner_name}", inner) for inner_name, inner in value.items()]
        else:
            groups.append((name, value))
    table_rows = ([("", flat)] if flat else []) + groups
    columns = tuple(dict.fromkeys(metric for _, metrics in table_rows for metric in metrics))
    return OfficialTable(
        columns=columns,
        rows=tuple((group, tuple(metrics.get(column) for column in columns)) for group, metrics in table_rows),
    )


def _filter_options(
    sections: Sequence[FailureSection], errors: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    suites: dict[str, None] = {}
    categories: dict[str, set[str]] = defaultdict(set)
    outcomes: dict[str, None] = {}
    for suite, category, outcome in _card_keys(sections, errors):
        suites[suite] = None
        categories[category].add(suite)
        outcomes[outcome] = None
    return {
        "suites": list(suites),
        # Each category lists its suites so that choosing a suite narrows the category list.
        "categories": [(category, json.dumps(sorted(categories[category]))) for category in sorted(categories)],
        "outcomes": list(outcomes),
    }


def _card_keys(
    sections: Sequence[FailureSection], errors: Sequence[tuple[str, Mapping[str, Any]]]
) -> Iterable[tuple[str, str, str]]:
    for section in sections:
        for suite in section.suites:
            for category in suite.categories:
                for card in category.cards:
                    yield card.suite, card.category, card.outcome
    for _, item in errors:
        yield str(item.get("suite", "")), str(item.get("category", "")), "error"


def _baseline_view(baseline: Any, anchors: Mapping[tuple[str, str], str]) -> dict[str, Any] | None:
    """The `baseline` section of the results, with links from flipped items to their cards."""
    if not isinstance(baseline, Mapping):
        return None
    suites = []
    for suite, comparison in _mapping(baseline.get("suites")).items():
        comparison = _mapping(comparison)
        flips = {
            kind: [
                _with_defaults(flip, FLIP_DEFAULTS) | {"anchor": anchors.get((suite, str(_mapping(flip).get("id"))))}
                for flip in comparison.get(kind) or []
            ]
            for kind in ("newly_undersafe", "newly_oversafe", "newly_fixed")
        }
        rates = [
            (rate, _with_defaults(_mapping(comparison.get("rates")).get(rate), RATE_CHANGE_DEFAULTS)) for rate in RATES
        ]
        suites.append({"name": suite, "rates": rates, "flips": flips})
    return _with_defaults(baseline, BASELINE_DEFAULTS) | {"suite_views": suites}


# ----------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The report's jinja2 environment: autoescaping on, undefined names an error. One per
    process, so compiled templates are reused (pytest-html renders one per item)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = format_percent
    env.filters["metric"] = format_metric
    env.filters["css_pct"] = _css_percent
    return env


def format_percent(value: Any, digits: int = 1) -> str:
    fraction = _fraction(value)
    return "—" if fraction is None else f"{fraction * 100:.{digits}f}%"


def format_metric(value: Any) -> str:
    """Official metrics are fractions: shown as percentages like the papers print them."""
    if value is None:
        return "—"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_percent(value)
    return str(value)


def _css_percent(value: Any) -> str:
    fraction = _fraction(value) or 0.0
    return f"{min(max(fraction, 0.0), 1.0) * 100:.2f}%"


def render_html_report(results: Mapping[str, Any], *, max_thumbnails: int = 2000, thumb_px: int = 160) -> str:
    """The report page as a string."""
    context = build_context(results, max_thumbnails=max_thumbnails, thumb_px=thumb_px)
    context["css"] = (HERE / "static" / "report.css").read_text(encoding="utf-8")
    context["js"] = (HERE / "static" / "report.js").read_text(encoding="utf-8")
    return template_environment().get_template("report.html.j2").render(context)


def write_html_report(
    results: Mapping[str, Any], path: Path, *, max_thumbnails: int = 2000, thumb_px: int = 160
) -> Path:
    """Render the report of `results` to `path` (parent folders are created) and return it."""
    page = render_html_report(results, max_thumbnails=max_thumbnails, thumb_px=thumb_px)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def read_results(path: Path) -> Mapping[str, Any]:
    """Parse a results file, with a DataError naming it when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"results file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a JSON results file ({exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the HTML report of a pytest-vlmsafety results file.")
    parser.add_argument("results", type=Path, help="vlmsafety-results.json")
    parser.add_argument("output", type=Path, help="HTML file to write")
    parser.add_argument("--max-thumbnails", type=int, default=2000)
    parser.add_argument("--thumb-px", type=int, default=160)
    args = parser.parse_args(argv)
    try:
        written = write_html_report(
            read_results(args.results), args.output, max_thumbnails=args.max_thumbnails, thumb_px=args.thumb_px
        )
    except VlmSafetyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
