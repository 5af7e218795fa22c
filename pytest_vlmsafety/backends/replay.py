"""`--vlm=replay:FILE`: responses recorded earlier instead of a model.

Accepted files:
- this plugin's own `vlmsafety-results.json` (its `items`, each with `suite`, `id`, `response`);
- JSON Lines, one `{"id": ..., "response": ...}` per line (`suite` optional);
- a HoliSafe-Bench prediction file: a JSON list of the benchmark's records, each with `id` and
  `prediction`.
An item with no recorded response becomes an error item, never silently dropped. A file that
records one item twice is refused, naming the id: which of two responses to score is not ours to
guess.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..document import ResultsDocument
from ..errors import ConfigError, DataError
from ..text import printable
from .base import Backend, Generation, GenerationRequest, ProgressCallback


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"--vlm=replay:{path}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: JSON nested too deeply to read; this is not a file of responses") from None


def _rows_from_file(path: Path) -> tuple[str, list[Mapping[str, Any]]]:
    text = _read_text(path)
    try:
        data = _loads(text, f"--vlm=replay:{path}")
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        try:
            items = ResultsDocument.from_json(data).items
        except DataError as exc:
            raise ConfigError(f"--vlm=replay:{path}: not a results file of this plugin: {exc}") from None
        return "results", [{"suite": item.suite, "id": item.id, "response": item.response} for item in items]
    if isinstance(data, list):
        return "holisafe-predictions", data
    rows: list[Mapping[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = _loads(line, f"--vlm=replay:{path}: line {number}")
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--vlm=replay:{path}: line {number} is not valid JSON ({exc.msg}); expected a results JSON, "
                "a JSON list of HoliSafe predictions, or JSON Lines of {\"id\": ..., \"response\": ...}"
            ) from None
        if not isinstance(row, dict):
            raise ConfigError(f"--vlm=replay:{path}: line {number} is not a JSON object")
        rows.append(row)
    return "jsonl", rows


def read_recorded_responses(path: Path) -> tuple[str, dict[tuple[str | None, str], str]]:
    """(format, {(suite or None, item id): response})."""
    fmt, rows = _rows_from_file(path)
    field = "prediction" if fmt == "holisafe-predictions" else "response"
    responses: dict[tuple[str | None, str], str] = {}
    first_record: dict[tuple[str | None, str], int] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping) or "id" not in row:
            raise ConfigError(f"--vlm=replay:{path}: record {number} has no 'id'")
        key = (row.get("suite"), str(row["id"]))
        if key in first_record:
            suite = f" of suite {printable(key[0])!r}" if key[0] is not None else ""
            raise ConfigError(
                f"--vlm=replay:{path}: records {first_record[key]} and {number} are both item "
                f"{printable(key[1])!r}{suite}; keep one response per item"
            )
        first_record[key] = number
        value = row.get(field)
        if value is None:
            continue  # an item without a response: reported as an error item when it is run
        if not isinstance(value, str):
            raise ConfigError(f"--vlm=replay:{path}: record {number} ('id' {row['id']!r}): {field!r} is not text")
        responses[key] = value
    return fmt, responses


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format, self.responses = read_recorded_responses(path)
        # The fallback by id alone (a file without suites, or of another suite name) only for ids
        # recorded once: with two suites' responses for one id, which one is meant is unknown.
        suites_of_id: dict[str, int] = {}
        for _, item_id in self.responses:
            suites_of_id[item_id] = suites_of_id.get(item_id, 0) + 1
        self.ambiguous_ids = {item_id for item_id, count in suites_of_id.items() if count > 1}
        self.by_id = {
            item_id: text for (_, item_id), text in self.responses.items() if item_id not in self.ambiguous_ids
        }
        self.file_hash = hashlib.sha256(path.read_bytes()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "spec": f"replay:{self.path}",
            "id": str(self.path),
            "revision": None,
            "weights_hash": self.file_hash,
            "backend": self.name,
            "format": self.format,
            "dtype": None,
            "device": None,
            "noise": False,
        }

    def lookup(self, request: GenerationRequest) -> str | None:
        found = self.responses.get((request.suite, request.item_id))
        return found if found is not None else self.by_id.get(request.item_id)

    def _missing(self, request: GenerationRequest) -> str:
        if request.item_id in self.ambiguous_ids:
            return (
                f"no recorded response for item {request.item_id!r} of suite {request.suite!r} in {self.path}, "
                "and several suites there record that id"
            )
        return f"no recorded response for item {request.item_id!r} in {self.path}"

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        out = []
        for request in requests:
            text = self.lookup(request)
            out.append(
                Generation(text=text)
                if text is not None
                else Generation.failed(self._missing(request))
            )
        if progress:
            progress(list(enumerate(out)))
        return out
