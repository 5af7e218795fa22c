"""The judge model loads with its own settings (`--judge-*`): nothing of the model under test's
loading (processor settings, dtype, revision), system prompt or prompt format reaches it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonl_files import write_mini_suite
from run_options import run_options

from pytest_vlmsafety.backends import parse_backend_spec
from pytest_vlmsafety.backends.base import CHAT_TEMPLATE
from pytest_vlmsafety.backends.hf import HuggingFaceBackend
from pytest_vlmsafety.errors import ConfigError
from pytest_vlmsafety.judges.llm import build_llm_judge, load_judge_backend
from pytest_vlmsafety.judges.schemes import CALL_FAILED_KEY

# The model under test's deployment: a processor setting the judge's processor does not take, and
# a system prompt the judge's chat template (LLaVA-NeXT's Mistral [INST] turns) cannot render.
UNDER_TEST = {
    "--vlm-processor-kwargs": '{"max_pixels": 1003520}',
    "--vlm-system-prompt": "You are the assistant of a hardware store.",
    "--vlm-dtype": "float32",
}


def test_a_hub_judge_loads_with_its_own_settings(tiny_architecture: Callable[[str], Path], tiny_model: Path) -> None:
    judge_folder = str(tiny_architecture("llava-next"))
    options = run_options(
        UNDER_TEST, vlm=str(tiny_model), safety_judge="llm", judge_model=judge_folder, judge_dtype="bfloat16",
        vlm_cache="off",
    )
    spec = parse_backend_spec(judge_folder, option="--judge-model")

    backend = load_judge_backend(spec, options.judging.load)

    assert isinstance(backend, HuggingFaceBackend)
    assert backend.processor_kwargs == {}
    assert str(backend.torch_dtype) == "torch.bfloat16"
    # The judge's own calls render through its chat template, never a benchmark's official format.
    judge = build_llm_judge(options.judging)
    assert judge.config is not None and judge.config.load == options.judging.load
    # What the model under test's settings would have done to the judge model.
    with pytest.raises(ConfigError, match="max_pixels"):
        load_judge_backend(spec, options.model.load)


def test_a_judge_request_gets_the_chat_template_whatever_the_runs_prompt_format() -> None:
    from pytest_vlmsafety.items import SafetyItem
    from pytest_vlmsafety.judges.llm import LlmJudge

    options = run_options(vlm="tiny-random", safety_judge="llm", judge_model="tiny-random", prompt_format="official")
    judge = build_llm_judge(options.judging)
    assert isinstance(judge, LlmJudge)
    item = SafetyItem(id="1", suite="mis", category="c", prompt="q", expected="refuse")
    plan = judge._plan(item, "a response")
    assert judge.request(item, plan).prompt_format == CHAT_TEMPLATE
    assert options.generation.prompt_format == "official"


@pytest.mark.slow
def test_a_run_judges_with_a_hub_judge_that_cannot_render_the_tested_models_system_prompt(
    pytester: pytest.Pytester, vlm_env: Path, tiny_architecture: Callable[[str], Path]
) -> None:
    judge_folder = str(tiny_architecture("llava-next"))
    suite = write_mini_suite(pytester.path)
    result = pytester.runpytest_subprocess(
        "--vlm=tiny-random", f"--safety-suite={suite}", "--max-unjudged=off", "--vlm-cache=off",
        "--vlm-system-prompt=Be safe.", "--safety-judge=llm", f"--judge-model={judge_folder}",
        "--judge-max-new-tokens=8", "-p", "no:cacheprovider",
    )
    document = json.loads((pytester.path / "reports" / "vlmsafety-results.json").read_text())
    # The LLM judge was asked about every item (its replies are the tiny model's noise, which the
    # rule then reads); no judge call failed on the model under test's system prompt.
    assert all(item["judge"] == "llm" for item in document["items"]), result.stdout.str()
    assert not any(item["extra"].get(CALL_FAILED_KEY) for item in document["items"]), result.stdout.str()
    assert document["run"]["config"]["judging"]["load"]["dtype"] == "auto"
    assert document["run"]["config"]["generation"]["system_prompt"] == "Be safe."
