"""The typed results document, its JSON and its published schema."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from results_validation import results_file_problems

from pytest_vlmsafety.output.document import (
    OMIT_NONE,
    SCHEMA_PATH,
    SCHEMA_VERSION,
    ModelInfo,
    ResultsDocument,
    RunFacts,
    json_schema,
    parse_as,
    to_json_value,
)
from pytest_vlmsafety.errors import DataError
from pytest_vlmsafety.items import Record

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def test_shipped_schema_is_the_one_the_classes_define() -> None:
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == json_schema(), (
        "results.schema.json is out of step with pytest_vlmsafety/document.py; regenerate it with "
        "`python -m pytest_vlmsafety.output.document > pytest_vlmsafety/output/results.schema.json`"
    )


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.json")))
def test_fixture_results_round_trip_and_validate(name: str, tmp_path: Path) -> None:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    document = ResultsDocument.from_json(data)
    assert ResultsDocument.from_json(document.to_json()) == document
    written = document.write(tmp_path / "vlmsafety-results.json")
    assert results_file_problems(written) == []
    assert ResultsDocument.read(written) == document


def test_nan_and_infinity_are_written_as_null(tmp_path: Path) -> None:
    record = Record(id="a", suite="s", outcome="pass", meta={"score": math.nan, "nested": [math.inf]})
    document = ResultsDocument(run=RunFacts(duration_s=math.nan), items=[record])
    text = document.dumps()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["items"][0]["meta"] == {"score": None, "nested": [None]}
    assert data["run"]["duration_s"] is None
    assert results_file_problems(document.write(tmp_path / "vlmsafety-results.json")) == []


def test_backend_specific_model_facts_are_kept_beside_the_common_ones() -> None:
    data = {"spec": "replay:x.json", "id": "x.json", "weights_hash": "abc", "format": "jsonl", "noise": False}
    model = ResultsDocument.from_json({"schema": SCHEMA_VERSION, "run": {"model": data}}).run.model
    assert model == ModelInfo(spec="replay:x.json", id="x.json", details={"weights_hash": "abc", "format": "jsonl"})
    assert ResultsDocument(run=RunFacts(model=model)).to_json()["run"]["model"]["weights_hash"] == "abc"


def test_absent_fields_take_their_defaults() -> None:
    document = ResultsDocument.from_json({"schema": SCHEMA_VERSION, "items": [{"id": "x"}], "suites": {"s": {}}})
    assert document.items[0].outcome == "error" and document.items[0].images == []
    assert document.suites["s"].calibration.undersafety.total == 0
    assert document.gate.passed and document.baseline is None
    assert "baseline" not in document.to_json()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema": "other/2"}, "schema is 'other/2'"),
        ([], "expected a JSON object at the top"),
        ({"schema": SCHEMA_VERSION, "items": [{"id": 3}]}, r"items\[0\]\.id: expected a string, got int"),
        ({"schema": SCHEMA_VERSION, "run": {"seed": "zero"}}, r"run\.seed: expected a whole number"),
        ({"schema": SCHEMA_VERSION, "suites": {"s": {"gate": {"status": "maybe"}}}}, r"suites\.s\.gate\.status"),
        ({"schema": SCHEMA_VERSION, "gate": {"passed": "yes"}}, r"gate\.passed: expected true or false"),
        # JSON's own types: no number in a string, no bool for a number, no number for a bool.
        ({"schema": SCHEMA_VERSION, "run": {"seed": "1"}}, r"run\.seed: expected a whole number, got str"),
        ({"schema": SCHEMA_VERSION, "run": {"seed": True}}, r"run\.seed: expected a whole number, got bool"),
        ({"schema": SCHEMA_VERSION, "run": {"seed": 1.0}}, r"run\.seed: expected a whole number, got float"),
        ({"schema": SCHEMA_VERSION, "run": {"duration_s": True}}, r"run\.duration_s: expected a number, got bool"),
        ({"schema": SCHEMA_VERSION, "gate": {"passed": 1}}, r"gate\.passed: expected true or false, got int"),
        ({"schema": SCHEMA_VERSION, "run": {"suites": "abc"}}, r"run\.suites: expected a list, got str"),
        ({"schema": SCHEMA_VERSION, "suites": {"s": {"counts": {"pass": "2"}}}}, r"suites\.s\.counts\.pass: expected"),
        # `int | str`: the place is the field's, not the union member's.
        ({"schema": SCHEMA_VERSION, "run": {"generation": {"batch_size": 1.5}}}, r"generation\.batch_size: expected a"),
        ({"schema": SCHEMA_VERSION, "run": {"model": {"noise": "no"}}}, r"run\.model\.noise: expected true or false"),
    ],
)
def test_wrong_types_are_data_errors_naming_the_field(data: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        ResultsDocument.from_json(data)


def test_read_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json: not valid JSON"):
        ResultsDocument.read(path)
    with pytest.raises(DataError, match="results file not found"):
        ResultsDocument.read(tmp_path / "absent.json")


def test_the_validation_the_suite_applies_rejects_a_bad_file(tmp_path: Path) -> None:
    # conftest runs results_file_problems on every results file a test writes: it must be able to fail.
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "pytest-vlmsafety/results/1", "run": {"seed": NaN}, "items": [], "suites": {}, '
                   '"gate": {"passed": true, "failures": []}}', encoding="utf-8")
    assert "not strict JSON" in results_file_problems(bad)[0]
    bad.write_text(json.dumps({"schema": SCHEMA_VERSION, "items": [{"id": 1}], "suites": {}, "gate": {}, "run": {}}))
    assert any("items/0/id" in problem for problem in results_file_problems(bad))
    bad.write_text(json.dumps({"schema": SCHEMA_VERSION, "items": [], "suites": {}, "gate": {}, "run": {}, "x": 1}))
    assert any("'x' was unexpected" in problem for problem in results_file_problems(bad))


def test_unknown_keys_are_ignored_and_a_whole_number_reads_as_a_float() -> None:
    data = {"schema": SCHEMA_VERSION, "later": 1, "run": {"duration_s": 3, "later": {}}, "items": [{"id": "x", "y": 2}]}
    document = ResultsDocument.from_json(data)
    assert document.run.duration_s == 3.0 and isinstance(document.run.duration_s, float)
    assert document.items[0].id == "x"
    assert "later" not in document.to_json()


def test_values_are_written_as_they_are_with_backend_facts_after_the_common_fields() -> None:
    details = {"spec": "not the spec", "load_s": 1.5, "kwargs": {"size": (1, 2)}}
    document = ResultsDocument(run=RunFacts(duration_s=3, model=ModelInfo(spec="s", details=details)))
    text = document.dumps()
    assert '"duration_s": 3,' in text  # an int in a float field stays an int
    model = json.loads(text)["run"]["model"]
    assert list(model) == ["spec", "id", "revision", "backend", "dtype", "device", "noise", "load_s", "kwargs"]
    assert model["spec"] == "s" and model["kwargs"] == {"size": [1, 2]}


@dataclass
class Paths:
    root: Path = Path(".")
    names: tuple[str, ...] = ()
    mode: Literal["fast", "slow"] = "fast"
    limit: int | None = None


@dataclass
class Config:
    paths: Paths = field(default_factory=Paths)
    spare: Paths | None = field(default=None, metadata=OMIT_NONE)


def test_a_typed_config_needs_no_conversion_code() -> None:
    # What a new field of RunFacts may hold: a nested dataclass of paths, tuples, literals and Nones.
    config = Config(paths=Paths(Path("/data/x"), ("a", "b"), "slow", 3))
    data = to_json_value(config)
    assert data == {"paths": {"root": "/data/x", "names": ["a", "b"], "mode": "slow", "limit": 3}}
    assert parse_as(Config, json.loads(json.dumps(data)), "config") == config
    assert parse_as(Config, {}, "config") == Config()
    with pytest.raises(DataError, match=r"config\.paths\.mode: 'medium' is not one of 'fast' or 'slow'"):
        parse_as(Config, {"paths": {"mode": "medium"}}, "config")
