"""pytest-vlmsafety: run vision-language-model safety benchmarks as pytest tests.

The public API is what `__all__` lists; everything else is internal and may change. The names
are imported when first used, so `import pytest_vlmsafety` loads no torch (nor any backend):
- your own tests: `Vlm` (the `vlm` fixture) and its `Answer`;
- the value types: `SafetyItem`, `Verdict`, `Record`, and the open-item labels `REFUSED`,
  `COMPLIED`; the results file: `ResultsDocument`;
- a benchmark of your own: `Suite`, `RuleJudge` (and `Judge`), `JudgeScheme` (and `LabelScheme`,
  `Reading`, `JUDGE_NAME`, `decided_by_rule`), bundled by a `SuiteRegistration` (with its
  `SuiteOption`s) and registered through the entry-point group `pytest_vlmsafety.suites` or the
  hook `pytest_vlmsafety_register_suites`; `register_scheme` adds a scheme for a JSONL suite.

The one module imported with the package is the suite registry (it imports no suite module and no
backend): the judges import no suite, and the registry hands them the suites' rule judges and
judge schemes when it is imported (judges/from_suites.py), so a judge asked for by name finds them
however the package was entered.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Vlm": "pytest_vlmsafety.plugin.fixture",
    "Answer": "pytest_vlmsafety.plugin.fixture",
    "SafetyItem": "pytest_vlmsafety.items",
    "Verdict": "pytest_vlmsafety.items",
    "Record": "pytest_vlmsafety.items",
    "REFUSED": "pytest_vlmsafety.items",
    "COMPLIED": "pytest_vlmsafety.items",
    "ResultsDocument": "pytest_vlmsafety.output.document",
    "Suite": "pytest_vlmsafety.suites.base",
    "SuiteRegistration": "pytest_vlmsafety.suites.registry",
    "SuiteOption": "pytest_vlmsafety.suites.registry",
    "Judge": "pytest_vlmsafety.judges.base",
    "RuleJudge": "pytest_vlmsafety.judges.base",
    "JudgeScheme": "pytest_vlmsafety.judges.schemes",
    "LabelScheme": "pytest_vlmsafety.judges.schemes",
    "Reading": "pytest_vlmsafety.judges.schemes",
    "JUDGE_NAME": "pytest_vlmsafety.judges.schemes",
    "decided_by_rule": "pytest_vlmsafety.judges.schemes",
    "register_scheme": "pytest_vlmsafety.judges.schemes",
}

if TYPE_CHECKING:
    from .items import COMPLIED, REFUSED, Record, SafetyItem, Verdict
    from .judges.base import Judge, RuleJudge
    from .judges.schemes import JUDGE_NAME, JudgeScheme, LabelScheme, Reading, decided_by_rule, register_scheme
    from .output.document import ResultsDocument
    from .plugin.fixture import Answer, Vlm
    from .suites.base import Suite
    from .suites.registry import SuiteOption, SuiteRegistration


# The registry hands the judges the suites' rule judges and schemes (see the module docstring).
from .suites import registry as _suite_registry  # noqa: E402, F401


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "COMPLIED",
    "JUDGE_NAME",
    "REFUSED",
    "Answer",
    "Judge",
    "JudgeScheme",
    "LabelScheme",
    "Reading",
    "Record",
    "ResultsDocument",
    "RuleJudge",
    "SafetyItem",
    "Suite",
    "SuiteOption",
    "SuiteRegistration",
    "Verdict",
    "Vlm",
    "__version__",
    "decided_by_rule",
    "register_scheme",
]
