"""Suites by name: the registered ones (the four benchmarks, the bundled sample, and those of other
packages: registry.py), and user JSONL files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .base import Suite
from .registry import (
    SuiteOption,
    SuiteRegistration,
    option_values,
    registered_suite_class,
    registrations_by_name,
    suite_names,
    suite_registration,
)


def builtin_suite_class(name: str) -> type[Suite] | None:
    """The class of the registered suite `name` (built-in or not; its module imported now), else
    None. Kept under its old name; the registry is suites/registry.py."""
    return registered_suite_class(name)


def __getattr__(name: str) -> object:
    # `BUILTIN_SUITES`: the old name of the registry's suite names, as a read-only view.
    if name == "BUILTIN_SUITES":
        return {n: r.suite for n, r in registrations_by_name().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    registration = suite_registration(name)
    if registration is None:
        raise ConfigError(
            f"unknown suite {spec!r}; accepted: {', '.join(suite_names())}, or a path to a .jsonl suite file"
        )
    suite = registration.suite_class()()
    suite.options = option_values(registration)
    if subset and subset not in suite.subsets:
        accepted = ", ".join(f"{name}:{s}" for s in suite.subsets) or f"{name} (no subsets)"
        raise ConfigError(f"unknown subset in --safety-suite {spec!r}; accepted: {accepted}")
    return SuiteSelection(suite, subset or None)


__all__ = [
    "Suite",
    "SuiteOption",
    "SuiteRegistration",
    "SuiteSelection",
    "builtin_suite_class",
    "resolve_suite",
]
