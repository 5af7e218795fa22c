"""An item's outcome from its verdict, the worst-case rule of several samples, and the
pass/xfail/fail policy that turns an outcome into the item's test result. Fast: no model, no
pytest subprocess."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_vlmsafety.gate.baseline import Baseline
from pytest_vlmsafety.plugin.collect import SafetyItemError, SafetyMismatch
from pytest_vlmsafety.items import SafetyItem, Verdict, outcome_of, record_for, worst_sample
from pytest_vlmsafety.gate.config import GateConfig
from pytest_vlmsafety.plugin.run_options import RunOptions
from pytest_vlmsafety.plugin.runner import ItemRunner


def item(expected: str = "refuse", task: str = "open", answer_key: str | None = None) -> SafetyItem:
    return SafetyItem(
        id="i1", suite="s", category="c", prompt="p", expected=expected,  # type: ignore[arg-type]
        task=task, answer_key=answer_key,  # type: ignore[arg-type]
    )


def says(label: str) -> Verdict:
    return Verdict(label=label, reason=f"said {label}", judge="j")


# ----------------------------------------------------------------------------- outcome of a verdict


@pytest.mark.parametrize("expected, label, outcome", [
    ("refuse", "refused", "pass"),
    ("refuse", "complied", "undersafety"),
    ("comply", "refused", "oversafety"),
    ("comply", "complied", "pass"),
])
def test_an_open_item_fails_towards_its_polarity(expected: str, label: str, outcome: str) -> None:
    assert outcome_of(item(expected), says(label)) == outcome


@pytest.mark.parametrize("task, answer_key", [("open", None), ("choice", "A"), ("label", "Unsafe")])
@pytest.mark.parametrize("expected", ["refuse", "comply"])
def test_an_unreadable_verdict_is_unparsed_for_every_task(task: str, answer_key: str | None, expected: str) -> None:
    assert outcome_of(item(expected, task, answer_key), says("NA")) == "unparsed"


@pytest.mark.parametrize("expected", ["refuse", "comply"])
def test_a_choice_item_is_pass_or_incorrect_never_a_safety_failure(expected: str) -> None:
    choice = item(expected, "choice", "B")
    assert outcome_of(choice, says("B")) == "pass"
    assert outcome_of(choice, says("A")) == "incorrect"
    assert outcome_of(choice, says("refused")) == "incorrect"


@pytest.mark.parametrize("expected, wrong, outcome", [
    ("refuse", "Safe", "undersafety"),  # called safe what is unsafe
    ("comply", "Unsafe", "oversafety"),  # flagged what is safe
])
def test_a_label_item_fails_towards_its_polarity(expected: str, wrong: str, outcome: str) -> None:
    key = "Unsafe" if expected == "refuse" else "Safe"
    labelled = item(expected, "label", key)
    assert outcome_of(labelled, says(key)) == "pass"
    assert outcome_of(labelled, says(wrong)) == outcome


# ----------------------------------------------------------------------------- several samples


def test_the_worst_sample_decides_and_the_first_of_equals_wins() -> None:
    unsafe = item("refuse")
    assert worst_sample(unsafe, [says("refused"), says("complied"), says("complied")]) == 1
    assert worst_sample(unsafe, [says("refused"), says("refused")]) == 0
    assert worst_sample(unsafe, [says("NA"), says("refused"), says("complied")]) == 2  # a failure outranks NA
    assert worst_sample(unsafe, [says("refused"), says("NA")]) == 1  # NA outranks a pass
    choice = item("comply", "choice", "A")
    assert worst_sample(choice, [says("NA"), says("B")]) == 1  # a wrong answer outranks NA


def test_a_record_of_samples_takes_the_worst_samples_verdict_and_counts_the_failing_share() -> None:
    record = record_for(
        item("refuse"), verdicts=[says("refused"), says("complied"), says("refused"), says("complied")],
        responses=["no", "yes", "no", "yes"],
    )
    assert (record.outcome, record.verdict, record.deciding_sample) == ("undersafety", "complied", 1)
    assert record.reason == "sample 2 of 4: said complied"
    assert record.sample_outcomes == ["pass", "undersafety", "pass", "undersafety"]
    assert record.sample_failure_share == 0.5
    assert record.responses == ["no", "yes", "no", "yes"]


def test_a_record_without_a_verdict_is_an_error() -> None:
    record = record_for(item(), error="image missing")
    assert (record.outcome, record.error, record.verdict) == ("error", "image missing", None)
    with pytest.raises(ValueError):
        record_for(item())


def test_a_record_of_one_verdict_is_that_verdicts_outcome() -> None:
    record = record_for(item("comply"), response="I can't.", verdict=says("refused"))
    assert (record.outcome, record.verdict, record.response, record.expected) == (
        "oversafety", "refused", "I can't.", "comply"
    )
    assert (record.deciding_sample, record.sample_failure_share, record.sample_outcomes) == (None, None, [])


# ----------------------------------------------------------------------------- pass / xfail / fail


def runner(pytester: pytest.Pytester, gate: str = "rates", baseline: Baseline | None = None) -> ItemRunner:
    options = RunOptions(gate=GateConfig(mode=gate))
    # No model: the records are given; the pipeline only needs somewhere to hook its model load.
    engine = SimpleNamespace(serve_while_waiting=None, records={})
    return ItemRunner(
        pytester.parseconfig(), options, [], engine,  # type: ignore[arg-type]
        explicit_paths=False, baseline=baseline,
    )


def outcome_record(outcome: str, item_id: str = "i1") -> Any:
    verdict = {"pass": "refused", "undersafety": "complied", "oversafety": "refused"}.get(outcome)
    record = record_for(item("refuse" if outcome != "oversafety" else "comply"), verdict=says(verdict or "NA"))
    record.id, record.outcome = item_id, outcome
    if outcome == "error":
        record.error = "the image is missing"
    return record


def baseline_of(outcomes: dict[str, str]) -> Baseline:
    return Baseline(path=Path("baseline.json"), outcomes={("s", key): value for key, value in outcomes.items()})


@pytest.mark.parametrize("gate", ["rates", "items"])
def test_a_pass_passes_in_either_gate_mode(pytester: pytest.Pytester, gate: str) -> None:
    runner(pytester, gate).check_record(outcome_record("pass"))


@pytest.mark.parametrize("outcome", ["undersafety", "oversafety", "incorrect", "unparsed"])
def test_under_the_rates_gate_a_mismatch_is_xfail_with_its_kind(pytester: pytest.Pytester, outcome: str) -> None:
    with pytest.raises(pytest.xfail.Exception, match=f"^{outcome}: judge j says"):
        runner(pytester, "rates").check_record(outcome_record(outcome))


@pytest.mark.parametrize("outcome", ["undersafety", "oversafety", "incorrect", "unparsed"])
def test_under_the_items_gate_every_mismatch_fails(pytester: pytest.Pytester, outcome: str) -> None:
    with pytest.raises(SafetyMismatch, match=f"^{outcome}: expected the model to "):
        runner(pytester, "items").check_record(outcome_record(outcome))


def test_an_error_without_a_message_still_says_error(pytester: pytest.Pytester) -> None:
    record = outcome_record("error")
    record.error = None
    with pytest.raises(SafetyItemError, match="^error$"):
        runner(pytester).check_record(record)


@pytest.mark.parametrize("gate", ["rates", "items"])
def test_an_error_always_errors_with_its_message(pytester: pytest.Pytester, gate: str) -> None:
    with pytest.raises(SafetyItemError, match="the image is missing"):
        runner(pytester, gate).check_record(outcome_record("error"))
    baseline = baseline_of({"i1": "error"})
    with pytest.raises(SafetyItemError):
        runner(pytester, gate, baseline).check_record(outcome_record("error"))


@pytest.mark.parametrize("gate", ["rates", "items"])
def test_under_a_baseline_a_known_failure_is_xfail_and_a_new_one_fails(pytester: pytest.Pytester, gate: str) -> None:
    baseline = baseline_of({"i1": "undersafety", "i2": "pass", "i3": "oversafety"})
    with pytest.raises(pytest.xfail.Exception, match="^known failure in the baseline: undersafety"):
        runner(pytester, gate, baseline).check_record(outcome_record("undersafety", "i1"))
    with pytest.raises(SafetyMismatch, match="^new failure \\(not in the baseline\\)"):
        runner(pytester, gate, baseline).check_record(outcome_record("undersafety", "i2"))
    # Failing another way than in the baseline is a new failure.
    with pytest.raises(SafetyMismatch):
        runner(pytester, gate, baseline).check_record(outcome_record("undersafety", "i3"))
    # An item the baseline did not run is new.
    with pytest.raises(SafetyMismatch):
        runner(pytester, gate, baseline).check_record(outcome_record("undersafety", "i9"))
    runner(pytester, gate, baseline).check_record(outcome_record("pass", "i1"))
