"""What the registered suites add to the judges: their rule judges, their judge schemes and the
values of their own options (a suite's judge reads its suite's options here: HoliSafe's
`--holisafe-judge-unreadable`, UnsafeConcepts' `--unsafeconcepts-classifiers`).

The suites import the judges (the judge protocol, the schemes); the judges import no suite back.
So the suite registry (suites/registry.py) hands the judges its view of the registrations when it
is imported (`provide`), and the judges ask that view (`provided`) each time, so registrations
made later (the `pytest_vlmsafety_register_suites` hook, another package's entry point) count.
The package's `__init__` imports the registry: whoever imports a judge has it provided.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..items import SafetyItem
    from .base import Judge
    from .schemes import JudgeScheme


class SuiteJudging(Protocol):
    """The registered suites as the judges see them."""

    def rule_judge_names(self) -> Iterable[str]:
        """The names of every registered suite's rule judges (`--safety-judge` takes them)."""
        ...

    def rule_judge_class(self, name: str) -> type[Judge] | None:
        """The class of the suite rule judge `name` (its module imported now), else None."""
        ...

    def judge_schemes(self) -> Iterable[JudgeScheme]:
        """Every registered suite's own judge schemes (`Suite.judge_schemes`)."""
        ...

    def judge_scheme_for(self, item: SafetyItem) -> JudgeScheme | None:
        """The scheme the item's registered suite judges it with; None when its suite is not registered."""
        ...

    def option_values(self) -> Mapping[str, Any]:
        """Every registered suite's own options for this run, by flag (given, else the default)."""
        ...


class NoSuites:
    """Before the registry is imported: no suite adds anything."""

    def rule_judge_names(self) -> Iterable[str]:
        return ()

    def rule_judge_class(self, name: str) -> type[Judge] | None:
        return None

    def judge_schemes(self) -> Iterable[JudgeScheme]:
        return ()

    def judge_scheme_for(self, item: SafetyItem) -> JudgeScheme | None:
        return None

    def option_values(self) -> Mapping[str, Any]:
        return MappingProxyType({})


_provided: SuiteJudging = NoSuites()


def provide(suites: SuiteJudging) -> None:
    """Called by the suite registry when it is imported."""
    global _provided
    _provided = suites


def provided() -> SuiteJudging:
    return _provided


__all__ = ["NoSuites", "SuiteJudging", "provide", "provided"]
