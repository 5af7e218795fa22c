"""The results document, `vlmsafety-results.json`, as typed classes.

Every writer and reader of the file goes through `ResultsDocument`: the controller builds one,
the terminal summary, the HTML report and the pytest-html extras read its attributes, the
baseline loader and `replay:` parse files with `ResultsDocument.from_json`.

The classes are plain (stdlib) dataclasses; pydantic converts them to JSON values and back and
derives the published JSON Schema (`results.schema.json`, shipped beside this module), all from
their type annotations, so a new field (a nested dataclass, a Path, a tuple, a Literal, a None-able
value) needs no code here. To add a field: add it to its class with a default, regenerate the schema
(`python -m pytest_vlmsafety.output.document > pytest_vlmsafety/output/results.schema.json`) and bump
`SCHEMA_VERSION` only when an existing field changes meaning or type.

Reading is lenient about absent fields (an interrupted run's file may lack some: each takes
its default) and about keys no field names (ignored; the schema rejects them), and strict about
present values: JSON's types, no "1" for 1, no true for 1 (a whole number is taken for a float);
a wrong one is a DataError naming where it is (`suites.s.gate.status`, `items[3].id`) and what was
expected. Writing is strict JSON: a non-finite float is written as null, never as `NaN`; an int
stays an int, also in a float field.

Why pydantic over stdlib dataclasses rather than pydantic's own classes: `Record` travels between
xdist processes as plain data and is built once per item, and every module builds these objects
freely; as stdlib dataclasses they cost nothing to build and pydantic works only at the file's
boundary (`pydantic.TypeAdapter`, which returns instances of the classes themselves). What pydantic
does not do as this file needs is done on its core schema (`_adapt`): strict scalars with lax
dataclasses (its strict mode takes only instances for a dataclass), floats written as they are,
FLATTEN (ModelInfo's backend facts beside the common fields) and OMIT_NONE (`_shaped`). The text is
written with json.dumps: pydantic-core's own JSON writer formats some floats otherwise (1e-05 as
0.00001, 1.5e-07 as 1.5e-7), and a file must read the same as before for the same document.

Measured on 2 cores shared with other work (so ranges over runs; best of 5 in CPU time; a
20,000-item document of benchmarks/report_scale.py, 49.6 MB), the hand-written converter this
replaced against pydantic 2.14:
- to_json 770-990 -> 185-260 ms; from_json 1,140-1,490 -> 170-300 ms; ResultsDocument.read
  1,800-1,920 -> 690-800 ms (json.loads is ~350 of it); dumps 1,640-2,120 -> 1,120-1,410 ms
  (json.dumps, writing the text, is most of it);
- import: `pytest_vlmsafety.plugin` imports neither this module nor pydantic (the same 309 modules
  as before; tests/test_plugin_e2e.py checks it), as a pytest run without --vlm needs neither.
  Importing this module goes from 62-77 to 97-110 ms (pydantic itself: 37-44 ms), and the first
  conversion in a process builds ResultsDocument's schema (90-165 ms, once): costs of an active
  run only, next to loading a model.
Results files are byte-for-byte those the converter wrote (checked on runs of the sample suite,
with a baseline, samples and an audit, and on the test fixtures), also on pydantic 2.6 and 2.11.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import pydantic
import pydantic.json_schema
import pydantic_core
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from ..errors import DataError
from ..items import Record

SCHEMA_VERSION = "pytest-vlmsafety/results/1"
RESULTS_FILENAME = "vlmsafety-results.json"
REPORT_FILENAME = "vlmsafety-report.html"
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")

# The state of a gate. Enum-like strings rather than a bool, so that states can be added
# without changing the type of the field. Only "pass" passes:
# - "fail": a measured rate is over its maximum (or, for the baseline, a rate regressed);
# - "inconclusive": a gated rate could not be decided: none of its items was judged, the
#   suite has no item that counts towards any gated rate, or (`--safety-gate-on=interval`)
#   its 95% interval straddles the maximum;
# - "error": items could not be run (their outcome is `error`), or a baseline paired no item;
# - "interrupted": the run stopped before every collected item had run.
GateStatus = Literal["pass", "inconclusive", "fail", "error", "interrupted"]
# From least to most severe: a gate that has several reasons not to pass shows the most severe
# (an incomplete measurement before what the measured part says); `failures` lists every reason.
GATE_SEVERITY: tuple[GateStatus, ...] = ("pass", "inconclusive", "fail", "error", "interrupted")


def worst_status(statuses: Iterable[GateStatus]) -> GateStatus:
    """The most severe of `statuses` ("pass" for none)."""
    return max(statuses, key=GATE_SEVERITY.index, default="pass")


RATE_NAMES: tuple[str, str] = ("undersafety", "oversafety")

# Field metadata: `flatten` merges a dict field's keys into the enclosing object (an open set of
# backend-specific facts); `omit_none` leaves the key out when the value is None (see `_shaped`).
FLATTEN: Mapping[str, bool] = {"flatten": True}
OMIT_NONE: Mapping[str, bool] = {"omit_none": True}


# ----------------------------------------------------------------------------- run facts


@dataclass
class RunStats:
    """What a process did: counts and seconds, summed over workers for the run."""

    generations: int = 0
    cache_hits: int = 0
    generated_tokens: int = 0
    model_load_s: float = 0.0
    generation_s: float = 0.0
    judge_s: float = 0.0
    shards: int = 0

    def rounded(self) -> RunStats:
        return dataclasses.replace(
            self,
            model_load_s=round(self.model_load_s, 3),
            generation_s=round(self.generation_s, 3),
            judge_s=round(self.judge_s, 3),
        )

    def __add__(self, other: RunStats) -> RunStats:
        return RunStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})


@dataclass
class ModelInfo:
    """The model under test. Backends add their own facts (load time, weights hash, server...)
    as `details`, written beside the common fields."""

    spec: str | None = None
    id: str | None = None
    revision: str | None = None
    backend: str | None = None
    dtype: str | None = None
    device: str | None = None
    noise: bool = False
    details: dict[str, Any] = field(default_factory=dict, metadata=FLATTEN)


@dataclass
class GenerationSettings:
    """How the model under test decoded, and the system turn it was given (the model as it is
    deployed). The system prompt is the team's own text, stored as it is; readers escape it."""

    max_new_tokens: int | None = None  # None: each suite's own length
    batch_size: int | str = "auto"
    do_sample: bool = False
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None  # --vlm-seed; None: unseeded (or greedy)
    samples: int = 1  # responses per item; the worst sample decides an item
    system_prompt: str | None = None
    system_prompt_sha256: str | None = None


@dataclass
class GateSettings:
    mode: str = "rates"
    on: str = "point"
    max_undersafety: float | None = None
    max_oversafety: float | None = None
    # --max-unjudged: the share of open-ended items a suite may leave unjudged (None: not gated).
    max_unjudged: float | None = None

    def threshold(self, rate: str) -> float | None:
        return self.max_undersafety if rate == "undersafety" else self.max_oversafety


@dataclass
class Timings:
    model_load_s: float = 0.0
    generation_s: float = 0.0
    judge_s: float = 0.0


@dataclass
class WorkerSummary:
    """One process that ran items: an xdist worker (or the single process)."""

    worker_id: str | None = None
    device: str | None = None
    model: ModelInfo | None = None
    stats: RunStats = field(default_factory=RunStats)

    @property
    def shown_device(self) -> str | None:
        return self.device or (self.model.device if self.model else None)


@dataclass
class JudgePromptFacts:
    source: str | None = None
    sha256: str | None = None
    # The benchmark's own prompt: the reply is read the official way.
    official: bool = False


@dataclass
class JudgeCallFacts:
    """How one scheme's judge calls are made (its benchmark's official settings): the reply's
    token limit, the temperature (0: greedy), the system turn (None: none) and the user turn's
    order (`images-first` or `text-first`)."""

    max_new_tokens: int = 0
    temperature: float = 0.0
    system: str | None = None
    content_order: str = "images-first"


@dataclass
class JudgeFacts:
    """Which LLM judge can run and how it is pinned: published numbers moved when the model
    behind an unpinned API name changed."""

    judge: str | None = None
    used: bool = False
    model: str | None = None
    kind: str | None = None
    snapshot: str | None = None
    revision: str | None = None
    pinned: bool = True
    prompts: dict[str, JudgePromptFacts] = field(default_factory=dict)
    holisafe_unreadable: str | None = None
    # Per scheme, the call settings (`JudgeCallFacts`).
    calls: dict[str, JudgeCallFacts] = field(default_factory=dict)


@dataclass
class RunFacts:
    plugin_version: str | None = None
    started: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    model: ModelInfo = field(default_factory=ModelInfo)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    seed: int | None = None
    sample: int | None = None
    suites: list[str] = field(default_factory=list)
    judge: str | None = None
    judge_model: str | None = None
    judge_facts: JudgeFacts | None = None
    gate: GateSettings = field(default_factory=GateSettings)
    cache: str | None = None
    generations: int | None = None
    cache_hits: int | None = None
    timings: Timings = field(default_factory=Timings)
    workers: list[WorkerSummary] = field(default_factory=list)
    # True when the run stopped (Ctrl-C, -x, --maxfail) before every collected item had run:
    # the document holds the items that finished, `items_not_run` counts the others.
    interrupted: bool = False
    items_not_run: int = 0
    # Items of the run's suites that a selection (-k, -m, --lf, --deselect) left out: a run that
    # judged part of its suites is never passed as if it were whole (its gate is inconclusive).
    items_deselected: int = 0
    # What the run did other than asked, said once for the whole run (a judge that was replaced
    # by a rule for some items, a setting a server would not take): shown in the terminal and report.
    warnings: list[str] = field(default_factory=list)
    # Every option of the run as its config holds it, by concern (model, generation, judging, gate,
    # data, output: plugin/run_options.py), and under `suites` the registered suites' own options
    # by flag, as each suite sees them (suites/registry.py). `generation`, `gate`, `seed`, ... above
    # are the fields that results files had before it, kept for their readers.
    config: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- per suite


@dataclass
class RateSummary:
    """A failure rate: `count` of `total`, with its 95% Wilson interval (None without items)."""

    count: int = 0
    total: int = 0
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class Calibration:
    undersafety: RateSummary = field(default_factory=RateSummary)
    oversafety: RateSummary = field(default_factory=RateSummary)

    def rate(self, name: str) -> RateSummary:
        return self.undersafety if name == "undersafety" else self.oversafety


@dataclass
class CategorySummary:
    counts: dict[str, int] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)


@dataclass
class PairCounts:
    """Contrast pairs (see metrics.pair_summary)."""

    total: int = 0
    calibrated: int = 0
    refuses_both: int = 0
    answers_both: int = 0
    inverted: int = 0


@dataclass
class Disagreement:
    id: str = ""
    first: str = ""
    second: str = ""


@dataclass
class JudgeAgreement:
    """Two judges on the same responses (an LLM judge and the suite's rule)."""

    first_judge: str = ""
    second_judge: str = ""
    items: int = 0
    observed_agreement: float | None = None
    chance_agreement: float | None = None
    kappa: float | None = None
    disagreements: list[Disagreement] = field(default_factory=list)


@dataclass
class CorrectedRate:
    """A rate corrected for the judge's errors by a human audit (see audit.py): the estimate over
    the `total` auditable items of the rate, from `labelled` labels in the estimate, with its 95%
    interval, which includes the audit's uncertainty and spans every answer the `unaudited` items
    (in strata no label reached) could have."""

    total: int = 0
    labelled: int = 0
    unaudited: int = 0
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class CorrectedRates:
    undersafety: CorrectedRate | None = None
    oversafety: CorrectedRate | None = None

    def rate(self, name: str) -> CorrectedRate | None:
        return self.undersafety if name == "undersafety" else self.oversafety


@dataclass
class VerdictAgreement:
    """The judge against the reviewers on one verdict (refused, complied, other): of the
    `labelled` items (in the estimate) the judge gave this verdict, `confirmed` the human labelled
    the same (`neither` confirms `other`), with its 95% Wilson interval; `human` counts the labels."""

    verdict: str = ""
    items: int = 0
    labelled: int = 0
    confirmed: int = 0
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    human: dict[str, int] = field(default_factory=dict)


@dataclass
class SuiteAudit:
    """A suite's human audit: `labelled` items judged by a human label, `in_estimate` of them in
    their stratum's labelled prefix (the random sample the corrected rates rest on); `gated`
    when the gate decided on the corrected rates."""

    labelled: int = 0
    in_estimate: int = 0
    gated: bool = False
    agreement: list[VerdictAgreement] = field(default_factory=list)
    corrected: CorrectedRates = field(default_factory=CorrectedRates)
    notes: list[str] = field(default_factory=list)


@dataclass
class SuiteGate:
    """A suite's calibration gate. `passed` is `status == "pass"`; `failures` are every reason
    it did not pass, `notes` what the gate did not check (a rate without items of its kind)."""

    passed: bool = True
    status: GateStatus = "pass"
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # `passed` follows `status`; a file without a status (older than it) keeps its verdict.
        if not self.passed and self.status == "pass":
            self.status = "fail"
        self.passed = self.status == "pass"


# Official metrics are the benchmark's own: flat {name: fraction} or grouped {group: {name: fraction}}.
OfficialMetrics = dict[str, Any]


@dataclass
class SuiteResults:
    counts: dict[str, int] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    categories: dict[str, CategorySummary] = field(default_factory=dict)
    official: OfficialMetrics = field(default_factory=dict)
    # Why an official figure reads as it does (a reproduced quirk, a metric that needs another judge).
    official_notes: list[str] = field(default_factory=list)
    pairs: PairCounts = field(default_factory=PairCounts)
    judge_agreement: JudgeAgreement | None = None
    gate: SuiteGate = field(default_factory=SuiteGate)
    audit: SuiteAudit | None = field(default=None, metadata=OMIT_NONE)


# ----------------------------------------------------------------------------- baseline


@dataclass
class RateChangeSummary:
    compared: int = 0
    old_count: int = 0
    new_count: int = 0
    old_rate: float | None = None
    new_rate: float | None = None
    delta: float = 0.0
    fixed: int = 0
    broken: int = 0
    p_value: float = 1.0


@dataclass
class RateChanges:
    undersafety: RateChangeSummary = field(default_factory=RateChangeSummary)
    oversafety: RateChangeSummary = field(default_factory=RateChangeSummary)

    def rate(self, name: str) -> RateChangeSummary:
        return self.undersafety if name == "undersafety" else self.oversafety


@dataclass
class FlipEntry:
    id: str = ""
    old: str = ""
    new: str = ""


@dataclass
class BaselineSuite:
    paired: int = 0
    new_items: int = 0
    rates: RateChanges = field(default_factory=RateChanges)
    newly_undersafe: list[FlipEntry] = field(default_factory=list)
    newly_oversafe: list[FlipEntry] = field(default_factory=list)
    newly_fixed: list[FlipEntry] = field(default_factory=list)


@dataclass
class BaselineSection:
    path: str = ""
    model: str | None = None
    started: str | None = None
    max_regression: float | None = None
    alpha: float = 0.05
    suites: dict[str, BaselineSuite] = field(default_factory=dict)
    regressions: list[str] = field(default_factory=list)
    # The baseline gate: "fail" with regressions, "error" when no item of the run paired with
    # the baseline (it compared nothing); `failures` says why, `notes` names suites not compared.
    status: GateStatus = "pass"
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- audit


@dataclass
class AuditSection:
    """The run's human audit: the sample drawn with `--safety-audit` (`sample`: item keys, in
    the order to label them, written to `file`) and the labels read from `label_files`
    (`label_lines` filled lines; `labelled` items they judged; `warnings`: labels that judged
    nothing, and why)."""

    size: int | None = None
    seed: int = 0
    file: str | None = None
    sample: list[str] = field(default_factory=list)
    label_files: list[str] = field(default_factory=list)
    label_lines: int = 0
    labelled: int = 0
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- the document


@dataclass
class RunGate:
    """The run's verdict: every suite's gate and, with a baseline, the regression gate.
    `status` is the most severe of theirs (`interrupted` when the run stopped early);
    `passed` is `status == "pass"`."""

    passed: bool = True
    status: GateStatus = "pass"
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # `passed` follows `status`; a file without a status (older than it) keeps its verdict.
        if not self.passed and self.status == "pass":
            self.status = "fail"
        self.passed = self.status == "pass"


@dataclass
class ResultsDocument:
    schema: str = SCHEMA_VERSION
    run: RunFacts = field(default_factory=RunFacts)
    items: list[Record] = field(default_factory=list)
    suites: dict[str, SuiteResults] = field(default_factory=dict)
    gate: RunGate = field(default_factory=RunGate)
    baseline: BaselineSection | None = field(default=None, metadata=OMIT_NONE)
    audit: AuditSection | None = field(default=None, metadata=OMIT_NONE)

    def to_json(self) -> dict[str, Any]:
        """The document as JSON values (no NaN or infinity: those become null)."""
        data = to_json_value(self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_json(cls, data: Any) -> ResultsDocument:
        """Parse the JSON value of a results file; DataError on another schema or a wrong type."""
        if isinstance(data, ResultsDocument):
            return data
        if not isinstance(data, Mapping):
            raise DataError(f"expected a JSON object at the top, got {type(data).__name__}")
        if data.get("schema") != SCHEMA_VERSION:
            raise DataError(f"schema is {data.get('schema')!r}, expected {SCHEMA_VERSION!r}")
        return parse_as(ResultsDocument, data, "")

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def write(self, path: Path) -> Path:
        return write_text_atomic(self.dumps(), path)

    @classmethod
    def read(cls, path: Path) -> ResultsDocument:
        """Read a results file; DataError naming it when it is absent, not JSON or not ours."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"results file not found: {path}") from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        except RecursionError:
            raise DataError(f"{path}: JSON nested too deeply to read") from None
        try:
            return cls.from_json(data)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None


def write_text_atomic(text: str, path: Path) -> Path:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a results file is meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------- conversion

T = TypeVar("T")


def to_json_value(value: Any) -> Any:
    """Dataclasses to objects, tuples to lists, paths to strings, non-finite floats to null."""
    # warnings=False: a value of another type than its field's (an int in a `str` field) is written
    # as what it is, as json.dumps would, rather than warned about at the end of a run.
    return _converter(type(value)).serializer.to_python(value, mode="json", warnings=False)


def parse_as(cls: type[T], data: Any, where: str) -> T:
    """The `cls` (a class of this module, or Record) that `data` (a parsed JSON value) stands for;
    DataError naming the first wrong value's place under `where` and what was expected there."""
    try:
        return typing.cast(T, _converter(cls).validator.validate_python(data))
    except pydantic.ValidationError as exc:
        raise DataError(_problem(exc, data, where)) from None


class _Converter(NamedTuple):
    core_schema: CoreSchema
    validator: pydantic_core.SchemaValidator
    serializer: pydantic_core.SchemaSerializer


_CONVERTERS: dict[type, _Converter] = {}


def _converter(cls: type) -> _Converter:
    """pydantic's schema of `cls`, adapted to the file's rules (see `_adapt`); built on first use
    (90-165 ms for ResultsDocument, once per process)."""
    if cls not in _CONVERTERS:
        adapted = _adapt(pydantic.TypeAdapter(cls).core_schema)
        validator, serializer = pydantic_core.SchemaValidator(adapted), pydantic_core.SchemaSerializer(adapted)
        _CONVERTERS[cls] = _Converter(adapted, validator, serializer)
    return _CONVERTERS[cls]


def _flattened_field(cls: type) -> str | None:
    """The FLATTEN field of the dataclass `cls`, if it has one."""
    names = [f.name for f in dataclasses.fields(cls) if f.metadata.get("flatten")]
    if len(names) > 1:
        raise TypeError(f"{cls.__name__}: fields {names} are all FLATTEN; a class can spread one dict field")
    return names[0] if names else None


def _omitted_fields(cls: type) -> frozenset[str]:
    """The OMIT_NONE fields of the dataclass `cls`."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("omit_none"))


# Scalars and containers are strict (JSON's types, no "1" for 1, no true for 1, no tuple for a list);
# dataclasses stay lax, so that they are built from objects. pydantic's strict mode would make both
# strict: it takes only instances for a dataclass given Python values.
_STRICT_KINDS = frozenset({"str", "int", "float", "bool", "list", "dict"})
# Keys of a core schema whose values are not schemas to adapt.
_NOT_SCHEMAS = frozenset({"cls", "config", "default", "metadata", "ref", "serialization"})


def _adapt(node: Any) -> Any:
    """A copy of the core schema `node` with strict scalars, floats written as they are (an int
    in a float field stays an int, as json.dumps writes it) and the FLATTEN and OMIT_NONE fields
    of dataclasses written (and read) as their metadata says."""
    if isinstance(node, (list, tuple)):
        return type(node)(_adapt(item) for item in node)
    if not isinstance(node, dict):
        return node
    schema = {key: value if key in _NOT_SCHEMAS else _adapt(value) for key, value in node.items()}
    kind = schema.get("type")
    if kind in _STRICT_KINDS:
        schema["strict"] = True
    if kind == "float":
        schema["serialization"] = core_schema.simple_ser_schema("any")
    if kind == "dataclass" and (_flattened_field(schema["cls"]) or _omitted_fields(schema["cls"])):
        return _shaped(schema)
    return schema


def _shaped(schema: dict[str, Any]) -> CoreSchema:
    """The dataclass `schema` with its FLATTEN dict field read from, and written as, the keys of
    the object that no other field names, and its OMIT_NONE fields left out when None. Done here
    rather than with pydantic's field options, which pydantic before 2.12 or so lacks or ignores on
    a stdlib dataclass. Writing picks the fields in Python and leaves their values to the fields'
    own serializers (`returned`): a wrap serializer would serialize the object, then walk the
    result again, which costs the whole document at its top."""
    cls = schema["cls"]
    names = [f.name for f in dataclasses.fields(cls)]
    flattened, omitted = _flattened_field(cls), _omitted_fields(cls)

    def gather(data: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        if isinstance(data, Mapping):
            spread_keys = {key: value for key, value in data.items() if key not in names}
            data = {**{key: value for key, value in data.items() if key in names}, flattened: spread_keys}
        return handler(data)

    def shape(value: Any) -> Any:
        if not isinstance(value, cls):
            return value  # another type than its field's: written as what it is (see to_json_value)
        out: dict[str, Any] = {}
        for name in names:
            item = getattr(value, name)
            if name == flattened:
                for extra_key, extra in item.items():
                    out.setdefault(str(extra_key), extra)  # a common field of the same name wins
            elif not (item is None and name in omitted):
                out[name] = item
        return out

    returned = core_schema.typed_dict_schema(
        {
            field["name"]: core_schema.typed_dict_field(field["schema"], required=False)
            for field in schema["schema"]["fields"]
            if field["name"] != flattened
        },
        extra_behavior="allow" if flattened else "ignore",
    )
    serialization = core_schema.plain_serializer_function_ser_schema(shape, return_schema=returned)
    if flattened is None:
        return typing.cast(CoreSchema, {**schema, "serialization": serialization})
    # The wrapper takes the dataclass's `ref`, so that other schemas refer to the shaped form.
    inner = typing.cast(CoreSchema, {key: value for key, value in schema.items() if key != "ref"})
    return core_schema.no_info_wrap_validator_function(
        gather, inner, ref=schema.get("ref"), serialization=serialization
    )


# pydantic's error types, as what the value should have been.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "dataclass_type": "an object",
}


def _problem(exc: pydantic.ValidationError, data: Any, where: str) -> str:
    """pydantic's first error as one line: where the value is (`suites.s.gate.status`,
    `items[3].id`) and what it should be."""
    error = exc.errors(include_url=False)[0]
    path, value = where, data
    for step in error["loc"]:
        # A step past the wrong value, or one that is no key of it, names a member of a union
        # (`int` of `int | str`).
        if value is error["input"]:
            break
        if isinstance(value, Mapping) and step in value:
            path, value = f"{path}.{step}".lstrip("."), value[step]
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            path, value = f"{path}[{step}]", value[step]
    path = path or "results"
    if error["type"] == "literal_error":
        return f"{path}: {error['input']!r} is not one of {error['ctx']['expected']}"
    expected = _EXPECTED.get(error["type"])
    if expected is None:
        return f"{path}: {error['msg']} (got {error['input']!r:.80})"
    return f"{path}: expected {expected}, got {type(error['input']).__name__}"


# ----------------------------------------------------------------------------- JSON Schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `vlmsafety-results.json`, derived from the classes."""
    root = _ResultsJsonSchema().generate(_converter(ResultsDocument).core_schema, mode="validation")
    definitions = root.pop("$defs", {})
    root["properties"]["schema"] = {"const": SCHEMA_VERSION}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/pytest-vlmsafety/pytest-vlmsafety/results.schema.json",
        "title": "pytest-vlmsafety results (vlmsafety-results.json)",
        "description": f"Written by pytest-vlmsafety; 'schema' is always {SCHEMA_VERSION!r}.",
        **{key: value for key, value in root.items() if key not in ("description", "additionalProperties")},
        "required": ["schema", "run", "items", "suites", "gate"],
        "additionalProperties": root["additionalProperties"],
        "$defs": dict(sorted(definitions.items())),
    }


class _ResultsJsonSchema(pydantic.json_schema.GenerateJsonSchema):
    """pydantic's JSON Schema, with objects closed (a key no field names is a mistake in a file,
    which the reader would ignore) except where a FLATTEN field takes the other keys, and without
    the titles pydantic derives from names."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def sort(self, value: JsonSchemaValue, parent_key: str | None = None) -> JsonSchemaValue:
        return value  # keys in the order they are written (`type` before `properties`), not sorted

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        generated = super().dataclass_schema(schema)
        flattened = _flattened_field(schema["cls"])
        properties = {name: value for name, value in generated["properties"].items() if name != flattened}
        rest = {key: value for key, value in generated.items() if key not in _SET_BELOW}
        doc = schema["cls"].__doc__
        # The docstring, on one line; not the signature that dataclass writes for a class without one.
        if doc and not doc.startswith(f"{schema['cls'].__name__}("):
            rest["description"] = " ".join(doc.split())
        return {"type": "object", "properties": properties, **rest, "additionalProperties": flattened is not None}


_SET_BELOW = frozenset({"title", "description", "properties", "type", "additionalProperties"})


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
