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


def test_the_judges_find_the_suites_rule_judges_and_schemes_without_importing_a_suite() -> None:
    """The judges import no suite (import-linter's no-cycles contract): the suite registry hands
    them its rule judges and schemes, and it is loaded with the package, so a process that
    imports only the judges still finds them."""
    import subprocess
    import sys

    code = (
        "from pytest_vlmsafety.items import SafetyItem\n"
        "from pytest_vlmsafety.judges import get_judge, judge_choices\n"
        "from pytest_vlmsafety.judges.schemes import all_schemes, scheme_for\n"
        "item = SafetyItem(id='x', suite='holisafe', category='c', prompt='p', expected='refuse')\n"
        "print(type(get_judge('vscbench-rule')).__name__, 'holisafe-rule' in judge_choices(),\n"
        "      'holisafe' in all_schemes(), scheme_for(item).name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["VscbenchRuleJudge", "True", "True", "holisafe"]
