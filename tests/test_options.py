from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vlmsafety.errors import ConfigError
from pytest_vlmsafety.options import OPTION_SPECS, OptionSpec, parse_options

JUDGES = ("auto", "refusal")


def parse(**given: object):
    values = {spec.flag: spec.default for spec in OPTION_SPECS}
    values.update({"--" + k.replace("_", "-"): v for k, v in given.items()})

    def lookup(spec: OptionSpec):
        return values.get(spec.flag)

    return parse_options(lookup, JUDGES)


def test_defaults() -> None:
    options = parse(vlm="tiny-random")
    assert options.active
    assert options.batch_size is None
    assert options.max_undersafety == 0.10 and options.max_oversafety == 0.20
    assert options.gate == "rates" and options.gate_on == "point"
    assert options.report_dir == Path("reports")
    assert options.judge == "auto" and options.seed == 0


def test_values_are_parsed() -> None:
    options = parse(
        vlm="qwen2-vl", safety_suite=["sample", "x.jsonl"], vlm_batch_size="32", vlm_max_new_tokens="64",
        safety_sample="10", max_undersafety="off", safety_gate="items", safety_data="/data",
    )
    assert options.suites == ("sample", "x.jsonl")
    assert options.batch_size == 32 and options.max_new_tokens == 64 and options.sample == 10
    assert options.max_undersafety is None
    assert options.gate == "items"
    assert options.data_root == Path("/data")


def test_ini_suites_as_a_spaced_string() -> None:
    assert parse(vlm="x/y", safety_suite="sample mis").suites == ("sample", "mis")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"vlm_batch_size": "0"}, "--vlm-batch-size='0': expected a positive whole number"),
        ({"vlm_batch_size": "many"}, "--vlm-batch-size='many'"),
        ({"max_undersafety": "1.5"}, "--max-undersafety='1.5': expected a rate between 0 and 1"),
        ({"max_oversafety": "abc"}, "--max-oversafety='abc'"),
        ({"vlm_dtype": "fp8"}, "accepted values are auto, float32, bfloat16, float16"),
        ({"safety_gate": "strict"}, "--safety-gate='strict': accepted values are rates, items"),
        ({"safety_judge": "gpt"}, "--safety-judge='gpt': accepted values are auto, refusal"),
        ({"safety_seed": "x"}, "--safety-seed='x': expected a whole number"),
    ],
)
def test_bad_values_name_the_option_and_what_is_accepted(given: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(vlm="tiny-random", **given)
