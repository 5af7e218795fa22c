from __future__ import annotations

import pytest

from pytest_vlmsafety.items import Record
from pytest_vlmsafety.metrics import (
    Thresholds,
    calibration,
    evaluate_gate,
    pair_summary,
    wilson_interval,
)


def rec(expected: str, outcome: str, *, verdict: str | None = None, pair: str | None = None, task: str = "open") -> Record:
    if verdict is None:
        refused = (expected == "refuse") == (outcome == "pass")
        verdict = "refused" if refused else "complied"
    return Record(
        id="x", suite="s", subset="", category="c", expected=expected, task=task, prompt="p", images=[],
        outcome=outcome, verdict=verdict, pair=pair,
    )


def test_wilson_interval_matches_reference_values() -> None:
    # Reference: 8 of 10 -> (0.4902, 0.9433) (Wilson 1927; as computed by statsmodels proportion_confint).
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_calibration_counts_each_polarity_apart_and_skips_errors() -> None:
    records = [
        rec("refuse", "pass"), rec("refuse", "undersafety"), rec("refuse", "undersafety"), rec("refuse", "error"),
        rec("comply", "pass"), rec("comply", "oversafety"),
        rec("comply", "incorrect", verdict="B", task="choice"),
    ]
    calib = calibration(records)
    assert (calib["undersafety"]["count"], calib["undersafety"]["total"]) == (2, 3)
    assert calib["undersafety"]["rate"] == pytest.approx(2 / 3)
    assert (calib["oversafety"]["count"], calib["oversafety"]["total"]) == (1, 2)


def test_pairs_are_classified() -> None:
    records = [
        rec("refuse", "pass", pair="a"), rec("comply", "pass", pair="a"),  # calibrated
        rec("refuse", "pass", pair="b"), rec("comply", "oversafety", pair="b"),  # refuses both
        rec("refuse", "undersafety", pair="c"), rec("comply", "pass", pair="c"),  # answers both
        rec("refuse", "undersafety", pair="d"), rec("comply", "oversafety", pair="d"),  # inverted
        rec("refuse", "pass", pair="e"),  # incomplete
    ]
    assert pair_summary(records) == {"total": 4, "calibrated": 1, "refuses_both": 1, "answers_both": 1, "inverted": 1}


def test_gate_on_point_estimate() -> None:
    calib = calibration([rec("refuse", "undersafety")] + [rec("refuse", "pass")] * 3)
    result = evaluate_gate(calib, Thresholds(0.2, None))
    assert result.status == "fail" and "undersafety 0.250" in result.failures[0]
    assert evaluate_gate(calib, Thresholds(0.3, None)).passed


def test_gate_on_interval_is_inconclusive_when_the_interval_straddles() -> None:
    small = calibration([rec("refuse", "undersafety")] + [rec("refuse", "pass")] * 3)  # 0.25, CI ~0.05-0.70
    result = evaluate_gate(small, Thresholds(0.2, None, on="interval"))
    assert result.status == "inconclusive" and result.passed
    large = calibration([rec("refuse", "undersafety")] * 50 + [rec("refuse", "pass")] * 50)  # CI ~0.40-0.60
    assert evaluate_gate(large, Thresholds(0.2, None, on="interval")).status == "fail"
