"""Judges by name. Imported lazily so that a judge's dependencies load only when it is used."""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import Judge, RuleJudge

# name -> "module:Class"
JUDGES: dict[str, str] = {
    "refusal": "pytest_vlmsafety.judges.refusal:RefusalJudge",
    "vscbench-rule": "pytest_vlmsafety.suites.vscbench:VscbenchRuleJudge",
    "holisafe-rule": "pytest_vlmsafety.suites.holisafe:HoliSafeRuleJudge",
    "unsafeconcepts-rule": "pytest_vlmsafety.suites.unsafeconcepts:UnsafeConceptsRuleJudge",
}

# What --safety-judge accepts besides the registered names: `auto` picks each suite's own.
JUDGE_CHOICES: tuple[str, ...] = ("auto", *JUDGES)

_instances: dict[str, Judge] = {}


def get_judge(name: str) -> Judge:
    """The judge registered under `name` (one instance per process)."""
    if name not in _instances:
        target = JUDGES.get(name)
        if target is None:
            raise ConfigError(f"unknown judge {name!r}; accepted: {', '.join(JUDGE_CHOICES)}")
        module_name, _, class_name = target.partition(":")
        _instances[name] = getattr(importlib.import_module(module_name), class_name)()
    return _instances[name]


__all__ = ["Judge", "RuleJudge", "JUDGES", "JUDGE_CHOICES", "get_judge"]
