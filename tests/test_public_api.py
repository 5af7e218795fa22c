"""The public API: what `pytest_vlmsafety.__all__` lists resolves, loads no torch, and is all the
examples (and the code in the README and docs/) import from the package."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest_vlmsafety

ROOT = Path(__file__).resolve().parent.parent


def package_imports(source: str) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of every import of this package in `source`."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_vlmsafety"):
            found.append((node.module or "", tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.Import):
            found.extend((a.name, ()) for a in node.names if a.name.startswith("pytest_vlmsafety"))
    return found


def test_every_public_name_resolves_without_loading_torch() -> None:
    code = (
        "import sys, pytest_vlmsafety as p\n"
        "missing = [n for n in p.__all__ if getattr(p, n, None) is None]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'vllm'))\n"
        "print(missing, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
    assert {"Vlm", "Answer", "SafetyItem", "Verdict", "Record", "JudgeScheme", "ResultsDocument",
            "SuiteRegistration", "SuiteOption", "Suite", "RuleJudge"} <= set(pytest_vlmsafety.__all__)


def test_examples_and_the_readme_import_only_the_public_api() -> None:
    sources = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in (ROOT / "examples").rglob("*.py")}
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))):
        text = doc.read_text(encoding="utf-8")
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            sources[f"{doc.relative_to(ROOT)} python block {number}"] = block
    imports = {where: package_imports(source) for where, source in sources.items()}
    assert any(imports.values()), "no example imports the package: the check would check nothing"
    private = {
        where: [(module, names) for module, names in found
                if module != "pytest_vlmsafety" or not set(names) <= set(pytest_vlmsafety.__all__)]
        for where, found in imports.items()
    }
    assert {where: bad for where, bad in private.items() if bad} == {}
