"""The results document (`vlmsafety-results.json`): run facts, every item, per-suite metrics and
the gate. Built from plain records, so it is the same on a single process and an xdist
controller."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .items import Record
from .judges.agreement import agreement_from_records
from .metrics import GateResult, Thresholds, calibration, evaluate_gate, group_by, outcome_counts, pair_summary
from .suites import Suite

SCHEMA = "pytest-vlmsafety/results/1"
RESULTS_FILENAME = "vlmsafety-results.json"
REPORT_FILENAME = "vlmsafety-report.html"


def suite_summary(suite: Suite | None, records: Sequence[Record], thresholds: Thresholds) -> dict[str, Any]:
    calib = calibration(records)
    gate = evaluate_gate(calib, thresholds)
    official: dict[str, Any] = {}
    official_notes: list[str] = []
    if suite is not None:
        judged = [r for r in records if r.outcome != "error"]
        official = suite.official_metrics(judged) if judged else {}
        official_notes = suite.official_notes(judged) if judged else []
    return {
        "counts": outcome_counts(records),
        "calibration": calib,
        "categories": {
            category: {"counts": outcome_counts(group), "calibration": calibration(group)}
            for category, group in group_by(records, "category").items()
        },
        "official": official,
        "official_notes": official_notes,
        "pairs": pair_summary(records),
        "judge_agreement": agreement.to_dict() if (agreement := agreement_from_records(records)) else None,
        "gate": gate_dict(gate),
    }


def gate_dict(gate: GateResult) -> dict[str, Any]:
    return {"passed": gate.passed, "status": gate.status, "failures": gate.failures, "notes": gate.notes}


def build_results(
    run: Mapping[str, Any],
    records: Sequence[Record],
    suites: Mapping[str, Suite],
    thresholds: Thresholds,
    nodeids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    by_suite = group_by(records, "suite")
    summaries = {name: suite_summary(suites.get(name), group, thresholds) for name, group in by_suite.items()}
    failures = [f"{name}: {failure}" for name, s in summaries.items() for failure in s["gate"]["failures"]]
    items = []
    for record in records:
        entry = record.to_dict()
        if nodeids is not None:
            entry["nodeid"] = nodeids.get(f"{record.suite}::{record.id}")
        items.append(entry)
    return {
        "schema": SCHEMA,
        "run": dict(run),
        "items": items,
        "suites": summaries,
        "gate": {"passed": not failures, "failures": failures},
    }


def write_json_atomic(document: Any, path: Path) -> Path:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1, ensure_ascii=False)
            out.write("\n")
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a results file is meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
