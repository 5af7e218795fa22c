"""The suite registry: one registration per benchmark, the built-in ones and any other package's.

A `SuiteRegistration` bundles everything a benchmark adds: its suite class, its rule judges,
its hub dataset and its own options; the LLM judge's schemes come with the suite class
(`Suite.judge_schemes`). The registry hands the judges the rule judges and schemes when it is
imported (`RegisteredSuiteJudging`; the judges import no suite). Registrations are found in three places, in this order:
- the built-in benchmarks (`BUILTIN_REGISTRATIONS` below);
- the entry-point group `pytest_vlmsafety.suites` (read with importlib.metadata): an installed
  package names an object that is a registration or a sequence of them, so `pip install` is all
  it takes;
- the `pytest_vlmsafety_register_suites` hook (hooks.py), for a conftest.py or a plugin; its
  registrations hold for the pytest run that asked (set and cleared by plugin.py).
Classes are named as `"module:Class"` (or given as classes): a suite's module is imported only
when the suite is used. No pytest import here.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError
from ..judges.from_suites import provide
from ..options import OptionSpec

if TYPE_CHECKING:
    from ..items import SafetyItem
    from ..judges.base import Judge
    from ..judges.schemes import JudgeScheme
    from .base import Suite

ENTRY_POINT_GROUP = "pytest_vlmsafety.suites"
# The built-in suites' manifests (the top-level suites/ folder, shipped in the wheel).
MANIFEST_PACKAGE = "pytest_vlmsafety.bundled_suites"


@dataclass(frozen=True)
class SuiteOption:
    """An option of a suite's own: `flag` on the command line, `ini_name` in the ini file (the
    flag without its dashes, `-` as `_`), `default` when neither is given, `convert` applied to
    the text given (a ValueError naming what it expects becomes a usage error naming the flag
    and the text given), `metavar` what `--help` shows after the flag. The suite reads the value
    as `self.options[flag]`; the run records it in `run.config.suites`."""

    flag: str
    help: str
    default: str | None = None
    convert: Callable[[str], Any] = str
    metavar: str = "VALUE"

    def __post_init__(self) -> None:
        if not self.flag.startswith("--") or len(self.flag) < 3 or " " in self.flag:
            raise ConfigError(f"suite option {self.flag!r}: a flag is written --name")

    def spec(self) -> OptionSpec:
        """The option as the plugin adds it to pytest, the same way as its own (options.py)."""
        return OptionSpec(self.flag, self.help, self.metavar, self.default, parse=lambda flag, raw: self.value(raw))

    def value(self, given: str | None) -> Any:
        """The option's value from the text given (None: the default; None without one)."""
        text = self.default if given is None else given
        if text is None:
            return None
        try:
            return self.convert(text)
        except ValueError as exc:
            raise ConfigError(f"{self.flag}={text!r}: {exc}") from None


def one_of(*accepted: str) -> Callable[[str], str]:
    """A `SuiteOption.convert` that takes one of `accepted` texts (the message lists them)."""

    def convert(text: str) -> str:
        if text not in accepted:
            raise ValueError(f"accepted values are {', '.join(accepted)}")
        return text

    return convert


def folder(text: str) -> Path:
    """A `SuiteOption.convert` for a folder (`~` expanded; relative to where pytest runs)."""
    return Path(text).expanduser()


@dataclass(frozen=True)
class SuiteRegistration:
    """One benchmark: its name (as `--safety-suite` takes it), its suite class, its rule judges by
    the name `--safety-judge` and `Suite.default_judge` use, the hub dataset `--safety-download`
    fetches (None: not on the hub), and its own options."""

    name: str
    suite: str | type[Suite]
    judges: Mapping[str, str | type[Judge]] = field(default_factory=dict)
    hub_repo_id: str | None = None
    options: tuple[SuiteOption, ...] = ()

    def suite_class(self) -> type[Suite]:
        suite_class: type[Suite] = _load(self.suite, f"suite {self.name!r}")
        return suite_class


def _load(target: str | type[Any], what: str) -> Any:
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what}: cannot import {target!r} ({exc})") from None


def suite_manifest(suite_name: str) -> dict[str, Any]:
    """The bundled manifest `suites/<suite_name>.toml`, or {} when the suite has none."""
    resource = resources.files(MANIFEST_PACKAGE) / f"{suite_name}.toml"
    if not resource.is_file():
        return {}
    try:
        return tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"suite manifest {resource}: not valid TOML ({exc})") from None


def manifest_repo_id(suite_name: str) -> str:
    """A built-in suite's hub dataset, whose one home is its manifest (`[hub] repo_id`)."""
    hub = suite_manifest(suite_name).get("hub")
    repo_id = hub.get("repo_id") if isinstance(hub, dict) else None
    if not isinstance(repo_id, str) or not repo_id:
        raise DataError(f"suite manifest {suite_name}.toml: no [hub] repo_id")
    return repo_id


# The built-in benchmarks' own options, declared here (not in their modules) because pytest adds
# them at start-up, before any suite module is imported. The judges that read them (the LLM
# judge's HoliSafe scheme, the UnsafeConcepts classifiers, the judge facts) get their values
# from the registry (`registered_option_values`, handed over by `RegisteredSuiteJudging`).
HOLISAFE_UNREADABLE_FLAG = "--holisafe-judge-unreadable"
# What an unreadable HoliSafe LLM-judge reply does: the official evaluation drops the item from
# the denominators; lmms-eval lets the string-matching rule judge it.
HOLISAFE_UNREADABLE: tuple[str, ...] = ("drop", "rule")
UNSAFECONCEPTS_CLASSIFIERS_FLAG = "--unsafeconcepts-classifiers"


def _holisafe_options() -> tuple[SuiteOption, ...]:
    return (
        SuiteOption(
            HOLISAFE_UNREADABLE_FLAG,
            "an unreadable HoliSafe LLM-judge reply: drop (the official evaluation: left out of the metrics) or "
            "rule (lmms-eval: the string-matching rule decides) (default: drop)",
            default="drop", convert=one_of(*HOLISAFE_UNREADABLE), metavar="{drop,rule}",
        ),
    )


def _unsafeconcepts_options() -> tuple[SuiteOption, ...]:
    return (
        SuiteOption(
            UNSAFECONCEPTS_CLASSIFIERS_FLAG,
            "folder holding UnsafeConcepts' official answer classifiers (perception_classifier/epoch_10.pt, "
            "alignment_classifier/epoch_10.pt, roberta-base/) for an air-gapped site (default: the hub; the rule "
            "parsers judge when neither can be loaded)",
            convert=folder, metavar="DIR",
        ),
    )


def _builtin_registrations() -> tuple[SuiteRegistration, ...]:
    here = "pytest_vlmsafety.suites"
    return (
        SuiteRegistration("sample", f"{here}.sample:SampleSuite"),
        SuiteRegistration(
            "vscbench", f"{here}.vscbench:VscbenchSuite", judges={"vscbench-rule": f"{here}.vscbench:VscbenchRuleJudge"}
        ),
        SuiteRegistration(
            "holisafe",
            f"{here}.holisafe:HoliSafeSuite",
            judges={"holisafe-rule": f"{here}.holisafe:HoliSafeRuleJudge"},
            hub_repo_id=manifest_repo_id("holisafe"),
            options=_holisafe_options(),
        ),
        SuiteRegistration(
            "unsafeconcepts",
            f"{here}.unsafeconcepts:UnsafeConceptsSuite",
            judges={
                "unsafeconcepts-rule": f"{here}.unsafeconcepts:UnsafeConceptsRuleJudge",
                # The official RoBERTa answer classifiers (from the hub or --unsafeconcepts-classifiers DIR).
                "unsafeconcepts-classifier": (
                    "pytest_vlmsafety.judges.unsafeconcepts_classifier:UnsafeConceptsClassifierJudge"
                ),
            },
            hub_repo_id=manifest_repo_id("unsafeconcepts"),
            options=_unsafeconcepts_options(),
        ),
        SuiteRegistration("mis", f"{here}.mis:MisSuite", hub_repo_id=manifest_repo_id("mis")),
    )


_builtin: tuple[SuiteRegistration, ...] | None = None
_installed: tuple[SuiteRegistration, ...] | None = None
_from_hook: tuple[SuiteRegistration, ...] = ()
_option_values: Mapping[str, Any] = MappingProxyType({})


def _as_registrations(value: Any, where: str) -> list[SuiteRegistration]:
    values = [value] if isinstance(value, SuiteRegistration) else value
    if not isinstance(values, Iterable) or isinstance(values, (str, bytes)):
        raise ConfigError(f"{where}: expected a SuiteRegistration or a list of them, got {type(value).__name__}")
    found = list(values)
    for entry in found:
        if not isinstance(entry, SuiteRegistration):
            raise ConfigError(f"{where}: expected a SuiteRegistration, got {type(entry).__name__}")
    return found


def installed_registrations() -> tuple[SuiteRegistration, ...]:
    """The registrations of installed packages (entry-point group `pytest_vlmsafety.suites`),
    read once per process."""
    global _installed
    if _installed is None:
        found: list[SuiteRegistration] = []
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            where = f"entry point {entry_point.name!r} ({entry_point.value}) of group {ENTRY_POINT_GROUP}"
            try:
                loaded = entry_point.load()
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"{where}: cannot load it ({exc})") from None
            found.extend(_as_registrations(loaded, where))
        _installed = tuple(found)
    return _installed


def set_hook_registrations(registrations: Iterable[Any]) -> None:
    """The registrations the `pytest_vlmsafety_register_suites` hook returned for this run
    (replacing those of an earlier run in the same process)."""
    global _from_hook
    _from_hook = tuple(_as_registrations(list(registrations), "pytest_vlmsafety_register_suites"))
    registrations_by_name()  # a clash is refused now, as a usage error


def set_option_values(values: Mapping[str, Any]) -> None:
    """The values of the suites' own options for this run, by flag."""
    global _option_values
    _option_values = MappingProxyType(dict(values))


def option_values(registration: SuiteRegistration) -> Mapping[str, Any]:
    """A suite's own options for this run by flag: the values given, else the defaults."""
    return MappingProxyType(
        {option.flag: _option_values.get(option.flag, option.value(None)) for option in registration.options}
    )


def registered_option_values() -> Mapping[str, Any]:
    """Every registered suite's own options for this run by flag, as each suite sees them (the
    values given, else the defaults): what the judges read (`RegisteredSuiteJudging`) and what
    the results record (`run.config.suites`)."""
    return MappingProxyType(
        {flag: value for r in registrations_by_name().values() for flag, value in option_values(r).items()}
    )


def registrations_by_name() -> dict[str, SuiteRegistration]:
    """Every registration by suite name: built-in, installed, then from the hook. A name (or a
    judge name) registered twice by different registrations is refused."""
    global _builtin
    if _builtin is None:
        _builtin = _builtin_registrations()
    by_name: dict[str, SuiteRegistration] = {}
    judge_owner: dict[str, str] = {}
    for registration in (*_builtin, *installed_registrations(), *_from_hook):
        taken = by_name.get(registration.name)
        if taken is not None and taken != registration:
            raise ConfigError(
                f"suite {registration.name!r} is registered twice ({taken.suite!r}, {registration.suite!r})"
            )
        by_name[registration.name] = registration
        for judge in registration.judges:
            owner = judge_owner.setdefault(judge, registration.name)
            if owner != registration.name:
                raise ConfigError(f"judge {judge!r} is registered by suites {owner!r} and {registration.name!r}")
    return by_name


def suite_registration(name: str) -> SuiteRegistration | None:
    return registrations_by_name().get(name)


def suite_names() -> tuple[str, ...]:
    return tuple(registrations_by_name())


def registered_suite_class(name: str) -> type[Suite] | None:
    """The class of the registered suite `name` (its module imported now), else None."""
    registration = suite_registration(name)
    return registration.suite_class() if registration is not None else None


def suite_judges() -> dict[str, str | type[Judge]]:
    """The rule judges of every registered suite, by name."""
    return {name: target for r in registrations_by_name().values() for name, target in r.judges.items()}


def suite_judge_class(name: str) -> type[Judge] | None:
    target = suite_judges().get(name)
    if target is None:
        return None
    judge_class: type[Judge] = _load(target, f"judge {name!r}")
    return judge_class


class RegisteredSuiteJudging:
    """The registrations as the judges see them (judges/from_suites.py): read at each call, so a
    registration made later counts."""

    def rule_judge_names(self) -> Iterable[str]:
        return suite_judges()

    def rule_judge_class(self, name: str) -> type[Judge] | None:
        return suite_judge_class(name)

    def judge_schemes(self) -> Iterable[JudgeScheme]:
        return [
            scheme for registration in registrations_by_name().values()
            for scheme in registration.suite_class().judge_schemes
        ]

    def judge_scheme_for(self, item: SafetyItem) -> JudgeScheme | None:
        suite_class = registered_suite_class(item.suite)
        return suite_class.judge_scheme_for(item) if suite_class is not None else None

    def option_values(self) -> Mapping[str, Any]:
        return registered_option_values()


# The judges import no suite: the registry hands them the suites' rule judges and schemes.
provide(RegisteredSuiteJudging())


def suite_options() -> tuple[SuiteOption, ...]:
    """The options of the built-in and installed suites (known when pytest adds its options;
    a conftest's suite declares its options with its own pytest_addoption)."""
    global _builtin
    if _builtin is None:
        _builtin = _builtin_registrations()
    return tuple(option for r in (*_builtin, *installed_registrations()) for option in r.options)


def hub_suites() -> tuple[str, ...]:
    """The suites whose data `--safety-download` fetches from the hub."""
    return tuple(name for name, r in registrations_by_name().items() if r.hub_repo_id)


__all__ = [
    "ENTRY_POINT_GROUP",
    "HOLISAFE_UNREADABLE",
    "HOLISAFE_UNREADABLE_FLAG",
    "UNSAFECONCEPTS_CLASSIFIERS_FLAG",
    "RegisteredSuiteJudging",
    "SuiteOption",
    "SuiteRegistration",
    "hub_suites",
    "folder",
    "installed_registrations",
    "manifest_repo_id",
    "one_of",
    "suite_manifest",
    "option_values",
    "registered_option_values",
    "registered_suite_class",
    "registrations_by_name",
    "set_hook_registrations",
    "set_option_values",
    "suite_judge_class",
    "suite_judges",
    "suite_names",
    "suite_options",
    "suite_registration",
]
