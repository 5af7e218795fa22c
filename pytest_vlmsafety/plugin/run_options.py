"""The run's options: one typed config per concern, each declared next to the code that uses it.

| config | declared in | options |
| --- | --- | --- |
| `ModelConfig` | backends/config.py | `--vlm`, `--vlm-devices`, the model's loading (`--vlm-dtype`, ...) |
| `GenerationConfig` | backends/config.py | decoding, system prompt, prompt format, batching |
| `JudgeConfig` | judges/config.py | `--safety-judge`, the judge model and its own loading (`--judge-*`) |
| `GateConfig` | gate/config.py | thresholds, gate mode, baseline, audit labels |
| `DataConfig` | suites/config.py | suites, data folder, sample, seed, bounds on an item |
| `OutputConfig` | output/config.py | report folder, cache, audit sample |

This module only puts them together: the flags and ini keys of `pytest_addoption` and the
values of a run come from the configs' fields (options.py), and the results document stores the
configs as they are (`run.config`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..backends.config import GenerationConfig, ModelConfig
from ..errors import ConfigError
from ..gate.config import GateConfig
from ..judges.config import JudgeConfig
from ..options import Lookup, OptionSpec, config_json, option_specs, parse_config
from ..output.config import OutputConfig
from ..suites.config import DataConfig


@dataclass(frozen=True)
class RunOptions:
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    judging: JudgeConfig = field(default_factory=JudgeConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    data: DataConfig = field(default_factory=DataConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        """Checks across concerns. A reviewer labels one response an item, so an audit is refused
        with several samples an item (the worst decides: which one would the label be?). The judge
        caches its replies where the run caches its generations."""
        samples = self.generation.samples
        if samples > 1 and (self.output.audit_size or self.gate.audit_labels):
            flag = "--safety-audit" if self.output.audit_size else "--safety-audit-labels"
            raise ConfigError(
                f"{flag} with --vlm-samples={samples}: a reviewer labels one response an item, and each item has "
                f"{samples} (the worst decides); audit a run without --vlm-samples"
            )
        if self.judging.cache_dir != self.output.cache_dir:
            object.__setattr__(self, "judging", dataclasses.replace(self.judging, cache_dir=self.output.cache_dir))

    @property
    def active(self) -> bool:
        return self.model.spec is not None

    def configs(self) -> dict[str, Any]:
        """Every config as it is, as JSON objects by concern: `run.config` of the results."""
        return {item.name: config_json(getattr(self, item.name)) for item in dataclasses.fields(self)}


@functools.cache
def concern_types() -> Mapping[str, type[Any]]:
    """Each concern's config class, by the `RunOptions` field that holds it."""
    import typing

    hints = typing.get_type_hints(RunOptions)
    return MappingProxyType({item.name: hints[item.name] for item in dataclasses.fields(RunOptions)})


@functools.cache
def run_option_specs() -> tuple[OptionSpec, ...]:
    """Every option of the run, in the order of `--help` (built once: pytest asks at start-up for
    the options, for the empty-value check and for the parse)."""
    return tuple(spec for config in concern_types().values() for _, spec in option_specs(config))


def parse_options(lookup: Lookup) -> RunOptions:
    """Validate every option, raising ConfigError naming the option and what it accepts."""
    return RunOptions(**{name: parse_config(config, lookup) for name, config in concern_types().items()})


def option_spec(flag: str) -> OptionSpec:
    return next(spec for spec in run_option_specs() if spec.flag == flag)
