"""Options declared once, as fields of typed configs that live next to the code that uses them.

A config is a frozen dataclass; each of its fields that a user sets is declared with `option()`,
which holds the flag, the help, the default as the ini file would spell it, and the function that
turns the given text into the field's value. From that one declaration come the command-line flag,
the ini key (the flag without dashes, `--vlm-batch-size` -> `vlm_batch_size`), the default, the
parsed value and the field of the results document (`run.config`, written by `config_json`), as
vLLM derives its command line from its config dataclasses. A config declared once can serve twice
under two prefixes (`nested`): the model under test's loading config is `--vlm-dtype`, the judge
model's `--judge-dtype`. Checks that span fields of one config sit in its `__post_init__`, so a
config built in a test is checked as one parsed from the command line is.

The command line wins over the ini file. Parsing is pure: it takes a lookup function, so it is
testable without a pytest config. Written here rather than with a CLI library: pytest owns the
parser (argparse, through `pytest_addoption`) and the ini file, so what is needed is the mapping
from dataclass fields to pytest's options, a few dozen lines.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import ConfigError

OptionKind = Literal["value", "append", "flag"]
# Turns the given text (a list of texts for an `append` option) into the field's value; the
# first argument is the flag as given, for the message of a ConfigError.
Parser = Callable[[str, Any], Any]
C = TypeVar("C")
N = TypeVar("N", int, float)

_OPTION = "vlmsafety_option"
_NESTED = "vlmsafety_nested"


@dataclass(frozen=True)
class OptionSpec:
    """One command-line option and its ini key. `flag` and `help` may hold `{prefix}` and
    `{model}` (filled in by `nested`)."""

    flag: str
    help: str
    metavar: str | None = None
    default: str | None = None  # as the ini file would spell it
    kind: OptionKind = "value"
    parse: Parser | None = None

    @property
    def ini_name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def dest(self) -> str:
        return "vlmsafety_" + self.ini_name

    def value_of(self, raw: object) -> Any:
        """The field's value for what the command line or ini file gave (None: not given)."""
        if self.kind == "flag":
            return bool(raw)
        if self.kind == "append":
            texts = raw if isinstance(raw, list) else str(raw).split() if raw else []
            values = tuple(str(text) for text in texts if text)
            return self.parse(self.flag, values) if self.parse else values
        text = self.default if raw in (None, "") else str(raw)
        if text is None:
            return None
        return self.parse(self.flag, text) if self.parse else text

    def filled(self, prefix: str, model: str) -> OptionSpec:
        return dataclasses.replace(
            self, flag=self.flag.format(prefix=prefix), help=self.help.format(model=model, prefix=prefix)
        )


def option(
    flag: str,
    help: str,
    metavar: str | None = None,
    *,
    default: str | None = None,
    kind: OptionKind = "value",
    parse: Parser | None = None,
    parse_default: bool = True,
) -> Any:
    """A config field set by a command-line option and an ini key. Its Python default is its
    `default` text parsed, so the default is stated once; `parse_default=False` takes the text as
    it is, for a parser that needs the run (the registered judges)."""
    spec = OptionSpec(flag, help, metavar, default, kind, parse)
    value = spec.value_of(None) if parse_default else default
    return field(default=value, metadata={_OPTION: spec})


def nested(config: type[Any], prefix: str, model: str) -> Any:
    """A field holding another config whose options are declared with `{prefix}` in their flags:
    `nested(LoadConfig, "vlm", "the model under test")` gives `--vlm-dtype`, ...; `model` names, in
    the help, what the options are about."""
    return field(default_factory=config, metadata={_NESTED: (prefix, model)})


def option_specs(config: type[Any], prefix: str = "", model: str = "") -> Iterator[tuple[str, OptionSpec]]:
    """(field path, option) for every option of `config` and its nested configs, in declaration
    order."""
    for item in dataclasses.fields(config):
        if _OPTION in item.metadata:
            yield item.name, _declared_spec(item, prefix, model)
        elif _NESTED in item.metadata:
            inner_prefix, inner_model = item.metadata[_NESTED]
            inner_type = _field_type(config, item.name)
            for path, spec in option_specs(inner_type, inner_prefix, inner_model):
                yield f"{item.name}.{path}", spec


Lookup = Callable[[OptionSpec], "str | list[str] | bool | None"]


def parse_config(config: type[C], lookup: Lookup, prefix: str = "", model: str = "") -> C:
    """`config` built from what `lookup` gives for each of its options (None: not given)."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(config):  # type: ignore[arg-type]
        if _OPTION in item.metadata:
            spec = _declared_spec(item, prefix, model)
            values[item.name] = spec.value_of(lookup(spec))
        elif _NESTED in item.metadata:
            inner_prefix, inner_model = item.metadata[_NESTED]
            values[item.name] = parse_config(_field_type(config, item.name), lookup, inner_prefix, inner_model)
    return config(**values)


def _declared_spec(item: dataclasses.Field[Any], prefix: str, model: str) -> OptionSpec:
    """The option a config field declares, its flag and help filled in for a nested config."""
    spec: OptionSpec = item.metadata[_OPTION]
    return spec.filled(prefix, model) if "{prefix}" in spec.flag else spec


def _field_type(config: type[Any], name: str) -> type[Any]:
    import typing

    hint = typing.get_type_hints(config)[name]
    assert dataclasses.is_dataclass(hint), f"{config.__name__}.{name} is nested: it must be a config class"
    return hint  # type: ignore[return-value]


def config_json(config: object) -> dict[str, Any]:
    """A config as it is, as a JSON object: for `run.config` of the results document."""
    assert dataclasses.is_dataclass(config) and not isinstance(config, type)
    return {item.name: json_value(getattr(config, item.name)) for item in dataclasses.fields(config)}


def json_value(value: Any) -> Any:
    """A config's value (or a suite option's) as JSON: configs as objects, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_json(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def check_no_empty_values(specs: Sequence[OptionSpec], command_line: Callable[[OptionSpec], object]) -> None:
    """An option given an empty value on the command line (`--vlm=`, `--safety-baseline=$UNSET`)
    is a usage error, not "not given": in CI an unset variable expands to nothing, and reading
    that as the default ran no model (exit 0), dropped the baseline gate or the system prompt.
    `command_line` gives each option's command-line value only (None when not given); an empty
    ini value stays "not set", as pytest reads it."""
    for spec in specs:
        value = command_line(spec)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            raise ConfigError(
                f"{spec.flag} was given an empty value (an unset variable in a CI script?); give it a value, "
                "or leave the option out to use its default"
            )


# ----------------------------------------------------------------------------- value parsers
# Each takes the flag (for the message) and the given text.


def bounded(convert: Callable[[str], N], within: Callable[[N], bool], expected: str) -> Callable[[str, str], N]:
    """A number `convert` reads and `within` accepts (nan is never within), else a ConfigError
    saying what was `expected`."""

    def parse(flag: str, raw: str) -> N:
        try:
            value: N | None = convert(raw)
        except ValueError:
            value = None
        if value is None or not within(value):
            raise ConfigError(f"{flag}={raw!r}: expected {expected}")
        return value

    return parse


positive_int = bounded(int, lambda value: value >= 1, "a positive whole number")
whole_int = bounded(int, lambda value: value >= 0, "a whole number, 0 or more")
seconds = bounded(float, lambda value: value > 0, "a number of seconds above 0")


def any_int(flag: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{flag}={raw!r}: expected a whole number") from None


def rate(flag: str, raw: str) -> float | None:
    """A rate between 0 and 1, or None for `off`."""
    if raw.strip().lower() in ("none", "off", ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{flag}={raw!r}: expected a rate between 0 and 1, or 'off'") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{flag}={raw!r}: expected a rate between 0 and 1, or 'off'")
    return value


def limit(flag: str, raw: str) -> int | None:
    """A positive bound, or None for `off`."""
    if raw.strip().lower() in ("off", "none"):
        return None
    try:
        return positive_int(flag, raw)
    except ConfigError:
        raise ConfigError(f"{flag}={raw!r}: expected a positive whole number, or 'off'") from None


def choice(accepted: Sequence[str]) -> Parser:
    def parse(flag: str, raw: str) -> str:
        if raw not in accepted:
            raise ConfigError(f"{flag}={raw!r}: accepted values are {', '.join(accepted)}")
        return raw

    return parse


def path(flag: str, raw: str) -> Path:
    return Path(raw).expanduser()


def paths(flag: str, raw: Sequence[str]) -> tuple[Path, ...]:
    return tuple(Path(text).expanduser() for text in raw)


def json_object(flag: str, raw: str) -> str | None:
    """A JSON object, kept as canonical JSON (hashable, and one spelling per setting in a cache
    key); None for an empty object."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag}={raw!r}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{flag}={raw!r}: expected a JSON object of processor settings, e.g. '{{\"max_pixels\": 1003520}}'"
        )
    return json.dumps(value, sort_keys=True) if value else None
