"""User suites written as JSONL files: one safety item a line.

A line is a JSON object with the required fields `id`, `prompt`, `expected` (`refuse` or
`comply`) and `category`, and the optional fields `images` (paths relative to the JSONL file's
folder), `pair`, `subset`, `max_new_tokens` and `meta`. Anything else is refused, so that a
misspelt field name (`expect`, `image`) fails the load instead of being silently dropped.

An image path that escapes the folder is a load error; an image file that does not exist is not:
the run reports that one item as an error, naming the file, and the other items still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..errors import DataError
from ..items import EXPECTED_VALUES, MetaValue, SafetyItem
from .base import Suite, read_jsonl, require_file, resolve_inside

REQUIRED_FIELDS: tuple[str, ...] = ("id", "prompt", "expected", "category")
OPTIONAL_FIELDS: tuple[str, ...] = ("images", "pair", "subset", "max_new_tokens", "meta")
ACCEPTED_FIELDS: tuple[str, ...] = REQUIRED_FIELDS + OPTIONAL_FIELDS

FORMAT_HINT = (
    'one JSON object a line, e.g. {"id": "knife-01-unsafe", "prompt": "...", "expected": "refuse", '
    '"category": "weapons", "images": ["images/knife.png"]}'
)


class _Row:
    """One line of a JSONL suite file, with the location every message must name."""

    def __init__(self, path: Path, line: int, data: Mapping[str, Any]) -> None:
        self.path = path
        self.line = line
        self.data = data

    def error(self, field: str, problem: str) -> DataError:
        return DataError(f"{self.path}:{self.line}: field {field!r}: {problem}")

    def has(self, field: str) -> bool:
        # JSON null counts as absent for optional fields: writers often emit `"pair": null`.
        return self.data.get(field) is not None


def _check_field_names(row: _Row) -> None:
    for field in row.data:
        if field not in ACCEPTED_FIELDS:
            raise row.error(field, f"unknown field; accepted fields: {', '.join(ACCEPTED_FIELDS)}")
    for field in REQUIRED_FIELDS:
        if field not in row.data:
            raise row.error(field, f"missing; every line needs {', '.join(REQUIRED_FIELDS)}")


def _non_empty_text(row: _Row, field: str) -> str:
    value = row.data[field]
    if not isinstance(value, str) or not value.strip():
        raise row.error(field, f"{value!r} is not accepted; give a non-empty string")
    return value


def _expected(row: _Row) -> str:
    value = row.data["expected"]
    if value not in EXPECTED_VALUES:
        raise row.error("expected", f"{value!r} is not accepted; give one of {', '.join(EXPECTED_VALUES)}")
    return str(value)


def _images(row: _Row, folder: Path) -> tuple[Path, ...]:
    if not row.has("images"):
        return ()
    value = row.data["images"]
    if not isinstance(value, list):
        raise row.error("images", f"{value!r} is not accepted; give a list of paths relative to {folder}")
    where = f"{row.path}:{row.line}: field 'images'"
    # resolve_inside refuses absolute paths and `..`: a suite file must not read outside its folder.
    return tuple(resolve_inside(folder, relative, what=where) for relative in value)


def _optional_text(row: _Row, field: str, default: str | None) -> str | None:
    if not row.has(field):
        return default
    value = row.data[field]
    if not isinstance(value, str):
        raise row.error(field, f"{value!r} is not accepted; give a string")
    return value


def _max_new_tokens(row: _Row) -> int | None:
    if not row.has("max_new_tokens"):
        return None
    value = row.data["max_new_tokens"]
    # bool is an int subclass in Python; `true` tokens is surely a mistake.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise row.error("max_new_tokens", f"{value!r} is not accepted; give a positive integer")
    return value


def _meta(row: _Row) -> dict[str, MetaValue]:
    if not row.has("meta"):
        return {}
    value = row.data["meta"]
    if not isinstance(value, dict):
        raise row.error("meta", f"{value!r} is not accepted; give an object of plain values")
    for key, entry in value.items():
        if entry is not None and not isinstance(entry, (str, int, float, bool)):
            raise row.error(
                "meta",
                f"key {key!r} holds {type(entry).__name__} {entry!r}; meta values must be "
                "strings, numbers, booleans or null",
            )
    return dict(value)


def _item_from_row(row: _Row, suite_name: str) -> SafetyItem:
    _check_field_names(row)
    return SafetyItem(
        id=_non_empty_text(row, "id"),
        suite=suite_name,
        category=_non_empty_text(row, "category"),
        prompt=_non_empty_text(row, "prompt"),
        expected=_expected(row),  # type: ignore[arg-type]  # checked against EXPECTED_VALUES
        images=_images(row, row.path.parent),
        subset=_optional_text(row, "subset", "") or "",
        pair=_optional_text(row, "pair", None),
        meta=_meta(row),
        max_new_tokens=_max_new_tokens(row),
    )


def load_jsonl_items(path: Path, suite_name: str) -> list[SafetyItem]:
    """The items of a JSONL suite file, in file order, or a DataError naming the bad line."""
    path = Path(path)
    require_file(path, hint=f"A JSONL suite file holds {FORMAT_HINT}.")
    items: list[SafetyItem] = []
    first_line_of_id: dict[str, int] = {}
    for line, data in read_jsonl(path):
        row = _Row(path, line, data)
        item = _item_from_row(row, suite_name)
        if item.id in first_line_of_id:
            raise row.error(
                "id",
                f"{item.id!r} is already used on line {first_line_of_id[item.id]}; ids must be unique",
            )
        first_line_of_id[item.id] = line
        items.append(item)
    if not items:
        raise DataError(f"{path}: no items; a JSONL suite file holds {FORMAT_HINT}")
    return items


class JsonlSuite(Suite):
    """A suite from the user's own JSONL file (`--safety-suite=path/to/file.jsonl`)."""

    name: ClassVar[str] = "jsonl"
    subsets: ClassVar[tuple[str, ...]] = ()
    default_judge: ClassVar[str] = "refusal"

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = Path(path)
        # Each file is its own suite, so the name lives on the instance, not the class.
        self.name = name or self.path.stem  # type: ignore[misc]

    def load(self, data_root: Path | None, subset: str | None = None) -> list[SafetyItem]:
        # The file names its own images relative to itself; --safety-data plays no part.
        self.check_subset(subset)
        return load_jsonl_items(self.path, self.name)
