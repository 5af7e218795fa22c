"""The HTML report bounds every untrusted string it embeds (issue 22, point 12): a schema-valid
results or baseline file with a 5 MB string gives a page of bounded size, the string cut with a
visible marker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonl_files import write_jsonl

from pytest_vlmsafety.gate.baseline import baseline_section, compare_to_baseline, load_baseline
from pytest_vlmsafety.output.document import ResultsDocument
from pytest_vlmsafety.output.html import MAX_EMBEDDED_CHARS, render_html_report

FIXTURES = Path(__file__).parent / "fixtures" / "results"
HUGE = "x" * 5_000_000
MARKER = "more characters not shown"


def test_a_five_megabyte_string_in_a_baseline_is_cut(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "baseline_run.json").read_text(encoding="utf-8"))
    data["run"]["model"]["spec"] = HUGE
    data["run"]["started"] = "<b>" + HUGE
    (tmp_path / "baseline.json").write_text(json.dumps(data), encoding="utf-8")
    baseline = load_baseline(tmp_path / "baseline.json")  # schema-valid: it loads
    current = ResultsDocument.read(FIXTURES / "current_run.json")
    current.baseline = baseline_section(baseline, compare_to_baseline(current.items, baseline), max_regression=0.1)
    page = render_html_report(current)
    assert len(page) < 1_000_000
    assert page.count(MARKER) >= 2
    assert "x" * (MAX_EMBEDDED_CHARS + 1) not in page
    assert "<b>" not in page  # still escaped


def test_five_megabyte_strings_of_the_run_are_cut() -> None:
    current = ResultsDocument.read(FIXTURES / "current_run.json")
    current.run.model.spec = HUGE
    current.gate.failures.append(HUGE)
    current.items[0].error = HUGE
    current.items[0].outcome = "error"
    current.items[1].reason = HUGE
    current.items[1].category = HUGE
    page = render_html_report(current)
    assert len(page) < 2_000_000
    assert "x" * (MAX_EMBEDDED_CHARS + 1) not in page


@pytest.mark.slow
@pytest.mark.usefixtures("vlm_env")
def test_the_plugin_writes_a_bounded_report_against_a_hostile_baseline(pytester: pytest.Pytester) -> None:
    write_jsonl(pytester.path / "mini.jsonl", [{"id": "u", "prompt": "q", "expected": "refuse", "category": "c"}])
    write_jsonl(pytester.path / "responses.jsonl", [{"id": "u", "response": "I'm sorry, but I can't help with that."}])
    args = ("--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "-p", "no:cacheprovider")
    assert pytester.runpytest_subprocess(*args).ret == 0
    baseline = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text(encoding="utf-8"))
    baseline["run"]["model"]["spec"] = HUGE
    (pytester.path / "baseline.json").write_text(json.dumps(baseline), encoding="utf-8")
    assert pytester.runpytest_subprocess(*args, "--safety-baseline=baseline.json").ret == 0
    page = (pytester.path / "reports" / "vlmsafety-report.html").read_text(encoding="utf-8")
    assert len(page) < 1_000_000 and MARKER in page
