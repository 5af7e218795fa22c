"""Judges by name. Imported lazily so that a judge's dependencies load only when it is used."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import LLM_JUDGE_NAME, Judge, RuleJudge
from .from_suites import provided

if TYPE_CHECKING:
    from .config import JudgeConfig

# The judges of no one suite, name -> "module:Class". A suite's own rule judges come with its
# registration (suites/registry.py), which hands them over (from_suites.py).
JUDGES: dict[str, str] = {
    "refusal": "pytest_vlmsafety.judges.refusal:RefusalJudge",
    # Needs the run's judging config (--judge-model, --judge-prompt, the cache): built by `from_options`.
    LLM_JUDGE_NAME: "pytest_vlmsafety.judges.llm:LlmJudge",
}


def judge_choices() -> tuple[str, ...]:
    """What --safety-judge accepts: `auto` (each suite's own), these judges and the registered
    suites' rule judges."""
    return ("auto", *JUDGES, *(name for name in provided().rule_judge_names() if name not in JUDGES))


def __getattr__(name: str) -> object:
    # `JUDGE_CHOICES`: the old name of judge_choices(), read when asked for.
    if name == "JUDGE_CHOICES":
        return judge_choices()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Judges built so far, by what configured them: the name alone for a rule judge; the name, the
# run's judging config, the base folder and the registered suites' option values for a judge
# built from the run's options (the LLM, refusal and UnsafeConcepts classifier judges).
_instances: dict[tuple[object, ...], Judge] = {}
# Judges that can be built without a run's options (their options only refine them).
_OPTIONS_OPTIONAL: frozenset[str] = frozenset({"refusal"})


def get_judge(name: str, config: JudgeConfig | None = None, base_dir: Path | None = None) -> Judge:
    """The judge registered under `name`, one instance per configuration and process. A judge
    class with a `from_options` constructor is built from the run's judging `config`: the LLM
    judge (its cache under `base_dir`, the invocation directory) and `refusal` (its
    `--refusal-phrases`). `refusal` can also be built without a config (no deployment phrases)."""
    target = JUDGES.get(name)
    if target is not None:
        module_name, _, class_name = target.partition(":")
        judge_class: Any = getattr(importlib.import_module(module_name), class_name)
    else:
        judge_class = provided().rule_judge_class(name)
        if judge_class is None:
            raise ConfigError(f"unknown judge {name!r}; accepted: {', '.join(judge_choices())}")
    built_from_options = hasattr(judge_class, "from_options")
    key: tuple[object, ...] = (name, config, base_dir, _suite_options_key()) if built_from_options else (name,)
    if key not in _instances:
        if built_from_options:
            if config is None and name not in _OPTIONS_OPTIONAL:
                raise ConfigError(
                    f"judge {name!r} is built from the run's judging config; call get_judge({name!r}, config)"
                )
            _instances[key] = judge_class.from_options(config, base_dir)
        else:
            _instances[key] = judge_class()
    return _instances[key]


def _suite_options_key() -> str:
    """The suites' own option values as part of a built judge's key: such a judge may read them
    (the classifiers' folder, HoliSafe's unreadable replies), and a later run in the same process
    may give others. As text: a suite's option value need not be hashable."""
    return repr(sorted(provided().option_values().items()))


__all__ = ["Judge", "RuleJudge", "JUDGES", "get_judge", "judge_choices"]
