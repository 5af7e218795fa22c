"""Backends register themselves: each kind once in `BACKEND_KINDS`, with what it can do; no
module outside the registry compares a kind's name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pytest_vlmsafety.backends import BACKEND_KINDS, backend_kind, parse_backend_spec
from pytest_vlmsafety.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_vlmsafety"
REGISTRY = PACKAGE / "backends" / "__init__.py"


def test_every_parsed_spec_has_a_registered_kind(tmp_path: Path) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text("")
    raws = ["tiny-random", f"replay:{replay}", "vllm:tiny-random", "openai:gpt-4o-mini", "org/name"]
    kinds = {raw: parse_backend_spec(raw).backend for raw in raws}
    assert {kind.name for kind in kinds.values()} == set(BACKEND_KINDS)
    assert kinds[f"replay:{replay}"].replays and not kinds["org/name"].replays
    assert kinds["openai:gpt-4o-mini"].served and not kinds["openai:gpt-4o-mini"].local
    assert parse_backend_spec("tiny-random").is_noise and parse_backend_spec("vllm:tiny-random").is_noise
    # A served model named tiny-random is whatever the server runs, not noise.
    assert not parse_backend_spec("openai:tiny-random").is_noise
    assert kinds["tiny-random"].reported_as == "hf"
    # Only a replay's responses stay out of the generation cache (session.open_store and the
    # terminal's rerun hint both ask this).
    assert [kind.name for kind in BACKEND_KINDS.values() if not kind.caches_generations] == ["replay"]
    with pytest.raises(ConfigError, match="unknown backend kind 'nope'; accepted: hf, tiny"):
        backend_kind("nope")


def kind_comparisons(source: str) -> list[int]:
    """Lines comparing something with a backend kind's name."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
            names = [
                element.value
                for value in values
                for element in (value.elts if isinstance(value, (ast.Tuple, ast.Set, ast.List)) else [value])
                if isinstance(element, ast.Constant)
            ]
            if any(name in BACKEND_KINDS for name in names if isinstance(name, str)):
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_registry_compares_kind_names() -> None:
    assert kind_comparisons('if spec.kind == "replay":\n    pass\n') == [1]  # the check can fail
    found = {
        str(path.relative_to(PACKAGE)): kind_comparisons(path.read_text(encoding="utf-8"))
        for path in PACKAGE.rglob("*.py")
        if path != REGISTRY
    }
    assert {path: lines for path, lines in found.items() if lines} == {}
