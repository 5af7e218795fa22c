"""`--vlm=replay:FILE`: responses recorded earlier instead of a model.

Accepted files:
- this plugin's own `vlmsafety-results.json` (its `items`, each with `suite`, `id`, `response`);
- JSON Lines, one `{"id": ..., "response": ...}` per line (`suite` optional);
- a HoliSafe-Bench prediction file: a JSON list of the benchmark's records, each with `id` and
  `prediction`.
An item with no recorded response becomes an error item, never silently dropped. A file that
records one item twice is refused, naming the id: which of two responses to score is not ours to
guess.

Replay reproduces what was recorded, or refuses:
- a record that names its suite answers only an item of that suite; the fallback by id alone is
  for records without a suite (hand-written JSON Lines, HoliSafe predictions);
- a record that says which question it answered (a results file's `prompt` and `images`, or
  those keys in a JSON Lines record) answers only that question: an item whose prompt or image
  file names differ is an error item (the suite changed, or the file is another suite's);
- a question of the `vlm` fixture is answered by the record of the test that asked it when that
  record answered this question; else (a module fixture's `ask_many`) by the one response the
  file records for this prompt and these images, and refused when records disagree;
- a results file of a `--vlm-samples` run (several responses an item) is refused at start-up:
  one response an item cannot reproduce the worst case over the samples.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..output.document import ResultsDocument
from ..text import printable
from .base import Backend, Generation, GenerationRequest, ProgressCallback, is_question


@dataclass(frozen=True)
class RecordedResponse:
    """One recorded response, with the question it answered when the file says."""

    text: str
    number: int  # the record's place in the file, for messages
    suite: str | None
    item_id: str
    prompt: str | None = None
    image_names: tuple[str, ...] | None = None

    def answers(self, request: GenerationRequest) -> bool:
        """Whether this record answered the request's question, as far as it says: the same
        prompt, and images of the same file names (a results file keeps absolute paths, which
        differ when the data moved)."""
        if self.prompt is not None and self.prompt != request.prompt:
            return False
        return self.image_names is None or self.image_names == image_names(request.images)


def image_names(paths: Sequence[str | Path]) -> tuple[str, ...]:
    return tuple(Path(path).name for path in paths)


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
        rows: list[Mapping[str, Any]] = []
        for raw, item in zip(data["items"], items, strict=True):
            if len(item.responses) > 1:
                raise ConfigError(
                    f"--vlm=replay:{path}: item {printable(item.id)!r} of suite {printable(item.suite)!r} records "
                    f"{len(item.responses)} samples (--vlm-samples); a replay gives one response an item, so it "
                    "cannot reproduce the worst case over the samples: rerun the model with --vlm-samples"
                )
            row: dict[str, Any] = {"suite": item.suite, "id": item.id, "response": item.response}
            # Only what the file states: a hand-written results file may leave the question out.
            if isinstance(raw, dict) and "prompt" in raw:
                row["prompt"] = item.prompt
            if isinstance(raw, dict) and "images" in raw:
                row["images"] = list(item.images)
            rows.append(row)
        return "results", rows
    if isinstance(data, list):
        return "holisafe-predictions", data
    rows = []
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


def read_recorded_responses(path: Path) -> tuple[str, dict[tuple[str | None, str], RecordedResponse]]:
    """(format, {(suite or None, item id): recorded response})."""
    fmt, rows = _rows_from_file(path)
    field = "prediction" if fmt == "holisafe-predictions" else "response"
    responses: dict[tuple[str | None, str], RecordedResponse] = {}
    first_record: dict[tuple[str | None, str], int] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping) or "id" not in row:
            raise ConfigError(f"--vlm=replay:{path}: record {number} has no 'id'")
        suite = row.get("suite")
        if suite is not None and not isinstance(suite, str):
            raise ConfigError(f"--vlm=replay:{path}: record {number} ('id' {row['id']!r}): 'suite' is not text")
        key = (suite, str(row["id"]))
        if key in first_record:
            named = f" of suite {printable(key[0])!r}" if key[0] is not None else ""
            raise ConfigError(
                f"--vlm=replay:{path}: records {first_record[key]} and {number} are both item "
                f"{printable(key[1])!r}{named}; keep one response per item"
            )
        first_record[key] = number
        value = row.get(field)
        if value is None:
            continue  # an item without a response: reported as an error item when it is run
        if not isinstance(value, str):
            raise ConfigError(f"--vlm=replay:{path}: record {number} ('id' {row['id']!r}): {field!r} is not text")
        prompt = row.get("prompt") if fmt != "holisafe-predictions" else None
        images = row.get("images") if fmt != "holisafe-predictions" else None
        if prompt is not None and not isinstance(prompt, str):
            raise ConfigError(f"--vlm=replay:{path}: record {number} ('id' {row['id']!r}): 'prompt' is not text")
        if images is not None and (
            not isinstance(images, list) or not all(isinstance(image, str) for image in images)
        ):
            raise ConfigError(
                f"--vlm=replay:{path}: record {number} ('id' {row['id']!r}): 'images' is not a list of paths"
            )
        responses[key] = RecordedResponse(
            value, number, suite, key[1], prompt, image_names(images) if images is not None else None
        )
    return fmt, responses


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format, self.responses = read_recorded_responses(path)
        # The fallback by id alone, for records that name no suite, and only for ids recorded once.
        suites_of_id: dict[str, int] = {}
        for _, item_id in self.responses:
            suites_of_id[item_id] = suites_of_id.get(item_id, 0) + 1
        self.ambiguous_ids = {item_id for item_id, count in suites_of_id.items() if count > 1}
        self.by_id = {
            item_id: recorded
            for (suite, item_id), recorded in self.responses.items()
            if suite is None and item_id not in self.ambiguous_ids
        }
        # Records that say which question they answered, by that question: for the questions a
        # fixture asks on behalf of no single test.
        self.by_question: dict[tuple[str, tuple[str, ...] | None], list[RecordedResponse]] = {}
        for recorded in self.responses.values():
            if recorded.prompt is not None:
                self.by_question.setdefault((recorded.prompt, recorded.image_names), []).append(recorded)
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
        return self.answer(request).text

    def answer(self, request: GenerationRequest) -> Generation:
        if is_question(request):
            return self._answer_question(request)
        found = self.responses.get((request.suite, request.item_id)) or self.by_id.get(request.item_id)
        if found is None:
            return Generation.failed(self._missing(request))
        if not found.answers(request):
            return Generation.failed(self._another_question(found, request, f"item {request.item_id!r}"))
        return Generation(text=found.text)

    def _answer_question(self, request: GenerationRequest) -> Generation:
        """A question of the `vlm` fixture: the asking test's record when it answered this
        question, else the one response recorded for this question."""
        asked_by = f"question {shorten(request.prompt)!r}"
        if request.asked_by is not None:
            suite, case_id = request.asked_by
            asked_by += f" of test {case_id!r} (suite {suite!r})"
            found = self.responses.get((suite, case_id)) or self.by_id.get(case_id)
            if found is not None and found.answers(request):
                return Generation(text=found.text)
        names = image_names(request.images)
        keys = ((request.prompt, names), (request.prompt, None))  # images recorded, or not said
        matching = [recorded for key in keys for recorded in self.by_question.get(key, [])]
        texts = {recorded.text for recorded in matching}
        if len(texts) == 1:
            return Generation(text=matching[0].text)
        if texts:
            numbers = ", ".join(str(recorded.number) for recorded in sorted(matching, key=lambda r: r.number))
            return Generation.failed(
                f"records {numbers} of {self.path} answer the {asked_by} differently, and which one was this "
                "test's is not known; ask it in the test itself, or rerun the model"
            )
        return Generation.failed(f"no recorded response for the {asked_by} in {self.path}")

    def _another_question(self, found: RecordedResponse, request: GenerationRequest, what: str) -> str:
        recorded = (
            f"prompt {shorten(found.prompt)!r}" if found.prompt is not None and found.prompt != request.prompt
            else f"images {', '.join(found.image_names or ()) or 'none'}"
        )
        asked = (
            f"prompt {shorten(request.prompt)!r}" if found.prompt is not None and found.prompt != request.prompt
            else f"images {', '.join(image_names(request.images)) or 'none'}"
        )
        return (
            f"record {found.number} of {self.path} answered another question than {what} of suite "
            f"{request.suite!r} asks (it recorded {recorded}; the item has {asked}): replay answers only the "
            "question it recorded; replay a file of this suite as it is now, or rerun the model"
        )

    def _missing(self, request: GenerationRequest) -> str:
        if request.item_id in self.ambiguous_ids:
            return (
                f"no recorded response for item {request.item_id!r} of suite {request.suite!r} in {self.path}, "
                "and several suites there record that id"
            )
        others = sorted(str(suite) for suite, item_id in self.responses if item_id == request.item_id)
        if others:
            return (
                f"no recorded response for item {request.item_id!r} of suite {request.suite!r} in {self.path}: "
                f"it records that id for suite {', '.join(map(repr, others))} only, which does not answer this one"
            )
        return f"no recorded response for item {request.item_id!r} in {self.path}"

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressCallback | None = None,
        batch_size: int | None = None,
    ) -> list[Generation]:
        out = [self.answer(request) for request in requests]
        if progress:
            progress(list(enumerate(out)))
        return out


def shorten(text: str, limit: int = 80) -> str:
    text = printable(text)
    return text if len(text) <= limit else text[:limit] + "..."
