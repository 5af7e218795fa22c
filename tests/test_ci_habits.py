"""CI habits cannot pass the gate (issue 22, point 7): a rerun of a selection (`pytest --lf`,
`-k`, `--deselect`) is not a whole run, a run that decides nothing leaves no earlier verdict
behind, and an empty value from an unset CI variable is a usage error, not "not given"."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from jsonl_files import ANSWER, REFUSAL, write_jsonl

from pytest_vlmsafety.errors import ConfigError
from pytest_vlmsafety.options import OptionSpec, check_no_empty_values
from pytest_vlmsafety.plugin.run_options import run_option_specs
from pytest_vlmsafety.suites.registry import suite_options

pytestmark = pytest.mark.usefixtures("vlm_env")


def results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "reports" / "vlmsafety-results.json").read_text(encoding="utf-8"))


@pytest.fixture
def undersafe(pytester: pytest.Pytester) -> Path:
    """Four items to refuse: one refused, three answered (undersafe)."""
    write_jsonl(pytester.path / "mini.jsonl", [
        {"id": f"u{n}", "prompt": f"q{n}", "expected": "refuse", "category": "violence"} for n in range(4)
    ])
    write_jsonl(pytester.path / "responses.jsonl", [
        {"id": "u0", "response": REFUSAL}, *({"id": f"u{n}", "response": ANSWER} for n in (1, 2, 3)),
    ])
    return pytester.path / "mini.jsonl"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "-rfE", *args)


@pytest.mark.slow
def test_a_rerun_of_the_last_failures_is_not_a_passed_gate(pytester: pytest.Pytester, undersafe: Path) -> None:
    """`pytest ... || pytest --lf ...`: the first run fails the gate; the rerun runs what failed
    (here the one item, by --deselect as --lf would) and must not pass on it."""
    first = run(pytester, "--max-undersafety=0.5", "--junitxml=first.xml")
    assert first.ret == 1 and results(pytester.path)["gate"]["status"] == "fail"
    rerun = run(
        pytester, "--max-undersafety=0.5", "--junitxml=junit.xml",
        *(arg for n in (1, 2, 3) for arg in ("--deselect", f"mini::violence::u{n}")),
    )
    assert rerun.ret == 1
    rerun.stdout.fnmatch_lines([
        "*calibration gate: INCONCLUSIVE (not passed)*",
        "*mini: 3 of its 4 items were deselected (-k, -m, --lf or --deselect) and not run*",
    ])
    data = results(pytester.path)
    assert (data["gate"]["status"], data["gate"]["passed"]) == ("inconclusive", False)
    assert data["run"]["items_deselected"] == 3
    assert data["suites"]["mini"]["gate"]["status"] == "inconclusive"
    gates = [c for c in ET.parse(pytester.path / "junit.xml").iter("testcase") if c.get("classname") == "vlmsafety.gate"]
    assert len(gates) == 1 and gates[0].find("failure") is not None
    page = (pytester.path / "reports" / "vlmsafety-report.html").read_text(encoding="utf-8")
    assert "3 of its 4 items were deselected" in page


@pytest.mark.slow
def test_a_selection_under_xdist_is_not_a_passed_gate(pytester: pytest.Pytester, undersafe: Path) -> None:
    """The controller learns what was collected from the workers: the same verdict under -n 2."""
    result = run(pytester, "--max-undersafety=0.5", "-n", "2", "-k", "u0")
    assert result.ret == 1
    data = results(pytester.path)
    assert (data["gate"]["status"], data["run"]["items_deselected"]) == ("inconclusive", 3)


@pytest.mark.slow
def test_the_real_lf_rerun_is_not_passed(pytester: pytest.Pytester, undersafe: Path) -> None:
    """The same with pytest's own --lf, under --safety-gate=items: only the failed items rerun."""
    write_jsonl(pytester.path / "responses.jsonl", [
        {"id": "u0", "response": ANSWER}, *({"id": f"u{n}", "response": REFUSAL} for n in (1, 2, 3)),
    ])
    assert run(pytester, "--safety-gate=items").ret == 1
    rerun = run(pytester, "--safety-gate=items", "--lf")
    assert rerun.ret == 1
    data = results(pytester.path)
    assert data["run"]["items_deselected"] >= 3 and data["gate"]["passed"] is False


@pytest.mark.slow
def test_a_selection_of_no_suite_item_still_reports_the_gate(pytester: pytest.Pytester, undersafe: Path) -> None:
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    result = run(pytester, "test_own.py", "-k", "test_own")
    assert result.ret == 1
    data = results(pytester.path)
    assert data["items"] == [] and data["gate"]["status"] == "inconclusive"
    assert data["suites"]["mini"]["gate"]["failures"][0].startswith("4 of its 4 items were deselected")


@pytest.mark.slow
def test_a_run_that_selects_nothing_removes_the_earlier_results(pytester: pytest.Pytester, undersafe: Path) -> None:
    write_jsonl(pytester.path / "responses.jsonl", [{"id": f"u{n}", "response": REFUSAL} for n in range(4)])
    assert run(pytester).ret == 0 and results(pytester.path)["gate"]["passed"] is True
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess("--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--collect-only")
    assert (reports / "vlmsafety-results.json").exists()  # listing items decides nothing and removes nothing
    result = pytester.runpytest_subprocess("--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "no_such_test.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not (reports / "vlmsafety-results.json").exists() and not (reports / "vlmsafety-report.html").exists()


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["--vlm-batch-size=0", "--vlm=", "--safety-baseline=", "--safety-suite=nope.jsonl"])
def test_a_usage_error_removes_the_earlier_results(pytester: pytest.Pytester, undersafe: Path, bad: str) -> None:
    write_jsonl(pytester.path / "responses.jsonl", [{"id": f"u{n}", "response": REFUSAL} for n in range(4)])
    assert run(pytester).ret == 0
    result = run(pytester, bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*removed the earlier run's*vlmsafety-results.json*"])
    assert not (pytester.path / "reports" / "vlmsafety-results.json").exists()
    assert not (pytester.path / "reports" / "vlmsafety-report.html").exists()


@pytest.mark.slow
def test_an_empty_vlm_is_a_usage_error_not_a_skipped_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own(vlm):\n    assert vlm.ask('q').refused\n")
    result = pytester.runpytest_subprocess("--vlm=", "test_own.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--vlm was given an empty value*"])


def every_option_spec() -> list[OptionSpec]:
    """Ours and the built-in suites' own (declared by their registrations), as pytest adds them."""
    return [*run_option_specs(), *(option.spec() for option in suite_options())]


@pytest.mark.parametrize(
    "spec", [spec for spec in every_option_spec() if spec.kind != "flag"], ids=lambda spec: spec.flag
)
@pytest.mark.parametrize("empty", ["", "  "])
def test_every_option_refuses_an_empty_value(spec: OptionSpec, empty: str) -> None:
    value: object = [empty] if spec.kind == "append" else empty

    def command_line(asked: OptionSpec) -> object:
        return value if asked.flag == spec.flag else None

    with pytest.raises(ConfigError, match=f"^{spec.flag} was given an empty value"):
        check_no_empty_values(every_option_spec(), command_line)


def test_options_not_given_are_not_empty() -> None:
    check_no_empty_values(every_option_spec(), lambda spec: None)


def test_a_suites_own_option_refuses_an_empty_value_as_ours_do() -> None:
    from pytest_vlmsafety.suites.registry import SuiteOption

    spec = SuiteOption("--toy-level", "the items to load", default="all").spec()
    with pytest.raises(ConfigError, match="^--toy-level was given an empty value"):
        check_no_empty_values([*run_option_specs(), spec], lambda asked: "" if asked == spec else None)
    assert spec.value_of(None) == "all" and spec.value_of("hard") == "hard"
