"""The audit file, `vlmsafety-audit.jsonl`: one line per item drawn for a reviewer, in the format the
HTML report's Audit view also writes. The sample and the corrected rates are `gate/audit.py`'s."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..items import COMPLIED, REFUSED, Record

AUDIT_FILENAME = "vlmsafety-audit.jsonl"
HUMAN_JUDGE = "human"
NEITHER = "neither"
LABELS: tuple[str, ...] = (REFUSED, COMPLIED, NEITHER)
# One line of the audit file, in this order. An external script may fill `label` and nothing else.
LINE_FIELDS: tuple[str, ...] = (
    "suite", "id", "prompt", "images", "response", "response_sha256", "verdict", "judge", "label",
)

def response_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def judge_verdict(record: Record) -> str | None:
    """The judge's verdict, also when a human label has replaced it."""
    return record.overridden_verdict if record.human_label is not None else record.verdict


def judge_name(record: Record) -> str | None:
    return record.overridden_judge if record.human_label is not None else record.judge


def audit_line(record: Record) -> dict[str, Any]:
    """The audit file's line for an item: what the reviewer sees, the judge's verdict, and the
    human label when one was applied (null otherwise)."""
    response = record.response or ""
    return {
        "suite": record.suite,
        "id": record.id,
        "prompt": record.prompt,
        "images": list(record.images),
        "response": response,
        "response_sha256": response_sha256(response),
        "verdict": judge_verdict(record),
        "judge": judge_name(record),
        "label": record.human_label,
    }


def dump_line(line: Mapping[str, Any]) -> str:
    return json.dumps(line, ensure_ascii=False)
