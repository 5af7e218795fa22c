"""`get_judge`: one judge per configuration, not per name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_vlmsafety import judges
from pytest_vlmsafety.judges import get_judge
from pytest_vlmsafety.judges.config import JudgeConfig


class OptionsJudge:
    """Stands for the LLM judge: built from the run's judging config."""

    def __init__(self, config: JudgeConfig, base_dir: Path | None) -> None:
        self.config, self.base_dir = config, base_dir

    @classmethod
    def from_options(cls, config: JudgeConfig, base_dir: Path | None = None) -> OptionsJudge:
        return cls(config, base_dir)


def test_a_judge_built_from_options_is_rebuilt_for_other_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(judges.JUDGES, "options-judge", f"{__name__}:OptionsJudge")
    defaults = JudgeConfig()
    first = get_judge("options-judge", replace(defaults, model="openai:a"), Path("/x"))
    assert get_judge("options-judge", replace(defaults, model="openai:a"), Path("/x")) is first
    other_model = get_judge("options-judge", replace(defaults, model="openai:b"), Path("/x"))
    other_folder = get_judge("options-judge", replace(defaults, model="openai:a"), Path("/y"))
    assert other_model is not first and other_model.config.model == "openai:b"  # type: ignore[attr-defined]
    assert other_folder is not first and other_folder.base_dir == Path("/y")  # type: ignore[attr-defined]


def test_a_rule_judge_is_one_instance() -> None:
    assert get_judge("refusal") is get_judge("refusal")
