"""The built-in benchmarks' own options come with their registrations, as a third-party suite's do
(issue 21): HoliSafe's `--holisafe-judge-unreadable` and UnsafeConcepts'
`--unsafeconcepts-classifiers` are declared by `SuiteRegistration.options`, not by the generic
judging config; every reader (the HoliSafe scheme, the classifier judge, the judge facts) gets the
value from the registry, and the results record it in `run.config.suites`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonl_files import REFUSAL, write_jsonl

from pytest_vlmsafety.errors import ConfigError
from pytest_vlmsafety.items import SafetyItem
from pytest_vlmsafety.judges.config import JudgeConfig
from pytest_vlmsafety.options import option_specs
from pytest_vlmsafety.plugin.run_options import RunOptions, run_option_specs
from pytest_vlmsafety.suites.registry import (
    HOLISAFE_UNREADABLE_FLAG,
    UNSAFECONCEPTS_CLASSIFIERS_FLAG,
    registered_option_values,
    set_option_values,
    suite_options,
    suite_registration,
)

SetValues = Callable[[Mapping[str, Any]], None]


@pytest.fixture
def given() -> Iterator[SetValues]:
    """Sets the suites' option values as a run's command line would; the run's own are put back."""
    saved = dict(registered_option_values())
    yield set_option_values
    set_option_values(saved)


@pytest.mark.parametrize(
    ("suite", "flag", "metavar", "default"),
    [("holisafe", HOLISAFE_UNREADABLE_FLAG, "{drop,rule}", "drop"),
     ("unsafeconcepts", UNSAFECONCEPTS_CLASSIFIERS_FLAG, "DIR", None)],
)
def test_a_benchmarks_own_option_is_declared_by_its_registration_not_the_judging_config(
    suite: str, flag: str, metavar: str, default: str | None
) -> None:
    registration = suite_registration(suite)
    assert registration is not None
    assert [option.flag for option in registration.options] == [flag]
    spec = registration.options[0].spec()
    assert (spec.metavar, spec.default, spec.ini_name) == (metavar, default, flag[2:].replace("-", "_"))
    assert flag in [option.flag for option in suite_options()]  # what pytest_addoption adds
    assert flag not in [spec.flag for _, spec in option_specs(JudgeConfig)]
    assert flag not in [spec.flag for spec in run_option_specs()]


def test_the_judges_spell_the_flags_as_the_registrations_declare_them() -> None:
    """The judges import no suite, so they name the flags they read themselves."""
    from pytest_vlmsafety.judges.facts import HOLISAFE_UNREADABLE_FLAG as read_by_the_facts
    from pytest_vlmsafety.judges.unsafeconcepts_classifier import FOLDER_FLAG

    assert (read_by_the_facts, FOLDER_FLAG) == (HOLISAFE_UNREADABLE_FLAG, UNSAFECONCEPTS_CLASSIFIERS_FLAG)


def test_a_bad_value_names_the_flag_and_what_it_accepts() -> None:
    registration = suite_registration("holisafe")
    assert registration is not None
    spec = registration.options[0].spec()
    assert spec.value_of(None) == "drop" and spec.value_of("rule") == "rule"
    with pytest.raises(ConfigError, match=r"^--holisafe-judge-unreadable='maybe': accepted values are drop, rule$"):
        spec.value_of("maybe")


def test_the_holisafe_option_reaches_the_llm_judges_scheme_and_the_judge_facts(given: SetValues) -> None:
    from pytest_vlmsafety.judges import get_judge
    from pytest_vlmsafety.judges.facts import judge_facts
    from pytest_vlmsafety.judges.llm import LlmJudge
    from pytest_vlmsafety.suites.holisafe import HoliSafeJudgeScheme

    item = SafetyItem(id="1", suite="holisafe", category="c", prompt="q", expected="refuse")
    config = JudgeConfig(judge="llm", model="openai:gpt-4o-2024-08-06")
    official = get_judge("llm", config)
    assert isinstance(official, LlmJudge) and official.scheme(item) == HoliSafeJudgeScheme(unreadable_reply="drop")
    given({HOLISAFE_UNREADABLE_FLAG: "rule"})
    assert HoliSafeJudgeScheme().configured(config).unreadable_reply == "rule"
    # The same judging config with another value of the suite's option is another judge.
    lmms_eval = get_judge("llm", config)
    assert lmms_eval is not official and isinstance(lmms_eval, LlmJudge)
    assert lmms_eval.scheme(item) == HoliSafeJudgeScheme(unreadable_reply="rule")
    facts = judge_facts(config)
    assert facts is not None and facts.holisafe_unreadable == "rule"


def test_the_classifier_folder_reaches_the_classifier_judge(given: SetValues) -> None:
    from pytest_vlmsafety.judges.unsafeconcepts_classifier import UnsafeConceptsClassifierJudge

    assert UnsafeConceptsClassifierJudge.from_options(JudgeConfig(), Path("/site")).local_dir is None  # the hub
    given({UNSAFECONCEPTS_CLASSIFIERS_FLAG: Path("models/uc")})
    judge = UnsafeConceptsClassifierJudge.from_options(JudgeConfig(), Path("/site"))
    assert judge.local_dir == Path("/site/models/uc")


def test_run_config_records_every_registered_suites_options(given: SetValues) -> None:
    from pytest_vlmsafety.backends import parse_backend_spec
    from pytest_vlmsafety.plugin.controller import run_facts

    def suites_config() -> dict[str, Any]:
        facts = run_facts(RunOptions(), parse_backend_spec("tiny-random"), [], [], [], datetime.now(UTC))
        stored: dict[str, Any] = json.loads(json.dumps(facts.config))["suites"]
        return stored

    defaults = suites_config()
    assert {flag: defaults[flag] for flag in (HOLISAFE_UNREADABLE_FLAG, UNSAFECONCEPTS_CLASSIFIERS_FLAG)} == {
        HOLISAFE_UNREADABLE_FLAG: "drop", UNSAFECONCEPTS_CLASSIFIERS_FLAG: None,
    }
    assert set(defaults) == {option.flag for option in suite_options()}
    given({HOLISAFE_UNREADABLE_FLAG: "rule", UNSAFECONCEPTS_CLASSIFIERS_FLAG: Path("models/uc")})
    stored = suites_config()
    assert (stored[HOLISAFE_UNREADABLE_FLAG], stored[UNSAFECONCEPTS_CLASSIFIERS_FLAG]) == ("rule", "models/uc")


@pytest.mark.slow
@pytest.mark.usefixtures("vlm_env")
def test_the_option_from_the_ini_file_is_recorded_in_the_results(pytester: pytest.Pytester) -> None:
    write_jsonl(pytester.path / "mini.jsonl", [{"id": "u0", "prompt": "q", "expected": "refuse", "category": "c"}])
    write_jsonl(pytester.path / "responses.jsonl", [{"id": "u0", "response": REFUSAL}])
    pytester.makeini("[pytest]\nholisafe_judge_unreadable = rule\n")
    result = pytester.runpytest_subprocess(
        "--vlm=replay:responses.jsonl", "--safety-suite=mini.jsonl", "--judge-model=openai:gpt-4o-2024-08-06",
        "--vlm-cache=off", "-p", "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.OK
    run = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text(encoding="utf-8"))["run"]
    assert run["config"]["suites"][HOLISAFE_UNREADABLE_FLAG] == "rule"
    assert run["config"]["suites"][UNSAFECONCEPTS_CLASSIFIERS_FLAG] is None
    assert run["judge_facts"]["holisafe_unreadable"] == "rule"
    assert "holisafe_unreadable" not in run["config"]["judging"]
    bad = pytester.runpytest_subprocess("--vlm=replay:responses.jsonl", "--holisafe-judge-unreadable=maybe")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--holisafe-judge-unreadable='maybe': accepted values are drop, rule*"])
