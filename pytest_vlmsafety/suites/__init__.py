"""Suites by name: the four benchmarks, the bundled sample, and user JSONL files."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .base import Suite

# name -> "module:Class"; imported only when selected.
BUILTIN_SUITES: dict[str, str] = {
    "sample": "pytest_vlmsafety.suites.sample:SampleSuite",
    "vscbench": "pytest_vlmsafety.suites.vscbench:VscbenchSuite",
    "holisafe": "pytest_vlmsafety.suites.holisafe:HoliSafeSuite",
    "unsafeconcepts": "pytest_vlmsafety.suites.unsafeconcepts:UnsafeConceptsSuite",
    "mis": "pytest_vlmsafety.suites.mis:MisSuite",
}


def builtin_suite_class(name: str) -> type[Suite] | None:
    """The class of the built-in suite `name` (its module imported now), else None."""
    target = BUILTIN_SUITES.get(name)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    suite_class: type[Suite] = getattr(importlib.import_module(module_name), class_name)
    return suite_class


@dataclass(frozen=True)
class SuiteSelection:
    """A suite and the subset the user asked for (`vscbench:text/figstep`)."""

    suite: Suite
    subset: str | None

    @property
    def label(self) -> str:
        return f"{self.suite.name}:{self.subset}" if self.subset else self.suite.name


def resolve_suite(spec: str) -> SuiteSelection:
    """`name`, `name:subset`, or a path to a `.jsonl` suite file."""
    spec = spec.strip()
    if spec.endswith(".jsonl") or Path(spec).suffix == ".jsonl":
        from .jsonl import JsonlSuite

        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"--safety-suite {spec!r}: no such suite file")
        return SuiteSelection(JsonlSuite(path), None)
    name, _, subset = spec.partition(":")
    suite_class = builtin_suite_class(name)
    if suite_class is None:
        raise ConfigError(
            f"unknown suite {spec!r}; accepted: {', '.join(BUILTIN_SUITES)}, or a path to a .jsonl suite file"
        )
    suite = suite_class()
    if subset and subset not in suite.subsets:
        accepted = ", ".join(f"{name}:{s}" for s in suite.subsets) or f"{name} (no subsets)"
        raise ConfigError(f"unknown subset in --safety-suite {spec!r}; accepted: {accepted}")
    return SuiteSelection(suite, subset or None)


__all__ = ["BUILTIN_SUITES", "Suite", "SuiteSelection", "builtin_suite_class", "resolve_suite"]
