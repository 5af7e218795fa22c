"""What every suite provides, and the helpers loaders share.

A suite knows its benchmark's native data layout, turns it into `SafetyItem`s, names the judge
that its paper uses, and computes its official metrics from the records of a run. Suites are
plain Python: they can be loaded and tested without pytest.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, ClassVar

from ..errors import DataError
from ..items import Record, SafetyItem
from ..judges.base import LLM_JUDGE_NAME
from ..judges.schemes import JudgeScheme, scheme_for_task

# Official metrics are fractions, flat (`{"RR": 0.01}`) or grouped by subset or variant
# (`{"image": {"SRA_u": 0.9, ...}, "text/txt": {...}}`).
OfficialMetrics = dict[str, Any]


class Suite(ABC):
    """A benchmark: items from its native layout, its official judge, its official metrics."""

    name: ClassVar[str]
    # Selectable subsets, as given after the colon: `--safety-suite=vscbench:text/figstep`.
    subsets: ClassVar[tuple[str, ...]] = ()
    # Judge used when the user passes no `--safety-judge` (registry name, see judges/).
    default_judge: ClassVar[str] = "refusal"
    # Other judges of the suite's own that `--safety-judge` may name for its choice and label
    # items (UnsafeConcepts: its rule parsers, instead of the default classifiers).
    own_judges: ClassVar[tuple[str, ...]] = ()
    # The LLM judge's schemes of the benchmark's own (prompt, reply schema, reply reading,
    # official mapping: judges/schemes.py); none: its items are judged by task.
    judge_schemes: ClassVar[tuple[JudgeScheme, ...]] = ()
    # Whether the official code sends an API model (OpenAI chat) the prompt text before the
    # image; our default, and every local model's chat template, puts the images first.
    api_text_first: ClassVar[bool] = False
    # The suite's own options for this run, by flag (`SuiteOption`s of its registration, set by
    # `resolve_suite`): empty for a suite that has none.
    options: Mapping[str, Any] = MappingProxyType({})

    @abstractmethod
    def load(self, data_root: Path | None, subset: str | None = None) -> list[SafetyItem]:
        """All items of the suite (or of `subset`), in a stable order."""

    def judge_name_for(self, item: SafetyItem, requested: str | None) -> str:
        """The judge for one item. Choice and label items always go through the suite's own
        parser (a refusal judge cannot read an option letter), unless an LLM judge is asked for."""
        if requested in (None, "auto"):
            return self.default_judge
        if item.task != "open" and requested != LLM_JUDGE_NAME and requested not in self.own_judges:
            return self.default_judge
        return requested

    @classmethod
    def judge_scheme_for(cls, item: SafetyItem) -> JudgeScheme:
        """The LLM judge's scheme for one item: the suite's own, else the one of its task."""
        return cls.judge_schemes[0] if cls.judge_schemes else scheme_for_task(item)

    def official_metrics(self, records: Sequence[Record]) -> OfficialMetrics:
        """The paper's metrics under their official names, as fractions. Absent when a metric
        needs something the run did not have (never invented)."""
        return {}

    def official_notes(self, records: Sequence[Record]) -> list[str]:
        """Plain-text notes that belong next to the official metrics: why one is absent, or
        why it is not comparable with the paper's table. Shown in the terminal and the report,
        stored as `suites.<name>.official_notes` in the results."""
        return []

    def expected_folder(self, data_root: Path | None) -> str:
        """Where this suite's data should be, for messages (`DIR/<name>` when no root was given)."""
        return str(Path(data_root) / self.name) if data_root is not None else f"DIR/{self.name}"

    def data_dir(self, data_root: Path | None, *, hint: str) -> Path:
        """`<data_root>/<suite name>/`, or a DataError naming the expected path and `hint`
        (what to download and how)."""
        if data_root is None:
            raise DataError(
                f"suite {self.name!r} needs its data: pass --safety-data DIR with the data in DIR/{self.name}/. {hint}"
            )
        path = Path(data_root) / self.name
        if not path.is_dir():
            raise DataError(f"suite {self.name!r}: no data folder at {path}. {hint}")
        return path

    def check_subset(self, subset: str | None) -> None:
        if subset is not None and subset not in self.subsets:
            accepted = ", ".join(f"{self.name}:{s}" for s in self.subsets) or "(none)"
            raise DataError(f"suite {self.name!r} has no subset {subset!r}; accepted: {accepted}")


def api_text_first(suite_name: str) -> bool:
    """Whether the registered suite `suite_name` sends API models the text before the image."""
    from .registry import registered_suite_class

    suite_class = registered_suite_class(suite_name)
    return suite_class is not None and suite_class.api_text_first


def resolve_inside(root: Path, relative: str, *, what: str) -> Path:
    """Resolve a path from a data file against `root`, refusing absolute paths and `..`.

    Data files are untrusted input: an image path must not read outside the data root.
    `what` names the row for the message (for example `holisafe_bench.json item 17`).
    """
    if not relative or not isinstance(relative, str):
        raise DataError(f"{what}: empty or non-text image path {relative!r}")
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or Path(relative).is_absolute() or ".." in posix.parts:
        raise DataError(f"{what}: image path {relative!r} must be relative to {root} without '..'")
    resolved = (root / Path(*posix.parts)).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(f"{what}: image path {relative!r} resolves outside {root}")
    return resolved


def text_field(row: Mapping[str, Any], field: str, where: str) -> str:
    """A record's required text field, as written; a DataError naming `where` and the field when
    it is missing, not text, or blank."""
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {field!r} must be non-empty text, got {value!r}")
    return value


def require_file(path: Path, *, hint: str) -> Path:
    if not path.is_file():
        raise DataError(f"expected file not found: {path}. {hint}")
    return path


def _decode_line(path: Path, number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
            "save the file as UTF-8"
        ) from None


def _json_loads(text: str, where: str) -> Any:
    """json.loads, with input nested too deeply for the parser's recursion (hostile or broken data)
    as a DataError naming `where` instead of a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line number, object) for each non-blank line, with a DataError naming the line on bad JSON
    or text that is not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = _decode_line(path, number, raw)
            if not line.strip():
                continue
            try:
                row = _json_loads(line, f"{path}:{number}")
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield number, row


def read_json(path: Path) -> Any:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _decode_line(path, raw[: exc.start].count(b"\n") + 1, raw[raw.rfind(b"\n", 0, exc.start) + 1 :])
        raise  # pragma: no cover - _decode_line raised a DataError for the line
    try:
        return _json_loads(text, str(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
