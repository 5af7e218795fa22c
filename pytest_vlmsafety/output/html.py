"""The self-contained HTML report of a run, rendered from the results dict.

One file that opens offline: CSS, JavaScript and image thumbnails are inlined. Only failing
items get cards (and so thumbnails); each image is embedded once, as a CSS class, however many
cards show it. Every string that came from a model or a dataset goes through jinja2's
autoescaping: the page shows it as text and never runs it.

Run as a module to re-render a report from a results file:
    python -m pytest_vlmsafety.output.html reports/vlmsafety-results.json report.html
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
import markupsafe
from PIL import Image, ImageOps

from ..errors import VlmSafetyError
from ..items import OUTCOMES, Record, record_key
from .audit_file import AUDIT_FILENAME, LABELS, audit_line, dump_line, judge_name, judge_verdict
from .document import (
    RATE_NAMES,
    BaselineSection,
    CategorySummary,
    GateSettings,
    JudgeAgreement,
    ResultsDocument,
    SuiteAudit,
    SuiteResults,
    to_json_value,
    write_text_atomic,
)

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
# The most characters of any one string the page shows (`bounded`, applied to every value a
# template writes): a results or baseline file is schema-valid with a 5 MB model name or item id,
# which would otherwise be embedded whole. Card texts are cut before this (text_cap).
MAX_EMBEDDED_CHARS = MAX_TEXT_CHARS
JPEG_QUALITY = 72

RATES: tuple[str, ...] = RATE_NAMES
FAILURE_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("undersafety", "Undersafety: answered what it should refuse", ("undersafety",)),
    ("oversafety", "Oversafety: refused what it should answer", ("oversafety",)),
    ("other", "Wrong, unreadable or unjudged answers", ("incorrect", "unparsed", "unjudged")),
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
    with Image.open(path) as opened:
        opened.draft("RGB", (size_px, size_px))  # lets the JPEG decoder skip most of the work
        image = ImageOps.exif_transpose(opened)
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

    item: Record
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
    agreement: JudgeAgreement | None = None
    # Why an official metric is absent or not comparable with the paper (plain text).
    official_notes: tuple[str, ...] = ()
    # The human audit: the judge's rates beside the corrected ones, and the judge's agreement.
    audit: SuiteAudit | None = None
    corrected: tuple[tuple[str, RateCell, RateCell | None], ...] = ()


@dataclass(frozen=True)
class AuditEntry:
    """One item of the audit sample, as the Audit view shows it: `line` is its audit-file line
    (JSON text) that the page's Save button writes back with the chosen label."""

    item: Record
    thumbnails: tuple[Thumbnail, ...]
    prompt: TextBlock
    response: TextBlock
    judge_verdict: str | None
    judge: str | None
    line: str


Results = ResultsDocument | Mapping[str, Any]


def build_context(results: Results, *, max_thumbnails: int, thumb_px: int) -> dict[str, Any]:
    """Everything the template needs, computed from the results document (or its JSON)."""
    document = ResultsDocument.from_json(results)
    items = document.items
    run = document.run
    thresholds = run.gate
    store = ThumbnailStore(max_count=max_thumbnails, size_px=thumb_px)
    card_items = [(index, item) for index, item in enumerate(items) if item.outcome in CARD_OUTCOMES]
    partners = _pair_index(items)
    keep_chars = _text_share(card_items, partners)
    anchors = {item.key: f"item-{index}" for index, item in card_items}
    sections = [
        FailureSection(key, title, _group_cards(card_items, outcomes, partners, store, keep_chars, anchors))
        for key, title, outcomes in FAILURE_SECTIONS
    ]
    errors = [(f"item-{index}", item) for index, item in enumerate(items) if item.outcome == "error"]
    suites = [_suite_summary(name, data, thresholds) for name, data in document.suites.items()]
    audit_entries = _audit_entries(document, store)
    return {
        "run": run,
        # Backends add their own facts to the model (a replay's weights hash): the page shows one.
        "model": {"weights_hash": None, **to_json_value(run.model)},
        "generation": run.generation,
        "timings": to_json_value(run.timings),
        "workers": [f"{worker.worker_id or '?'} on {worker.shown_device or '?'}" for worker in run.workers],
        "thresholds": thresholds,
        "gate_passed": document.gate.passed,
        "gate_status": document.gate.status,
        "gate_failures": list(document.gate.failures),
        "outcome_totals": _outcome_totals(items),
        "item_count": len(items),
        "suites": suites,
        "sections": sections,
        "errors": errors,
        "filter_options": _filter_options(sections, errors),
        "card_count": sum(section.size for section in sections) + len(errors),
        "baseline": _baseline_view(document.baseline, anchors),
        "audit": document.audit,
        "audit_entries": audit_entries,
        "audit_labels": LABELS,
        "audit_filename": AUDIT_FILENAME,
        "thumbnail_css": store.stylesheet(),
        "thumbnails_embedded": store.embedded,
        "max_thumbnails": max_thumbnails,
        "shown_chars": SHOWN_CHARS,
    }


PairIndex = Mapping[tuple[str, str], list[Record]]


def _pair_index(items: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    """Items by (suite, pair); a pair is only meaningful within its suite."""
    pairs: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for item in items:
        if item.pair:
            pairs[(item.suite, item.pair)].append(item)
    return pairs


def _pair_members(item: Record, partners: PairIndex) -> list[Record]:
    if not item.pair:
        return [item]
    group = partners.get((item.suite, item.pair), [item])
    # The item and its first partners, in the dataset's order so that the safe and unsafe
    # halves sit where they do in the data; stops early when a malformed pair id is shared by
    # thousands of items.
    members: list[Record] = []
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


def _text_share(card_items: Sequence[tuple[int, Record]], partners: PairIndex) -> int:
    """The cap on each prompt and response that the cards show (each partner counts again in
    every card that shows it)."""
    lengths = [
        len(text or "")
        for _, item in card_items
        for member in _pair_members(item, partners)
        for text in (member.prompt, member.response)
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
    card_items: Sequence[tuple[int, Record]],
    outcomes: tuple[str, ...],
    partners: PairIndex,
    store: ThumbnailStore,
    keep_chars: int,
    anchors: Mapping[str, str],
) -> list[SuiteGroup]:
    grouped: dict[str, dict[str, list[Card]]] = {}
    for _, item in card_items:
        if item.outcome not in outcomes:
            continue
        card = _card(item, partners, store, keep_chars, anchors[item.key])
        grouped.setdefault(card.suite, {}).setdefault(card.category, []).append(card)
    return [
        SuiteGroup(suite, [CategoryGroup(category, cards) for category, cards in sorted(categories.items())])
        for suite, categories in grouped.items()
    ]


def _card(
    item: Record,
    partners: PairIndex,
    store: ThumbnailStore,
    keep_chars: int,
    anchor: str,
) -> Card:
    members = tuple(
        CardMember(
            item=member,
            thumbnails=tuple(store.get(path) for path in member.images),
            prompt=TextBlock.of(member.prompt, keep_chars),
            response=TextBlock.of(member.response, keep_chars),
            meta=tuple((key, _short(value)) for key, value in member.meta.items()),
            is_focus=member is item,
        )
        for member in _pair_members(item, partners)
    )
    return Card(anchor, item.suite, item.category, item.outcome, members)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= META_VALUE_CHARS else text[:META_VALUE_CHARS] + "…"


def _outcome_totals(items: Iterable[Record]) -> list[tuple[str, int]]:
    """(outcome, count) in the order of OUTCOMES, leaving out outcomes no item had."""
    totals: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for item in items:
        totals[item.outcome] = totals.get(item.outcome, 0) + 1
    return [(outcome, count) for outcome, count in totals.items() if count]


def _audit_entries(document: ResultsDocument, store: ThumbnailStore) -> list[AuditEntry]:
    """The audit sample's items, in the order to label them."""
    if document.audit is None or not document.audit.sample:
        return []
    by_key = {item.key: item for item in document.items}
    entries = []
    for key in document.audit.sample:
        item = by_key.get(key)
        if item is None:
            continue
        entries.append(AuditEntry(
            item=item,
            thumbnails=tuple(store.get(path) for path in item.images),
            prompt=TextBlock.of(item.prompt, MAX_TEXT_CHARS),
            response=TextBlock.of(item.response, MAX_TEXT_CHARS),
            judge_verdict=judge_verdict(item),
            judge=judge_name(item),
            line=dump_line(audit_line(item)),
        ))
    return entries


def _corrected_cells(data: SuiteResults, thresholds: GateSettings) -> tuple[tuple[str, RateCell, RateCell | None], ...]:
    """Per rate: the judge's count and the audit's corrected estimate, for the side-by-side table."""
    if data.audit is None:
        return ()
    cells = []
    for rate in RATES:
        measured = data.calibration.rate(rate)
        observed = RateCell(
            count=measured.count, total=measured.total, rate=_fraction(measured.rate),
            ci_low=_fraction(measured.ci_low), ci_high=_fraction(measured.ci_high),
            threshold=_fraction(thresholds.threshold(rate)), gate_on=thresholds.on,
        )
        estimate = data.audit.corrected.rate(rate)
        corrected = None if estimate is None else RateCell(
            count=estimate.labelled, total=estimate.total, rate=_fraction(estimate.rate),
            ci_low=_fraction(estimate.ci_low), ci_high=_fraction(estimate.ci_high),
            threshold=_fraction(thresholds.threshold(rate)), gate_on=thresholds.on,
        )
        if measured.total or corrected is not None:
            cells.append((rate, observed, corrected))
    return tuple(cells)


def _suite_summary(name: str, data: SuiteResults, thresholds: GateSettings) -> SuiteSummary:
    rows = [_calibration_row(name, data.counts, data, thresholds, is_suite=True)]
    rows += [
        _calibration_row(category, summary.counts, summary, thresholds, is_suite=False)
        for category, summary in sorted(data.categories.items())
    ]
    return SuiteSummary(
        name=name,
        gate_status=data.gate.status,
        gate_failures=tuple(data.gate.failures),
        gate_notes=tuple(data.gate.notes),
        rows=tuple(rows),
        official=official_table(data.official),
        pairs=to_json_value(data.pairs),
        agreement=data.judge_agreement,
        official_notes=tuple(data.official_notes),
        audit=data.audit,
        corrected=_corrected_cells(data, thresholds),
    )


def _calibration_row(
    label: str,
    counts: Mapping[str, int],
    data: SuiteResults | CategorySummary,
    thresholds: GateSettings,
    *,
    is_suite: bool,
) -> CalibrationRow:
    rates = {}
    for rate in RATES:
        measured = data.calibration.rate(rate)
        rates[rate] = RateCell(
            count=measured.count,
            total=measured.total,
            rate=_fraction(measured.rate),
            ci_low=_fraction(measured.ci_low),
            ci_high=_fraction(measured.ci_high),
            threshold=_fraction(thresholds.threshold(rate)),
            gate_on=thresholds.on,
        )
    return CalibrationRow(label=label, is_suite=is_suite, counts=dict.fromkeys(OUTCOMES, 0) | dict(counts), rates=rates)


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


def _filter_options(sections: Sequence[FailureSection], errors: Sequence[tuple[str, Record]]) -> dict[str, Any]:
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
    sections: Sequence[FailureSection], errors: Sequence[tuple[str, Record]]
) -> Iterable[tuple[str, str, str]]:
    for section in sections:
        for suite in section.suites:
            for category in suite.categories:
                for card in category.cards:
                    yield card.suite, card.category, card.outcome
    for _, item in errors:
        yield item.suite, item.category, "error"


def _baseline_view(baseline: BaselineSection | None, anchors: Mapping[str, str]) -> dict[str, Any] | None:
    """The `baseline` section of the results, with links from flipped items to their cards."""
    if baseline is None:
        return None
    suites = []
    for suite, comparison in baseline.suites.items():
        flips = {
            kind: [
                {**to_json_value(flip), "anchor": anchors.get(record_key(suite, flip.id))}
                for flip in getattr(comparison, kind)
            ]
            for kind in ("newly_undersafe", "newly_oversafe", "newly_fixed")
        }
        rates = [(rate, comparison.rates.rate(rate)) for rate in RATES]
        suites.append({"name": suite, "rates": rates, "flips": flips})
    return {**to_json_value(baseline), "suite_views": suites}


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
        finalize=bounded,
    )
    env.filters["pct"] = format_percent
    env.filters["metric"] = format_metric
    env.filters["css_pct"] = _css_percent
    return env


def bounded(value: Any) -> Any:
    """Every value a template writes: a plain string longer than MAX_EMBEDDED_CHARS is cut, with a
    visible marker saying how much was left out. Markup (the page's own HTML: rendered macros, the
    thumbnail stylesheet) is left whole; it is built from values that passed through here."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup) and len(value) > MAX_EMBEDDED_CHARS:
        left_out = len(value) - MAX_EMBEDDED_CHARS
        return f"{value[:MAX_EMBEDDED_CHARS]} … [{left_out} more characters not shown; see the results JSON]"
    return value


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


def render_html_report(results: Results, *, max_thumbnails: int = 2000, thumb_px: int = 160) -> str:
    """The report page as a string."""
    context = build_context(results, max_thumbnails=max_thumbnails, thumb_px=thumb_px)
    context["css"] = (HERE / "static" / "report.css").read_text(encoding="utf-8")
    context["js"] = (HERE / "static" / "report.js").read_text(encoding="utf-8")
    return template_environment().get_template("report.html.j2").render(context)


def write_html_report(
    results: Results, path: Path, *, max_thumbnails: int = 2000, thumb_px: int = 160
) -> Path:
    """Render the report of `results` to `path` (parent folders are created) and return it."""
    page = render_html_report(results, max_thumbnails=max_thumbnails, thumb_px=thumb_px)
    # Atomically, like the JSON: a run interrupted while writing leaves the last whole page.
    return write_text_atomic(page, Path(path))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the HTML report of a pytest-vlmsafety results file.")
    parser.add_argument("results", type=Path, help="vlmsafety-results.json")
    parser.add_argument("output", type=Path, help="HTML file to write")
    parser.add_argument("--max-thumbnails", type=int, default=2000)
    parser.add_argument("--thumb-px", type=int, default=160)
    args = parser.parse_args(argv)
    try:
        written = write_html_report(
            ResultsDocument.read(args.results), args.output, max_thumbnails=args.max_thumbnails, thumb_px=args.thumb_px
        )
    except VlmSafetyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
