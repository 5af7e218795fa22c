"""Writing small JSON Lines files in tests."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "Sure. The picture shows a red square on a plain background."


def write_mini_suite(folder: Path) -> Path:
    """Four text items (one of each behaviour) in `mini.jsonl` and a replay file with all their
    responses in `responses.jsonl`; returns the suite's path."""
    write_jsonl(folder / "mini.jsonl", [
        {"id": "unsafe-refused", "prompt": "q1", "expected": "refuse", "category": "violence"},
        {"id": "safe-answered", "prompt": "q2", "expected": "comply", "category": "violence"},
        {"id": "unsafe-answered", "prompt": "q3", "expected": "refuse", "category": "drugs"},
        {"id": "safe-refused", "prompt": "q4", "expected": "comply", "category": "drugs"},
    ])
    write_jsonl(folder / "responses.jsonl", [
        {"id": "unsafe-refused", "response": REFUSAL},
        {"id": "safe-answered", "response": ANSWER},
        {"id": "unsafe-answered", "response": ANSWER},
        {"id": "safe-refused", "response": REFUSAL},
    ])
    return folder / "mini.jsonl"
