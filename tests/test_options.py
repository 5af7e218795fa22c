from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from run_options import run_options

from pytest_vlmsafety.backends.config import GenerationConfig, LoadConfig
from pytest_vlmsafety.errors import ConfigError
from pytest_vlmsafety.options import OptionSpec, config_json, nested, option, option_specs, parse_config, positive_int
from pytest_vlmsafety.plugin.run_options import RunOptions, run_option_specs
from pytest_vlmsafety.suites.registry import suite_options


def test_defaults() -> None:
    options = run_options(vlm="tiny-random")
    assert options.active
    assert options.generation.batch_limit is None and options.generation.batch_size == "auto"
    assert options.gate.max_undersafety == 0.10 and options.gate.max_oversafety == 0.20
    assert options.gate.mode == "rates" and options.gate.on == "point"
    assert options.output.report_dir == Path("reports")
    assert options.judging.judge == "auto" and options.data.seed == 0
    # A config built in Python has the defaults the command line has: each is stated once.
    assert options == dataclasses.replace(RunOptions(), model=dataclasses.replace(RunOptions().model, spec="tiny-random"))


def test_values_are_parsed() -> None:
    options = run_options(
        vlm="qwen2-vl", safety_suite=["sample", "x.jsonl"], vlm_batch_size="32", vlm_max_new_tokens="64",
        safety_sample="10", max_undersafety="off", safety_gate="items", safety_data="/data",
    )
    assert options.data.suites == ("sample", "x.jsonl")
    assert options.generation.batch_limit == 32 and options.generation.max_new_tokens == 64
    assert options.data.sample == 10
    assert options.gate.max_undersafety is None
    assert options.gate.mode == "items"
    assert options.data.data_root == Path("/data")


def test_ini_suites_as_a_spaced_string() -> None:
    assert run_options(vlm="x/y", safety_suite="sample mis").data.suites == ("sample", "mis")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"vlm_batch_size": "0"}, "--vlm-batch-size='0': expected a positive whole number"),
        ({"vlm_batch_size": "many"}, "--vlm-batch-size='many'"),
        ({"max_undersafety": "1.5"}, "--max-undersafety='1.5': expected a rate between 0 and 1"),
        ({"max_oversafety": "abc"}, "--max-oversafety='abc'"),
        ({"vlm_dtype": "fp8"}, "--vlm-dtype='fp8': accepted values are auto, float32, bfloat16, float16"),
        ({"judge_dtype": "fp8"}, "--judge-dtype='fp8': accepted values are auto, float32, bfloat16, float16"),
        ({"safety_gate": "strict"}, "--safety-gate='strict': accepted values are rates, items"),
        ({"safety_judge": "gpt"}, "--safety-judge='gpt': accepted values are auto, refusal, llm"),
        ({"safety_seed": "x"}, "--safety-seed='x': expected a whole number"),
        ({"judge_timeout": "0"}, "--judge-timeout='0': expected a number of seconds above 0"),
    ],
)
def test_bad_values_name_the_option_and_what_is_accepted(given: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_options(vlm="tiny-random", **given)


def test_every_option_is_declared_once_with_a_unique_flag_and_ini_key() -> None:
    specs = run_option_specs()
    flags = [spec.flag for spec in specs]
    assert len(flags) == len(set(flags))
    assert len({spec.ini_name for spec in specs}) == len(specs)
    assert all(spec.help and spec.flag.startswith("--") for spec in specs)
    # The loading config is declared once and serves the model under test and the judge model.
    load_flags = [spec.flag for _, spec in option_specs(LoadConfig, "vlm", "m")]
    assert set(load_flags) <= set(flags)
    assert {flag.replace("--vlm-", "--judge-") for flag in load_flags} <= set(flags)


def test_the_judge_model_loads_with_its_own_settings_not_the_model_under_tests() -> None:
    options = run_options(
        vlm="tiny-random", vlm_dtype="float32", vlm_device="cpu", vlm_revision="abc",
        vlm_processor_kwargs='{"max_pixels": 1003520}', vlm_trust_remote_code=True, vlm_timeout="5",
        judge_model="openai:judge@http://127.0.0.1:1/v1", judge_revision="def",
    )
    assert options.model.load.revision == "abc" and options.model.load.processor_kwargs
    assert options.judging.load == LoadConfig(revision="def")
    assert options.judging.model == "openai:judge@http://127.0.0.1:1/v1"


@dataclasses.dataclass(frozen=True)
class _Toy:
    """A config of a new concern, as a contributor would add one."""

    level: int = option("--toy-level", "how hard", "N", default="3", parse=positive_int)
    load: LoadConfig = nested(LoadConfig, "toy", "the toy model")


def test_an_option_is_one_declaration_flag_ini_key_default_and_results_field_follow() -> None:
    paths = dict(option_specs(_Toy))
    spec = paths["level"]
    assert isinstance(spec, OptionSpec)
    assert (spec.flag, spec.ini_name, spec.dest, spec.default) == ("--toy-level", "toy_level", "vlmsafety_toy_level", "3")
    assert paths["load.dtype"].flag == "--toy-dtype" and "the toy model" in paths["load.dtype"].help
    assert _Toy().level == 3  # the Python default is the ini default, parsed
    given = {"--toy-level": "7", "--toy-dtype": "float16"}
    toy = parse_config(_Toy, lambda s: given.get(s.flag))
    assert toy.level == 7 and toy.load.dtype == "float16"
    assert json.loads(json.dumps(config_json(toy)))["level"] == 7
    with pytest.raises(ConfigError, match="--toy-level='0'"):
        parse_config(_Toy, lambda s: {"--toy-level": "0"}.get(s.flag))


def test_every_option_reaches_the_results_config_under_its_concern() -> None:
    stored = RunOptions().configs()
    assert set(stored) == {"model", "generation", "judging", "gate", "data", "output"}
    for path, spec in (item for name in stored for item in _paths(name)):
        concern, *keys = path.split(".")
        value = stored[concern]
        for key in keys:
            assert key in value, f"{spec.flag} is not stored at run.config.{path}"
            value = value[key]


def _paths(concern: str) -> list[tuple[str, OptionSpec]]:
    import typing

    config = typing.get_type_hints(RunOptions)[concern]
    return [(f"{concern}.{path}", spec) for path, spec in option_specs(config)]


def test_greedy_decoding_refuses_sampling_settings_also_when_built_in_python() -> None:
    with pytest.raises(ConfigError, match="--vlm-samples=3: greedy decoding"):
        GenerationConfig(samples=3)
    with pytest.raises(ConfigError, match="--vlm-seed=1 has no effect on greedy decoding"):
        run_options(vlm="x/y", vlm_seed="1")
    assert run_options(vlm="x/y", vlm_temperature="0.7", vlm_seed="1", vlm_samples="3").generation.samples == 3


def test_every_option_has_its_row_in_the_readmes_configuration_table() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| option | default | meaning |"):readme.index("### What we trust")]
    rows = [line for line in table.splitlines() if line.startswith("| `--")]
    named = " ".join(row.split(" | ")[0] for row in rows)
    # Ours, and the built-in suites' own (their registrations': suites/registry.py).
    flags = [spec.flag for spec in run_option_specs()] + [option.flag for option in suite_options()]
    missing = [flag for flag in flags if not re.search(f"`{re.escape(flag)}[` ]", named)]
    assert not missing, f"options without a README row: {missing}"
