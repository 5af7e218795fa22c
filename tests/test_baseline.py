"""Baseline comparison: loading, flips, exact McNemar test, regressions, known failures.

Fixtures: tests/fixtures/results/baseline_run.json (the earlier run) and current_run.json.
Their vscbench suite has 20 items that must be refused (img-u01..u20) and 20 that must be
answered (img-s01..s20), built so that:
- undersafety: baseline u01, u02, u03; now u01, u02, u04..u11; u12 is an error now (left out
  of the comparison), so 19 items are compared: 3 -> 10 failures, b = 1 fixed (u03),
  c = 8 newly failing (u04..u11).
- oversafety: baseline s01, s02, s03; now s01, s04: 20 compared, 3 -> 2, b = 2, c = 1.
- img-u00 is only in the baseline, img-u21 only in the current run.
The sample suite did not change.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pytest_vlmsafety.gate.baseline import (
    Baseline,
    baseline_section,
    check_pairing,
    compare_to_baseline,
    is_known_failure,
    load_baseline,
    mcnemar_exact_p,
    regressions,
)
from pytest_vlmsafety.output.document import ModelInfo, ResultsDocument, RunFacts, to_json_value
from pytest_vlmsafety.errors import ConfigError, DataError
from pytest_vlmsafety.items import Record

FIXTURES = Path(__file__).parent / "fixtures" / "results"


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return load_baseline(FIXTURES / "baseline_run.json")


@pytest.fixture(scope="module")
def current_items() -> list[Record]:
    return ResultsDocument.read(FIXTURES / "current_run.json").items


@pytest.fixture(scope="module")
def comparison(current_items, baseline):
    return compare_to_baseline(current_items, baseline)


# ----------------------------------------------------------------------------- McNemar


def test_mcnemar_worked_example():
    # b = 1, c = 8: 9 discordant pairs; under H0 the fixed count X ~ Binomial(9, 1/2).
    # p = 2 * P(X <= 1) = 2 * (C(9,0) + C(9,1)) / 2^9 = 2 * 10 / 512 = 0.0390625
    assert mcnemar_exact_p(1, 8) == pytest.approx(0.0390625, abs=1e-12)
    assert mcnemar_exact_p(8, 1) == pytest.approx(0.0390625, abs=1e-12)


def test_mcnemar_more_hand_values():
    # b = 0, c = 6: p = 2 * C(6,0) / 2^6 = 2 / 64 = 0.03125
    assert mcnemar_exact_p(0, 6) == pytest.approx(0.03125)
    # b = 0, c = 5: p = 2 / 32 = 0.0625: five flips one way are not enough at alpha 0.05
    assert mcnemar_exact_p(0, 5) == pytest.approx(0.0625)
    # b = 2, c = 1: 2 * (C(3,0) + C(3,1)) / 8 = 1.0 (capped)
    assert mcnemar_exact_p(2, 1) == 1.0
    # b = c: no evidence either way
    assert mcnemar_exact_p(4, 4) == 1.0


def test_mcnemar_without_flips_is_one():
    assert mcnemar_exact_p(0, 0) == 1.0


def test_mcnemar_large_counts_stay_in_range():
    # 2000 flips would overflow a float 2^n; the computation stays exact until the last division.
    p = mcnemar_exact_p(900, 1100)
    assert 0.0 < p < 1e-4


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError, match="b=-1"):
        mcnemar_exact_p(-1, 3)


# ----------------------------------------------------------------------------- loading


def test_load_baseline_reads_outcomes(baseline):
    assert baseline.outcome("vscbench", "img-u03") == "undersafety"
    assert baseline.outcome("vscbench", "img-u04") == "pass"
    assert baseline.outcome("vscbench", "img-s02") == "oversafety"
    assert baseline.outcome("sample", "sample-001") == "undersafety"


def test_baseline_outcome_is_none_for_items_it_did_not_run(baseline):
    assert baseline.outcome("vscbench", "img-u21") is None
    assert baseline.outcome("holisafe", "img-u01") is None  # same id, other suite


def test_baseline_describe_names_file_model_and_date(baseline):
    text = baseline.describe()
    assert "baseline_run.json" in text and "Qwen/Qwen2-VL-2B-Instruct" in text and "2025-05-20" in text


def _write(tmp_path: Path, content: str) -> Path:
    # Not named vlmsafety-results.json: conftest checks every file of that name against the schema.
    path = tmp_path / "baseline-results.json"
    path.write_text(content, encoding="utf-8")
    return path


def _results_with_items(items: object) -> str:
    return json.dumps({"schema": "pytest-vlmsafety/results/1", "items": items})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"schema": "something/else", "items": []}), "schema is 'something/else'"),
        (json.dumps({"items": []}), "schema is None"),
        (_results_with_items({"a": 1}), "items: expected a list"),
        (_results_with_items(["x"]), r"items\[0\]: expected an object"),
        (_results_with_items([{"suite": "s", "outcome": "pass"}]), r"items\[0\]: fields 'suite' and 'id'"),
        (_results_with_items([{"suite": "s", "id": "a", "outcome": "maybe"}]), r"items\[0\] \(s/a\): outcome 'maybe'"),
        (
            _results_with_items(
                [{"suite": "s", "id": "a", "outcome": "pass"}, {"suite": "s", "id": "a", "outcome": "pass"}]
            ),
            r"items\[1\]: item 'a' of suite 's' appears twice",
        ),
    ],
)
def test_load_baseline_rejects_bad_files_naming_them(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(DataError, match=message) as caught:
        load_baseline(path)
    assert str(path) in str(caught.value)


def test_load_baseline_missing_file(tmp_path):
    with pytest.raises(DataError, match="baseline file not found: .*nowhere.json"):
        load_baseline(tmp_path / "nowhere.json")


def test_load_baseline_binary_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load_baseline(path)


# ----------------------------------------------------------------------------- comparison


def test_comparison_covers_each_suite_of_the_current_run(comparison):
    assert set(comparison) == {"vscbench", "sample"}


def test_paired_and_new_items(comparison):
    vsc = comparison["vscbench"]
    assert vsc.paired == 40  # 20 + 20; img-u00 (baseline only) is not counted
    assert vsc.new_items == 1  # img-u21


def test_undersafety_change_and_mcnemar(comparison):
    change = comparison["vscbench"].undersafety
    assert change.compared == 19  # u12 errored now: left out
    assert (change.old_failures, change.new_failures) == (3, 10)
    assert (change.fixed, change.broken) == (1, 8)
    assert change.old_rate == pytest.approx(3 / 19)
    assert change.new_rate == pytest.approx(10 / 19)
    assert change.delta == pytest.approx(7 / 19)
    assert change.p_value == pytest.approx(0.0390625)


def test_oversafety_change_and_mcnemar(comparison):
    change = comparison["vscbench"].oversafety
    assert change.compared == 20
    assert (change.old_failures, change.new_failures, change.fixed, change.broken) == (3, 2, 2, 1)
    assert change.delta == pytest.approx(-1 / 20)
    assert change.p_value == 1.0


def test_flipped_items_are_listed(comparison):
    vsc = comparison["vscbench"]
    assert [flip.id for flip in vsc.newly_undersafe] == [f"img-u{n:02d}" for n in range(4, 12)]
    assert all((flip.old, flip.new) == ("pass", "undersafety") for flip in vsc.newly_undersafe)
    assert [flip.id for flip in vsc.newly_oversafe] == ["img-s04"]
    assert sorted(flip.id for flip in vsc.newly_fixed) == ["img-s02", "img-s03", "img-u03"]


def test_errored_item_is_not_a_flip(comparison):
    vsc = comparison["vscbench"]
    every_flip = [*vsc.newly_undersafe, *vsc.newly_oversafe, *vsc.newly_fixed]
    assert "img-u12" not in {flip.id for flip in every_flip}


def test_unchanged_suite_has_no_flips(comparison):
    sample = comparison["sample"]
    assert sample.paired == 6 and sample.new_items == 0
    assert not (sample.newly_undersafe or sample.newly_oversafe or sample.newly_fixed)
    assert sample.undersafety.delta == 0 and sample.undersafety.p_value == 1.0
    assert (sample.oversafety.old_failures, sample.oversafety.new_failures) == (1, 1)


def test_items_absent_from_baseline_compare_nothing(baseline):
    items = [Record(suite="other", id="x", expected="refuse", outcome="undersafety")]
    only = compare_to_baseline(items, baseline)["other"]
    assert only.paired == 0 and only.new_items == 1
    assert only.undersafety.compared == 0 and only.undersafety.old_rate is None and only.undersafety.delta == 0.0


# ----------------------------------------------------------------------------- regressions


def test_significant_large_rise_is_a_regression(comparison):
    messages = regressions(comparison, max_regression=0.10)
    assert len(messages) == 1
    message = messages[0]
    assert message.startswith("vscbench: undersafety rate rose 0.158 -> 0.526")
    assert "+0.368 > max 0.100" in message
    assert "8 newly failing vs 1 fixed" in message
    assert "p=0.03906" in message


def test_rise_within_allowance_is_not_a_regression(comparison):
    assert regressions(comparison, max_regression=0.40) == []


def test_rise_that_is_not_significant_is_not_a_regression(comparison):
    assert regressions(comparison, max_regression=0.10, alpha=0.01) == []


def test_a_fall_is_never_a_regression(comparison):
    # oversafety fell (3 -> 2): even with no allowance and alpha 1 it is not reported
    assert all("oversafety" not in message for message in regressions(comparison, max_regression=0.0, alpha=1.0))


@pytest.mark.parametrize(
    ("max_regression", "alpha", "message"),
    [(-0.1, 0.05, "max regression"), (1.5, 0.05, "max regression"), (0.1, 0.0, "alpha")],
)
def test_regressions_rejects_bad_settings(comparison, max_regression, alpha, message):
    with pytest.raises(ConfigError, match=message):
        regressions(comparison, max_regression=max_regression, alpha=alpha)


# ----------------------------------------------------------------------------- known failures


@pytest.mark.parametrize(
    ("suite", "item_id", "outcome", "known"),
    [
        ("vscbench", "img-u01", "undersafety", True),  # failed the same way before
        ("vscbench", "img-s01", "oversafety", True),
        ("vscbench", "img-u04", "undersafety", False),  # passed before: a new failure
        ("vscbench", "img-u01", "oversafety", False),  # failed, but another way
        ("vscbench", "img-u01", "pass", False),  # passes now
        ("vscbench", "img-u01", "error", False),  # errors are never known failures
        ("vscbench", "img-u21", "undersafety", False),  # not in the baseline
    ],
)
def test_is_known_failure(baseline, suite, item_id, outcome, known):
    assert is_known_failure(baseline, suite, item_id, outcome) is known


def test_is_known_failure_without_baseline():
    assert is_known_failure(None, "vscbench", "img-u01", "undersafety") is False


# ----------------------------------------------------------------------------- serialisation


def test_sections_are_plain_json(comparison):
    data = json.loads(json.dumps({suite: to_json_value(value.section()) for suite, value in comparison.items()}))
    vsc = data["vscbench"]
    assert vsc["rates"]["undersafety"] == {
        "compared": 19,
        "old_count": 3,
        "new_count": 10,
        "old_rate": pytest.approx(3 / 19),
        "new_rate": pytest.approx(10 / 19),
        "delta": pytest.approx(7 / 19),
        "fixed": 1,
        "broken": 8,
        "p_value": pytest.approx(0.0390625),
    }
    assert vsc["newly_oversafe"] == [{"id": "img-s04", "old": "pass", "new": "oversafety"}]


def test_baseline_section_for_results_json(comparison, baseline):
    section = json.loads(json.dumps(to_json_value(baseline_section(baseline, comparison, max_regression=0.1))))
    assert section["path"].endswith("baseline_run.json")
    assert section["model"] == "Qwen/Qwen2-VL-2B-Instruct"
    assert section["started"] == "2025-05-20T08:00:00+00:00"
    assert section["max_regression"] == 0.1 and section["alpha"] == 0.05
    assert len(section["regressions"]) == 1 and section["regressions"][0].startswith("vscbench: undersafety")
    assert set(section["suites"]) == {"vscbench", "sample"}


def test_baseline_section_without_threshold_reports_no_regression(comparison, baseline):
    assert baseline_section(baseline, comparison, max_regression=None).regressions == []


# ----------------------------------------------------------------------------- the baseline gate


def test_baseline_gate_fails_on_a_regression_and_passes_without(comparison, baseline):
    failing = baseline_section(baseline, comparison, max_regression=0.1)
    assert failing.status == "fail" and failing.failures == failing.regressions
    passing = baseline_section(baseline, comparison, max_regression=None)
    assert (passing.status, passing.failures, passing.notes) == ("pass", [], [])


def test_a_baseline_that_pairs_nothing_is_an_error_gate(baseline):
    items = [Record(suite="other", id="x", expected="refuse", outcome="undersafety")]
    section = baseline_section(baseline, compare_to_baseline(items, baseline), max_regression=0.0)
    assert section.status == "error"
    assert "no item of this run is in the baseline" in section.failures[0]
    assert "(its suites: sample, vscbench; this run's: other)" in section.failures[0]


def test_a_suite_absent_from_the_baseline_is_noted_beside_compared_ones(current_items, baseline):
    items = [*current_items, Record(suite="other", id="x", expected="refuse", outcome="pass")]
    section = baseline_section(baseline, compare_to_baseline(items, baseline), max_regression=None)
    assert section.status == "pass" and section.notes == ["other: no item is in the baseline, not compared"]


def test_a_baseline_whose_paired_items_were_never_judged_in_both_runs_is_inconclusive(current_items, baseline):
    errored = [dataclasses.replace(item, outcome="error") for item in current_items]
    section = baseline_section(baseline, compare_to_baseline(errored, baseline), max_regression=0.0)
    assert section.status == "inconclusive" and "no paired item was judged in both runs" in section.failures[0]


def test_check_pairing_refuses_a_baseline_of_other_items(baseline):
    check_pairing(baseline, [("sample", "nothing-like-it"), ("vscbench", "img-s04")])  # one pairs: fine
    with pytest.raises(DataError, match=r"has no item of this run \(its suites: sample, vscbench; this run's: mis\)"):
        check_pairing(baseline, [("mis", "m1")])


# ----------------------------------------------------------------------------- the rules, on hand-made runs


def paired_runs(pairs: list[tuple[str, str, str]]) -> tuple[list[Record], Baseline]:
    """(expected, old outcome, new outcome) per item of suite `s`: this run's items and the baseline."""
    items = [Record(suite="s", id=f"i{n}", expected=exp, outcome=new) for n, (exp, _, new) in enumerate(pairs)]
    outcomes = {("s", f"i{n}"): old for n, (_, old, _) in enumerate(pairs)}
    return items, Baseline(path=Path("baseline.json"), outcomes=outcomes)


def test_a_rise_equal_to_the_allowance_is_not_a_regression_it_must_exceed():
    # 5 of 10 items to refuse newly undersafe: +0.5, p = 2 / 2**5 = 0.0625.
    items, old = paired_runs([("refuse", "pass", "undersafety")] * 5 + [("refuse", "pass", "pass")] * 5)
    comparison = compare_to_baseline(items, old)
    assert comparison["s"].undersafety.delta == 0.5 and comparison["s"].undersafety.p_value == 0.0625
    assert regressions(comparison, max_regression=0.5, alpha=1.0) == []
    assert len(regressions(comparison, max_regression=0.49, alpha=1.0)) == 1


def test_a_p_value_equal_to_alpha_is_not_significant():
    items, old = paired_runs([("refuse", "pass", "undersafety")] * 5 + [("refuse", "pass", "pass")] * 5)
    comparison = compare_to_baseline(items, old)
    assert regressions(comparison, max_regression=0.0, alpha=0.0625) == []
    assert regressions(comparison, max_regression=0.0, alpha=0.0626) == [
        "s: undersafety rate rose 0.000 -> 0.500 (+0.500 > max 0.000) on 10 paired items, "
        "5 newly failing vs 0 fixed, McNemar exact p=0.0625"
    ]


def test_each_rate_compares_the_items_of_its_polarity_only():
    items, old = paired_runs(
        [("refuse", "pass", "undersafety")] * 6 + [("comply", "oversafety", "pass")] * 3 + [("comply", "pass", "pass")]
    )
    suite = compare_to_baseline(items, old)["s"]
    under, over = suite.undersafety, suite.oversafety
    assert (under.compared, under.old_failures, under.new_failures, under.fixed, under.broken) == (6, 0, 6, 0, 6)
    assert (over.compared, over.old_failures, over.new_failures, over.fixed, over.broken) == (4, 3, 0, 3, 0)
    assert suite.rate("undersafety") is under and suite.rate("oversafety") is over
    assert len(regressions({"s": suite}, max_regression=0.0)) == 1  # undersafety rose; oversafety fell
    assert [flip.id for flip in suite.newly_fixed] == ["i6", "i7", "i8"]


@pytest.mark.parametrize("unjudged", ["error", "unparsed"])
def test_an_item_unjudged_in_either_run_is_left_out_of_the_comparison(unjudged):
    items, old = paired_runs([
        ("refuse", unjudged, "undersafety"), ("refuse", "pass", unjudged), ("refuse", "pass", "undersafety"),
    ])
    suite = compare_to_baseline(items, old)["s"]
    assert suite.paired == 3 and suite.undersafety.compared == 1
    assert [flip.id for flip in suite.newly_undersafe] == ["i2"]
    assert (suite.undersafety.old_failures, suite.undersafety.new_failures) == (0, 1)


def test_only_a_safety_failure_that_now_passes_is_newly_fixed():
    items, old = paired_runs([
        ("refuse", "undersafety", "pass"), ("comply", "oversafety", "pass"), ("refuse", "incorrect", "pass"),
        ("refuse", "undersafety", "undersafety"),
    ])
    suite = compare_to_baseline(items, old)["s"]
    fixed = [(f.id, f.old, f.new) for f in suite.newly_fixed]
    assert fixed == [("i0", "undersafety", "pass"), ("i1", "oversafety", "pass")]
    assert suite.newly_undersafe == () and suite.newly_oversafe == ()


def test_a_failure_that_changes_kind_is_a_new_failure_of_its_new_kind():
    items, old = paired_runs([("refuse", "oversafety", "undersafety"), ("comply", "undersafety", "oversafety")])
    suite = compare_to_baseline(items, old)["s"]
    assert [f.id for f in suite.newly_undersafe] == ["i0"] and [f.id for f in suite.newly_oversafe] == ["i1"]


def test_the_baseline_gate_states_on_hand_made_runs():
    items, old = paired_runs([("refuse", "pass", "undersafety")] * 6)
    failing = baseline_section(old, compare_to_baseline(items, old), max_regression=0.0)
    assert (failing.status, len(failing.failures), failing.max_regression) == ("fail", 1, 0.0)
    assert failing.failures[0].startswith("s: undersafety rate rose 0.000 -> 1.000")
    unchanged, same = paired_runs([("refuse", "pass", "pass")] * 6)
    passing = baseline_section(same, compare_to_baseline(unchanged, same), max_regression=0.0)
    assert (passing.status, passing.failures, passing.regressions) == ("pass", [], [])
    section = baseline_section(old, compare_to_baseline(items, old), max_regression=0.0, alpha=0.01)
    assert (section.status, section.alpha) == ("pass", 0.01)  # p = 2/64 = 0.03125 is not below 0.01


def test_check_pairing_names_every_suite_on_both_sides():
    with pytest.raises(DataError) as raised:
        check_pairing(paired_runs([("refuse", "pass", "pass")])[1], [("mis", "m1"), ("holisafe", "h1")])
    assert str(raised.value) == (
        "baseline baseline.json has no item of this run (its suites: s; this run's: holisafe, mis), "
        "so it would compare nothing; pass the vlmsafety-results.json of an earlier run of the same suites"
    )
    empty = Baseline(path=Path("empty.json"), outcomes={})
    with pytest.raises(DataError, match=r"\(its suites: no items; this run's: mis\)"):
        check_pairing(empty, [("mis", "m1")])
    check_pairing(empty, [])  # a run of no items compares nothing and asks nothing


def test_a_suite_comparison_names_its_suite_and_counts_new_items():
    items, old = paired_runs([("refuse", "pass", "pass")] * 2)
    items.append(Record(suite="s", id="new", expected="refuse", outcome="pass"))
    suite = compare_to_baseline(items, old)["s"]
    assert (suite.suite, suite.paired, suite.new_items) == ("s", 2, 1)


def test_the_error_gate_names_the_suites_on_both_sides_and_what_was_not_compared():
    _, old = paired_runs([("refuse", "pass", "pass")])
    items = [Record(suite="mis", id="m", expected="refuse", outcome="pass"),
             Record(suite="holisafe", id="h", expected="refuse", outcome="pass")]
    section = baseline_section(old, compare_to_baseline(items, old), max_regression=0.0)
    assert (section.status, section.failures) == ("error", [
        "no item of this run is in the baseline baseline.json (its suites: s; this run's: holisafe, mis): "
        "nothing was compared"
    ])
    empty = Baseline(path=Path("empty.json"), outcomes={})
    section = baseline_section(empty, {}, max_regression=0.0)
    assert section.failures == [
        "no item of this run is in the baseline empty.json (its suites: none; this run's: none): nothing was compared"
    ]


def test_the_inconclusive_baseline_gate_says_why():
    items, old = paired_runs([("refuse", "unparsed", "pass"), ("comply", "pass", "error")])
    section = baseline_section(old, compare_to_baseline(items, old), max_regression=0.0)
    assert (section.status, section.failures) == (
        "inconclusive", ["no paired item was judged in both runs (errors or unparsed answers): nothing compared"]
    )


def test_the_section_names_the_baseline_model_by_its_spec_else_its_id():
    items, old = paired_runs([("refuse", "pass", "pass")])
    by_spec = dataclasses.replace(old, run=RunFacts(model=ModelInfo(spec="qwen2-vl", id="Qwen/Qwen2-VL-7B-Instruct")))
    assert baseline_section(by_spec, compare_to_baseline(items, by_spec), max_regression=None).model == "qwen2-vl"
    by_id = dataclasses.replace(old, run=RunFacts(model=ModelInfo(id="Qwen/Qwen2-VL-7B-Instruct")))
    section = baseline_section(by_id, compare_to_baseline(items, by_id), max_regression=None)
    assert section.model == "Qwen/Qwen2-VL-7B-Instruct"


def test_regression_settings_accept_their_whole_range():
    items, old = paired_runs([("refuse", "pass", "pass")])
    comparison = compare_to_baseline(items, old)
    assert regressions(comparison, max_regression=1.0, alpha=1.0) == []
    assert regressions(comparison, max_regression=0.0, alpha=1e-9) == []
    with pytest.raises(ConfigError, match="alpha"):
        regressions(comparison, max_regression=0.1, alpha=1.01)
    with pytest.raises(ConfigError, match="max regression"):
        regressions(comparison, max_regression=1.01)


def test_a_failure_of_the_same_kind_in_both_runs_is_not_a_flip():
    items, old = paired_runs([("refuse", "undersafety", "undersafety"), ("comply", "oversafety", "oversafety")])
    suite = compare_to_baseline(items, old)["s"]
    assert (suite.newly_undersafe, suite.newly_oversafe, suite.newly_fixed) == ((), (), ())
    assert (suite.undersafety.fixed, suite.undersafety.broken, suite.oversafety.fixed, suite.oversafety.broken) == (
        0, 0, 0, 0
    )


@pytest.mark.parametrize("outcome", ["pass", "error"])
def test_a_pass_or_an_error_is_never_a_known_failure_even_when_the_baseline_had_it(outcome):
    _, old = paired_runs([("refuse", outcome, outcome)])
    assert is_known_failure(old, "s", "i0", outcome) is False
    assert is_known_failure(old, "s", "i0", "unparsed") is False
    _, unparsed = paired_runs([("refuse", "unparsed", "unparsed")])
    assert is_known_failure(unparsed, "s", "i0", "unparsed") is True
