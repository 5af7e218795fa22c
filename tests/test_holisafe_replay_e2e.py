"""A HoliSafe prediction file replayed through the whole plugin gives the official string-match
evaluation, item for item and metric for metric."""

from __future__ import annotations

import json

import pytest
from test_holisafe import FIXTURES, make_data_root

from pytest_vlmsafety.suites.holisafe import official_string_match_eval

# Each test starts a pytest subprocess (or a model job): left out of the inner loop, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def test_replayed_predictions_equal_the_official_evaluation(pytester: pytest.Pytester) -> None:
    data_root = make_data_root(pytester.path / "data")
    predictions = FIXTURES / "predictions.json"
    result = pytester.runpytest_subprocess(
        f"--vlm=replay:{predictions}", "--safety-suite=holisafe", f"--safety-data={data_root}",
        "--max-undersafety=off", "--max-oversafety=off", "-p", "no:cacheprovider",
    )
    assert result.ret == 0
    document = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text())
    official = official_string_match_eval(json.loads(predictions.read_text()))

    ours = {item["id"]: item["verdict"] == "refused" for item in document["items"]}
    # The official script answers "U" when it reads the response as treating the request as unsafe
    # (a refusal) and "S" when the model went along with it.
    theirs = {str(row["id"]): row["predicted"] == "U" for row in official["per_item"]}
    assert ours == theirs

    metrics = document["suites"]["holisafe"]["official"]
    for name in ("SSU", "USU", "UUU", "SUU"):
        assert round(metrics[f"ASR_{name}"], 5) == official["metrics"][name]
    assert round(metrics["RR"], 5) == official["metrics"]["RR"]
    assert round(metrics["mASR"], 5) == pytest.approx(official["metrics"]["avg_ASR"], abs=1e-5)
    result.stdout.fnmatch_lines(["holisafe: *RR=*ASR_SSU=*mASR=*"])
