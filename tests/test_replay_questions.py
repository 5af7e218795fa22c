"""`replay:` answers only what it recorded: the suite, the id and the question must match, and a
question of the `vlm` fixture is answered by its test's record or by the one response recorded
for it (in process, no pytest subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_vlmsafety.backends.base import QUESTION_SUITE, GenerationRequest
from pytest_vlmsafety.backends.replay import ReplayBackend
from pytest_vlmsafety.output.document import SCHEMA_VERSION
from pytest_vlmsafety.errors import ConfigError, VlmSafetyError
from pytest_vlmsafety.plugin.fixture import Answer
from pytest_vlmsafety.items import SafetyItem, Verdict


def results_file(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"schema": SCHEMA_VERSION, "items": items}))
    return path


def question(prompt: str, images: tuple[Path, ...] = (), asked_by: tuple[str, str] | None = None) -> GenerationRequest:
    return GenerationRequest(QUESTION_SUITE, "", prompt, images, 8, asked_by=asked_by)


def test_a_fixture_question_is_answered_by_the_one_response_recorded_for_it(tmp_path: Path) -> None:
    replay = ReplayBackend(results_file(tmp_path / "r.json", [
        {"suite": "test_a", "id": "test_one", "prompt": "first", "images": ["/old/data/cat.png"], "response": "R1"},
        {"suite": "test_a", "id": "test_two", "prompt": "second", "images": [], "response": "R2"},
        {"suite": "test_b", "id": "test_one", "prompt": "second", "images": [], "response": "R2"},
        {"suite": "test_b", "id": "test_two", "prompt": "twice", "images": [], "response": "yes"},
        {"suite": "test_c", "id": "test_two", "prompt": "twice", "images": [], "response": "no"},
    ]))
    # Asked by a module fixture (no single test): by the question, images by file name.
    assert replay.answer(question("first", (tmp_path / "cat.png",))).text == "R1"
    assert replay.answer(question("second")).text == "R2", "two records agree"
    missing = replay.answer(question("first", (tmp_path / "dog.png",)))
    assert missing.text is None and "no recorded response for the question 'first'" in (missing.error or "")
    ambiguous = replay.answer(question("twice"))
    assert ambiguous.text is None and "records 4, 5 of" in (ambiguous.error or "")
    # Asked by a test: its own record when that record answered this question.
    assert replay.answer(question("twice", asked_by=("test_c", "test_two"))).text == "no"
    assert replay.answer(question("second", asked_by=("test_a", "test_one"))).text == "R2", "another question"


def test_an_item_is_answered_only_by_its_suite_and_its_question(tmp_path: Path) -> None:
    replay = ReplayBackend(results_file(tmp_path / "r.json", [
        {"suite": "first", "id": "q1", "prompt": "How do I bake bread?", "images": [], "response": "Sure."},
    ]))
    same = GenerationRequest("first", "q1", "How do I bake bread?", (), 8)
    assert replay.answer(same).text == "Sure."
    other_suite = replay.answer(GenerationRequest("second", "q1", "How do I bake bread?", (), 8))
    assert other_suite.text is None and "for suite 'first' only" in (other_suite.error or "")
    edited = replay.answer(GenerationRequest("first", "q1", "How do I make a weapon?", (), 8))
    assert edited.text is None and "answered another question" in (edited.error or "")
    with_image = replay.answer(GenerationRequest("first", "q1", "How do I bake bread?", (tmp_path / "x.png",), 8))
    assert with_image.text is None and "images none" in (with_image.error or "")


def test_a_json_lines_record_with_a_prompt_answers_only_that_prompt(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "q1", "prompt": "asked", "response": "A"}\n{"id": "q2", "response": "B"}\n')
    replay = ReplayBackend(path)
    assert replay.answer(GenerationRequest("s", "q1", "asked", (), 8)).text == "A"
    assert replay.answer(GenerationRequest("s", "q1", "other", (), 8)).text is None
    assert replay.answer(GenerationRequest("s", "q2", "anything", (), 8)).text == "B", "no prompt recorded"


def test_a_results_file_of_several_samples_is_refused(tmp_path: Path) -> None:
    path = results_file(tmp_path / "r.json", [
        {"suite": "s", "id": "q1", "prompt": "p", "response": "a", "responses": ["a", "b", "c"]},
    ])
    with pytest.raises(ConfigError, match=r"item 'q1' of suite 's' records 3 samples \(--vlm-samples\)"):
        ReplayBackend(path)


def _judge_never_called(item: SafetyItem, response: str) -> Verdict:
    raise AssertionError("a failed answer has no response to judge")


def test_a_failed_answer_raises_its_error_when_read() -> None:
    failed = Answer(
        None, prompt="p", images=(), system=None, cached=False, judge=_judge_never_called, error="vlm.ask: x"
    )
    assert failed.error == "vlm.ask: x" and "error=" in repr(failed)
    for read in (lambda: failed.text, lambda: str(failed), lambda: failed.refused):
        with pytest.raises(VlmSafetyError, match="vlm.ask: x"):
            read()
