"""Checks that a results file is what the package publishes: strict JSON (no NaN or infinity)
that validates against `results.schema.json` and parses into the typed document."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pytest_vlmsafety.output.document import RESULTS_FILENAME, SCHEMA_PATH, ResultsDocument


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def results_file_problems(path: Path) -> list[str]:
    """Why the file is not a valid results file; empty when it is."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except ValueError as exc:
        return [f"{path}: not strict JSON: {exc}"]
    problems = [
        f"{path}: {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in _validator().iter_errors(data)
    ]
    if not problems:
        ResultsDocument.from_json(data)
    return problems


def written_results_files(folders: list[Path], since: float) -> list[Path]:
    """Results files under `folders` written at or after `since` (a time.time())."""
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [path for path in folder.rglob(RESULTS_FILENAME) if path.stat().st_mtime >= since]
    return found
