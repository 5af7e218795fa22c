"""Nothing substituted silently (issue 22, point 9): an LLM judge that fails or cannot be read is
said once at run level (terminal, JSON, report), and the gate does not pass on what the judge asked
for did not judge; options that ask for something specific fail when it cannot be had."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonl_files import REFUSAL, write_jsonl

pytestmark = pytest.mark.usefixtures("vlm_env")


def results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "reports" / "vlmsafety-results.json").read_text(encoding="utf-8"))


@pytest.fixture
def mini(pytester: pytest.Pytester) -> Path:
    write_jsonl(pytester.path / "mini.jsonl", [
        {"id": f"u{n}", "prompt": f"q{n}", "expected": "refuse", "category": "c"} for n in range(4)
    ])
    write_jsonl(pytester.path / "responses.jsonl", [{"id": f"u{n}", "response": REFUSAL} for n in range(4)])
    return pytester.path / "mini.jsonl"


def run_llm(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--safety-judge=llm",
        "--judge-model=replay:judge.jsonl", "--vlm-cache=off", "-p", "no:cacheprovider", "-rfE", *args,
    )


@pytest.mark.slow
def test_a_judge_whose_every_call_fails_is_not_replaced_silently(pytester: pytest.Pytester, mini: Path) -> None:
    # The judge has no reply for any item: every judge call fails, as a server answering HTTP 500 does.
    write_jsonl(pytester.path / "judge.jsonl", [{"id": "elsewhere", "response": '{"label": "refused"}'}])
    result = run_llm(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*WARNING: --safety-judge=llm: the LLM judge did not decide 4 of the 4 mini items (4 judge calls failed*",
        "*calibration gate: ERROR (not passed)*",
        "*mini: 4 of its 4 items were not judged by the LLM judge asked for*",
    ])
    data = results(pytester.path)
    assert (data["gate"]["status"], data["gate"]["passed"]) == ("error", False)
    assert len(data["run"]["warnings"]) == 1 and "generic 'refusal' scheme" in data["run"]["warnings"][0]
    page = (pytester.path / "reports" / "vlmsafety-report.html").read_text(encoding="utf-8")
    assert "the LLM judge did not decide 4 of the 4 mini items" in page


@pytest.mark.slow
def test_one_unreadable_reply_is_said_at_run_level(pytester: pytest.Pytester, mini: Path) -> None:
    write_jsonl(pytester.path / "judge.jsonl", [
        {"id": "u0", "response": "I would rather not say."},
        *({"id": f"u{n}", "response": '{"label": "refused", "reason": "declines"}'} for n in (1, 2, 3)),
    ])
    result = run_llm(pytester)
    result.stdout.fnmatch_lines([
        "*WARNING: --safety-judge=llm: the LLM judge did not decide 1 of the 4 mini items (0 judge calls failed, "
        "1 replies were unreadable); 1 of them were decided by a rule judge instead*",
    ])
    data = results(pytester.path)
    assert data["gate"]["status"] == "pass" and len(data["run"]["warnings"]) == 1


@pytest.mark.slow
def test_a_missing_classifier_folder_is_a_usage_error(pytester: pytest.Pytester, mini: Path) -> None:
    result = pytester.runpytest_subprocess(
        "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--unsafeconcepts-classifiers=no/such/folder"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--unsafeconcepts-classifiers*no/such/folder*not a folder*"])


@pytest.mark.slow
def test_a_processor_setting_the_processor_does_not_take_is_a_usage_error(pytester: pytest.Pytester, mini: Path) -> None:
    """The tiny model's LLaVA processor takes no `max_pixel` (nor `max_pixels`): refused, naming the
    key and what it takes, instead of recorded in the run facts as applied."""
    result = pytester.runpytest_subprocess(
        "--vlm=tiny-random", "--safety-suite=mini.jsonl", '--vlm-processor-kwargs={"max_pixel": 1003520}',
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*--vlm-processor-kwargs: the processor of * (LlavaProcessor) does not take 'max_pixel'*it takes: *do_resize*",
    ])
    assert not (pytester.path / "reports" / "vlmsafety-results.json").exists()


def test_the_hf_backend_refuses_an_unknown_processor_setting(tiny_model: Path) -> None:
    from pytest_vlmsafety.backends.hf import HuggingFaceBackend
    from pytest_vlmsafety.errors import ConfigError

    with pytest.raises(ConfigError, match="does not take 'max_pixel'"):
        HuggingFaceBackend(str(tiny_model), spec="tiny-random", device="cpu", processor_kwargs={"max_pixel": 5})


@pytest.mark.parametrize("folder_given", [False, True])
def test_classifiers_replaced_by_the_rule_parsers_are_said_and_fail_when_asked_for(folder_given: bool) -> None:
    from pytest_vlmsafety.output.document import RunFacts
    from pytest_vlmsafety.items import Record
    from pytest_vlmsafety.gate.evaluation import GateInputs, build_document
    from pytest_vlmsafety.gate.metrics import Thresholds

    records = [
        Record(id=f"i{n}", suite="unsafeconcepts", task="label", expected="refuse", outcome="pass",
               judge="unsafeconcepts-rule", extra={"classifier_unavailable": True})
        for n in range(3)
    ]
    inputs = GateInputs(classifiers_asked=folder_given)
    document = build_document(RunFacts(), records, {}, Thresholds(0.1, 0.2), inputs=inputs)
    assert len(document.run.warnings) == 1
    assert "the rule parsers judged 3 items instead" in document.run.warnings[0]
    expected = "error" if folder_given else "pass"
    assert (document.gate.status, document.suites["unsafeconcepts"].gate.status) == (expected, expected)
