"""`--vlm=replay:FILE`: responses recorded earlier instead of a model.

Accepted files:
- this plugin's own `vlmsafety-results.json` (its `items`, each with `suite`, `id`, `response`);
- JSON Lines, one `{"id": ..., "response": ...}` per line (`suite` optional);
- a HoliSafe-Bench prediction file: a JSON list of the benchmark's records, each with `id` and
  `prediction`.
An item with no recorded response becomes an error item, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Backend, Generation, GenerationRequest, ProgressCallback


def _rows_from_file(path: Path) -> tuple[str, list[Mapping[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return "results", data["items"]
    if isinstance(data, list):
        return "holisafe-predictions", data
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
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
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping) or "id" not in row:
            raise ConfigError(f"--vlm=replay:{path}: record {number} has no 'id'")
        value = row.get(field)
        if value is None:
            continue  # an item without a response: reported as an error item when it is run
        if not isinstance(value, str):
            raise ConfigError(f"--vlm=replay:{path}: record {number} ('id' {row['id']!r}): {field!r} is not text")
        responses[(row.get("suite"), str(row["id"]))] = value
    return fmt, responses


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format, self.responses = read_recorded_responses(path)
        self.by_id = {item_id: text for (_, item_id), text in self.responses.items()}
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

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None, batch_size: int | None = None
    ) -> list[Generation]:
        out = []
        for request in requests:
            text = self.lookup(request)
            out.append(
                Generation(text=text)
                if text is not None
                else Generation.failed(f"no recorded response for item {request.item_id!r} in {self.path}")
            )
        if progress:
            progress(list(enumerate(out)))
        return out
