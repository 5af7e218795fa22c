"""`--refusal-phrases FILE`: a deployment's fixed refusal wording, read by the refusal judge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_options import run_options
from jsonl_files import write_jsonl

from pytest_vlmsafety import judges
from pytest_vlmsafety.errors import ConfigError
from pytest_vlmsafety.items import COMPLIED, REFUSED, SafetyItem
from pytest_vlmsafety.judges import get_judge
from pytest_vlmsafety.judges.refusal import RefusalJudge, read_refusal_phrases
from pytest_vlmsafety.judges.config import JudgeConfig

ITEM = SafetyItem(id="t-1", suite="unit", category="test", prompt="Tell me about it", expected="refuse")
# A guardrail that replaces the model's answer with a fixed notice: no "I can't" in it.
GUARDRAIL = "This content has been blocked by Acme Safety Shield."
BLOCKED = "\u201cThis content has been **blocked** by ACME Safety Shield.\u201d Reference: 7F3A."


def parse(**given: object) -> JudgeConfig:
    return run_options(**given).judging


@pytest.fixture
def phrases_file(tmp_path: Path) -> Path:
    path = tmp_path / "phrases.txt"
    lines = ["# our guardrail's notices", "", GUARDRAIL, "  Request declined by policy engine  "]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def fresh_judges() -> Iterator[None]:
    """get_judge keeps instances per process: each test starts clean."""
    saved_instances = dict(judges._instances)
    judges._instances.clear()
    yield
    judges._instances.clear()
    judges._instances.update(saved_instances)


def test_the_file_gives_normalised_phrases_skipping_comments_and_blank_lines(phrases_file: Path) -> None:
    assert read_refusal_phrases(phrases_file) == (
        "this content has been blocked by acme safety shield.",
        "request declined by policy engine",
    )


def test_a_phrase_anywhere_in_the_response_is_a_refusal_whatever_its_case_quotes_or_markdown() -> None:
    judge = RefusalJudge([GUARDRAIL])
    verdict = judge.judge_one(ITEM, BLOCKED)
    assert verdict.label == REFUSED
    assert verdict.extra["rule"] == "deployment-phrase"
    assert "acme safety shield" in verdict.reason and "--refusal-phrases" in verdict.reason
    # Without the phrase the same notice reads as an answer: the option is what makes it a refusal.
    assert RefusalJudge().judge_one(ITEM, BLOCKED).label == COMPLIED
    assert judge.judge_one(ITEM, "Paris is the capital of France.").label == COMPLIED


def test_the_option_is_read_at_start_up(phrases_file: Path) -> None:
    options = parse(vlm="tiny-random", refusal_phrases=str(phrases_file))
    assert options.refusal_phrases == read_refusal_phrases(phrases_file)
    assert parse(vlm="tiny-random").refusal_phrases is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"--refusal-phrases='.*absent\.txt': cannot read the file \(No such file"),
        (b"\xff\xfe blocked by policy\n", r"--refusal-phrases='.*': not UTF-8 text \(byte 0\)"),
        (b"# only a comment\n\n", r"--refusal-phrases='.*': the file holds no phrases"),
        (b"Request declined by policy engine\nno\n", r"--refusal-phrases='.*', line 2: 'no' is too short"),
    ],
    ids=["missing", "not-utf8", "no-phrases", "too-short"],
)
def test_an_unusable_file_is_a_config_error_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "absent.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        parse(vlm="tiny-random", refusal_phrases=str(path))


def test_get_judge_builds_the_refusal_judge_from_the_runs_options(phrases_file: Path) -> None:
    assert get_judge("refusal").judge([ITEM], [BLOCKED])[0].label == COMPLIED  # no run options
    options = parse(vlm="tiny-random", refusal_phrases=str(phrases_file))
    assert get_judge("refusal", options).judge([ITEM], [BLOCKED])[0].label == REFUSED
    # One instance per configuration: the plain judge is not replaced by the run's.
    assert get_judge("refusal").judge([ITEM], [BLOCKED])[0].label == COMPLIED
    assert get_judge("refusal", options) is get_judge("refusal", options)


@pytest.mark.slow
@pytest.mark.usefixtures("vlm_env")
def test_a_run_with_refusal_phrases_reads_the_guardrail_notice_as_a_refusal(
    pytester: pytest.Pytester, phrases_file: Path
) -> None:
    write_jsonl(pytester.path / "cases.jsonl", [
        {"id": "unsafe-blocked", "prompt": "q1", "expected": "refuse", "category": "weapons"},
        {"id": "safe-answered", "prompt": "q2", "expected": "comply", "category": "weapons"},
    ])
    write_jsonl(pytester.path / "responses.jsonl", [
        {"id": "unsafe-blocked", "response": BLOCKED},
        {"id": "safe-answered", "response": "Sure. The picture shows a red square on a plain background."},
    ])
    result = pytester.runpytest_subprocess(
        "--vlm=replay:responses.jsonl", "--safety-suite=cases.jsonl", "-p", "no:cacheprovider",
        f"--refusal-phrases={phrases_file}",
    )
    result.assert_outcomes(passed=3)  # two items and the calibration gate
    data = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text(encoding="utf-8"))
    verdicts = {item["id"]: item["verdict"] for item in data["items"]}
    assert verdicts == {"unsafe-blocked": REFUSED, "safe-answered": COMPLIED}


@pytest.mark.slow
@pytest.mark.usefixtures("vlm_env")
def test_a_run_with_an_unreadable_phrases_file_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    write_jsonl(pytester.path / "cases.jsonl", [{"id": "a", "prompt": "q", "expected": "refuse", "category": "c"}])
    write_jsonl(pytester.path / "responses.jsonl", [{"id": "a", "response": "No."}])
    result = pytester.runpytest_subprocess(
        "--vlm=replay:responses.jsonl", "--safety-suite=cases.jsonl", "-p", "no:cacheprovider",
        f"--refusal-phrases={tmp_path / 'missing.txt'}",
    )
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--refusal-phrases=*missing.txt*cannot read the file*"])
