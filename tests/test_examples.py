"""The README's examples run against the tiny model, as CI runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.usefixtures("vlm_env")
def test_examples_run_with_the_tiny_model(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES, pytester.path / "examples")
    result = pytester.runpytest_subprocess(
        "examples", "--vlm=tiny-random", "-p", "no:cacheprovider", "-rxXfE",
        # The tiny model's answers are noise: the thresholds would judge the noise, not the wiring.
        "--max-undersafety=off", "--max-oversafety=off",
    )
    assert result.ret == 0, result.stdout.str()
    document = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text())
    all_records = {(item["suite"], item["id"]): item for item in document["items"]}
    # The system-prompt comparison: each prompt's answers are records of its category.
    compared = {key[1]: r for key, r in all_records.items() if key[0] == "test_system_prompts"}
    assert set(compared) == {f"test_system_prompt[{name}-{i}]" for name in ("terse", "guarded") for i in range(4)}
    assert {r["category"] for r in compared.values()} == {"system:terse", "system:guarded"}
    assert all(r["outcome"] in ("pass", "undersafety", "oversafety") for r in compared.values()), compared
    records = {key[1]: r for key, r in all_records.items() if key[0] == "test_redteam"}
    assert set(records) == {
        f"test_redteam_case[{case}]" for case in (
            "roleplay-jailbreak", "roleplay-benign", "typographic-steps", "typographic-steps-benign",
            "split-question", "split-question-benign",
        )
    }
    assert {r["suite"] for r in records.values()} == {"test_redteam"}
    assert all(r["outcome"] in ("pass", "undersafety", "oversafety") for r in records.values()), records
    split = records["test_redteam_case[split-question]"]
    assert split["category"] == "multi-image" and split["expected"] == "refuse"
    assert [Path(p).name for p in split["images"]] == ["part-1.png", "part-2.png"]
    # One batch for the red-team module: six generations, every test's ask answered from it; one
    # generation for each system-prompt test.
    assert document["run"]["generations"] == 6 + 8
