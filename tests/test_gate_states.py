"""The gate never says PASSED about what it did not measure (issue 11): errors, undecidable rates,
a baseline that pairs nothing and an interrupted run are gate states that do not pass, shown as
such in the terminal, the JSON, the HTML report, JUnit XML, pytest-html and the exit status."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from jsonl_files import ANSWER, REFUSAL, write_jsonl, write_mini_suite

# Each test starts a pytest subprocess (or a model job): left out of the inner loop, `pytest -m "not slow"`.
pytestmark = [pytest.mark.usefixtures("vlm_env"), pytest.mark.slow]


def results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "reports" / "vlmsafety-results.json").read_text(encoding="utf-8"))


def html_report(folder: Path) -> str:
    return (folder / "reports" / "vlmsafety-report.html").read_text(encoding="utf-8")


def gate_cases(junit: Path) -> dict[str, ET.Element]:
    cases = ET.parse(junit).iter("testcase")
    return {case.get("name", ""): case for case in cases if case.get("classname") == "vlmsafety.gate"}


@pytest.fixture
def mini(pytester: pytest.Pytester) -> Path:
    """Four text items (one of each behaviour) and a replay file with all their responses."""
    return write_mini_suite(pytester.path)


def run(pytester: pytest.Pytester, *args: str, replay: str = "responses.jsonl") -> pytest.RunResult:
    return pytester.runpytest_subprocess(f"--vlm=replay:{replay}", "-p", "no:cacheprovider", "-rfE", *args)


# ----------------------------------------------------------------------------- errors


def test_a_run_whose_every_item_is_an_error_is_never_passed(pytester: pytest.Pytester, mini: Path) -> None:
    # A replay file of other items: no item has a response, as when a server is down.
    write_jsonl(pytester.path / "other.jsonl", [{"id": "elsewhere", "response": ANSWER}])
    html = ["--html=pytest-html.html", "--self-contained-html"] if importlib.util.find_spec("pytest_html") else []
    result = run(pytester, "--safety-suite=mini.jsonl", "--junitxml=junit.xml", *html, replay="other.jsonl")
    assert result.ret == 1
    result.assert_outcomes(errors=5)  # four items and the gate
    result.stdout.fnmatch_lines([
        "*calibration gate: ERROR (not passed)*",
        "*mini: 4 of 4 items could not be run (outcome error): not measured*",
    ])
    result.stdout.no_fnmatch_line("*PASSED*")
    data = results(pytester.path)
    assert (data["gate"]["status"], data["gate"]["passed"]) == ("error", False)
    assert (data["suites"]["mini"]["gate"]["status"], data["suites"]["mini"]["gate"]["passed"]) == ("error", False)
    page = html_report(pytester.path)
    assert 'data-status="error"' in page and '<span class="gate-word">ERROR</span>' in page
    assert ">PASS<" not in page
    case = gate_cases(pytester.path / "junit.xml")["mini"]
    error = case.find("error")
    assert error is not None and "could not be run" in (error.text or "") + error.get("message", "")
    if html:
        summary = (pytester.path / "pytest-html.html").read_text(encoding="utf-8")
        assert "VLM safety gate: ERROR (not passed)" in summary and "VLM safety gate: PASS" not in summary


def test_an_interval_that_straddles_the_maximum_is_inconclusive_and_not_passed(
    pytester: pytest.Pytester, mini: Path
) -> None:
    # undersafety 1/2, 95% CI about 0.09-0.91: it neither shows the rate above 0.2 nor within it.
    result = run(
        pytester, "--safety-suite=mini.jsonl", "--safety-gate-on=interval", "--max-undersafety=0.2",
        "--max-oversafety=off", "--junitxml=junit.xml",
    )
    assert result.ret == 1
    result.assert_outcomes(passed=2, xfailed=2, failed=1)
    result.stdout.fnmatch_lines(["*calibration gate: INCONCLUSIVE (not passed)*", "*straddles max 0.2: inconclusive*"])
    data = results(pytester.path)
    assert (data["gate"]["status"], data["gate"]["passed"]) == ("inconclusive", False)
    assert 'data-status="inconclusive"' in html_report(pytester.path)
    failure = gate_cases(pytester.path / "junit.xml")["mini"].find("failure")
    assert failure is not None and "gate inconclusive" in (failure.text or "")


# ----------------------------------------------------------------------------- baseline


def test_a_baseline_of_another_suite_is_a_usage_error(pytester: pytest.Pytester, mini: Path) -> None:
    write_jsonl(pytester.path / "other.jsonl", [{"id": "o1", "prompt": "q", "expected": "refuse", "category": "c"}])
    write_jsonl(pytester.path / "other_responses.jsonl", [{"id": "o1", "response": REFUSAL}])
    assert run(pytester, "--safety-suite=other.jsonl", replay="other_responses.jsonl").ret == 0
    (pytester.path / "reports" / "vlmsafety-results.json").rename(pytester.path / "other-baseline.json")
    result = run(pytester, "--safety-suite=mini.jsonl", "--safety-baseline=other-baseline.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*baseline other-baseline.json has no item of this run (its suites: other; this run's: mini)*compare nothing*"
    ])


def test_a_baseline_that_pairs_no_selected_item_is_an_error_gate(pytester: pytest.Pytester, mini: Path) -> None:
    # A selection's gate is inconclusive (issue 22), but its items serve as a baseline all the same.
    assert run(pytester, "--safety-suite=mini.jsonl", "-k", "violence", "--max-undersafety=off").ret == 1
    assert results(pytester.path)["suites"]["mini"]["gate"]["status"] == "inconclusive"
    (pytester.path / "reports" / "vlmsafety-results.json").rename(pytester.path / "violence.json")
    # Only the drugs items run now: none of them is in the baseline.
    result = run(
        pytester, "--safety-suite=mini.jsonl", "-k", "drugs", "--max-undersafety=off", "--max-oversafety=off",
        "--safety-baseline=violence.json", "--junitxml=junit.xml",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*calibration gate: ERROR (not passed)*",
        "*baseline: no item of this run is in the baseline violence.json*nothing was compared*",
    ])
    data = results(pytester.path)
    assert (data["baseline"]["status"], data["gate"]["status"], data["gate"]["passed"]) == ("error", "error", False)
    assert gate_cases(pytester.path / "junit.xml")["baseline"].find("error") is not None
    assert 'status status-error">error</span>' in html_report(pytester.path)


# ----------------------------------------------------------------------------- interrupted runs

ITEMS = 60
# Slows each item and counts the finished ones in a file, so that the test can interrupt the
# run part-way. Only the process that aggregates counts (not xdist workers).
SLOW_CONFTEST = """
import os, time
from pathlib import Path

COUNT = Path(__file__).with_name("finished.txt")
aggregates = True

def pytest_configure(config):
    global aggregates
    aggregates = not hasattr(config, "workerinput")

def pytest_runtest_call(item):
    time.sleep(0.05)

def pytest_runtest_logreport(report):
    if aggregates and report.when == "call" and "::" in report.nodeid and "gate" not in report.nodeid:
        done = int(COUNT.read_text()) if COUNT.exists() else 0
        COUNT.write_text(str(done + 1))
"""


@pytest.fixture
def many(pytester: pytest.Pytester) -> Path:
    rows = [
        {"id": f"item-{n:02d}", "prompt": f"q{n}", "expected": ("comply", "refuse")[n % 2], "category": f"cat{n % 6}"}
        for n in range(ITEMS)
    ]
    write_jsonl(pytester.path / "many.jsonl", rows)
    write_jsonl(pytester.path / "many_responses.jsonl", [
        {"id": row["id"], "response": REFUSAL if row["expected"] == "refuse" else ANSWER} for row in rows
    ])
    pytester.makeconftest(SLOW_CONFTEST)
    return pytester.path / "many.jsonl"


def interrupt_after(pytester: pytest.Pytester, finished: int, *args: str) -> tuple[int, str]:
    """Run the `many` suite in a subprocess (its own process group, as a shell runs a job) and
    send the group SIGINT, as Ctrl-C does, once `finished` items have finished."""
    command = [
        sys.executable, "-m", "pytest", "--vlm=replay:many_responses.jsonl", "--safety-suite=many.jsonl",
        "-p", "no:cacheprovider", *args,
    ]
    process = subprocess.Popen(
        command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    count = pytester.path / "finished.txt"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if count.exists() and count.read_text() and int(count.read_text()) >= finished:
                os.killpg(process.pid, signal.SIGINT)
                break
            time.sleep(0.02)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, output


def check_interrupted(folder: Path, output: str, returncode: int, *, finished_at_least: int) -> dict[str, Any]:
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    data = results(folder)
    ran = len(data["items"])
    assert finished_at_least <= ran < ITEMS, output
    assert data["run"]["interrupted"] is True and data["run"]["items_not_run"] == ITEMS - ran
    assert (data["gate"]["status"], data["gate"]["passed"]) == ("interrupted", False)
    assert data["gate"]["failures"][0].startswith(f"the run was interrupted: {ITEMS - ran} of {ITEMS} collected items")
    page = html_report(folder)
    assert 'data-status="interrupted"' in page and "INTERRUPTED</span>" in page
    assert "calibration gate: INTERRUPTED (not passed)" in output
    assert not list((folder / "reports").glob(".*")), "a temporary file of an atomic write was left behind"
    return data


def test_ctrl_c_writes_the_items_that_finished_marked_interrupted(pytester: pytest.Pytester, many: Path) -> None:
    returncode, output = interrupt_after(pytester, 20)
    check_interrupted(pytester.path, output, returncode, finished_at_least=20)


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_ctrl_c_under_xdist_writes_what_the_controller_received(pytester: pytest.Pytester, many: Path) -> None:
    returncode, output = interrupt_after(pytester, 20, "-n", "2")
    check_interrupted(pytester.path, output, returncode, finished_at_least=20)


def test_the_html_report_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that does not complete (here: the final rename fails, as when the run is killed)
    leaves the previous page whole and no temporary file behind."""
    from pytest_vlmsafety.output import document as document_module
    from pytest_vlmsafety.output.document import ResultsDocument
    from pytest_vlmsafety.output.html import write_html_report

    page = tmp_path / "vlmsafety-report.html"
    page.write_text("the previous report", encoding="utf-8")

    def killed(source: object, target: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(document_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_html_report(ResultsDocument(), page)
    assert page.read_text(encoding="utf-8") == "the previous report"
    assert [path.name for path in tmp_path.iterdir()] == [page.name]


def test_a_run_stopped_by_exitfirst_is_interrupted_not_passed(pytester: pytest.Pytester, mini: Path) -> None:
    # --safety-gate=items fails the first mismatch; -x stops the run there.
    result = run(pytester, "--safety-suite=mini.jsonl", "--safety-gate=items", "-x")
    assert result.ret == 1
    data = results(pytester.path)
    assert data["run"]["interrupted"] is True and 0 < data["run"]["items_not_run"] < 4
    assert (data["gate"]["status"], data["gate"]["passed"]) == ("interrupted", False)
    result.stdout.fnmatch_lines(["*calibration gate: INTERRUPTED (not passed)*"])


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_an_item_whose_test_fails_outside_its_check_is_an_error(
    pytester: pytest.Pytester, mini: Path, phase: str
) -> None:
    """A plugin or conftest hook that fails in an item's setup (after its batch was generated and
    judged) or teardown fails the run: the gate must not keep the judged outcome and say PASSED."""
    pytester.makeconftest(f"""
import pytest

@pytest.hookimpl(trylast=True)
def pytest_runtest_{phase}(item):
    if item.nodeid.endswith("::safe-answered"):
        raise RuntimeError("fixture broke")
""")
    result = run(pytester, "--safety-suite=mini.jsonl", "--max-undersafety=off", "--max-oversafety=off",
                 "--max-unjudged=off", "--junitxml=junit.xml")
    assert result.ret == 1
    result.stdout.no_fnmatch_line("*calibration gate: PASSED*")
    data = results(pytester.path)
    record = next(r for r in data["items"] if r["id"] == "safe-answered")
    assert record["outcome"] == "error"
    assert f"failed in {phase} outside the safety check" in record["error"] and "fixture broke" in record["error"]
    assert data["gate"]["status"] == "error"
    gate_case = gate_cases(pytester.path / "junit.xml")["mini"]
    assert gate_case.find("error") is not None or gate_case.find("failure") is not None
