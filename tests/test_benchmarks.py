"""The performance benchmarks (benchmarks/*.py) at a tiny size on the CPU: the harness runs end
to end, checks what it claims to check, and writes its JSON and RESULTS.md where told (never
into benchmarks/results/ from a test). The numbers themselves are not asserted: timing tests
would be flaky, and the targets live in the benchmarks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_script(name: str) -> ModuleType:
    module_name = f"vlmsafety_benchmark_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return load_script("common")


def output_args(folder: Path) -> list[str]:
    return ["--results-dir", str(folder / "results"), "--results-md", str(folder / "RESULTS.md")]


def only_result(folder: Path, prefix: str) -> dict[str, Any]:
    paths = sorted((folder / "results").glob(f"{prefix}-*.json"))
    assert len(paths) == 1, paths
    return json.loads(paths[0].read_text(encoding="utf-8"))


# -- the scripts, end to end -------------------------------------------------------------------


@pytest.mark.slow  # a model job
def test_throughput_tiny_forces_exact_lengths_and_writes_results(vlm_env: Path, tmp_path: Path) -> None:
    throughput = load_script("throughput")
    code = throughput.main(["--model", "tiny", "--items", "4", "--max-new-tokens", "4", "--batch-sizes", "1", "4",
                            "--image-size", "64", "--vllm", "off", "--device", "cpu", *output_args(tmp_path)])
    assert code == 0
    result = only_result(tmp_path, "throughput-tiny")
    rows = result["rows"]
    assert [(r["method"], r["batch_size"]) for r in rows] == [("per-item loop", 1), ("hf batched", 1), ("hf batched", 4)]
    for row in rows:
        # Every method did the same work: exactly items x max-new-tokens tokens, no failed item.
        assert row["generated_tokens"] == 4 * 4, row
        assert row["errors"] == 0, row
        assert 0 < row["model_fraction"] <= 1
    assert rows[1]["generate_calls"] == 4 and rows[2]["generate_calls"] == 1
    assert result["parameters"]["model_facts"]["device"] == "cpu"
    assert result["environment"]["libraries"]["torch"]
    statuses = {t["id"]: t["status"] for t in result["targets"]}
    assert statuses["vllm-vs-hf"].startswith("not measured")
    markdown = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "### Throughput: tiny" in markdown and "| per-item loop | 1 | 4 |" in markdown


@pytest.mark.slow  # pytest subprocesses
def test_overhead_runs_both_variants_against_bare_pytest(tmp_path: Path) -> None:
    overhead = load_script("overhead")
    assert overhead.main(["--items", "20", "--repeats", "1", "--no-warm-up", *output_args(tmp_path)]) == 0
    result = only_result(tmp_path, "overhead")
    assert [row["config"] for row in result["rows"]] == ["bare", "text", "image"]
    assert all(row["items"] == 20 and row["wall_s"] > 0 for row in result["rows"])
    assert {t["label"] for t in result["targets"]} == {"text items", "image items"}
    assert all(t["status"] in ("met", "not met") for t in result["targets"])


@pytest.mark.slow  # pytest subprocesses
def test_rerun_serves_the_second_run_from_the_cache(vlm_env: Path, tmp_path: Path) -> None:
    rerun = load_script("rerun")
    assert rerun.main(["--sample", "4", "--max-new-tokens", "4", "--threads", "1", *output_args(tmp_path)]) == 0
    result = only_result(tmp_path, "rerun")
    first, second = result["rows"]
    assert first["generations"] == first["items"] > 0
    assert second["generations"] == 0 and second["cache_hits"] == second["items"] == first["items"]
    assert result["cache_ok"] is True
    assert result["targets"][0]["status"] in ("met", "not met")


# -- the pieces the end-to-end runs cannot fail on ---------------------------------------------


def test_overhead_per_item_cost_excludes_the_start_up() -> None:
    overhead = load_script("overhead")
    payload = overhead.summarise(
        101, 1, ["text"], at_items={"bare": 3.0, "text": 6.0}, at_one={"bare": 1.0, "text": 2.0}
    )
    bare, text = payload["rows"]
    assert bare["per_item_ms"] == pytest.approx(20.0)  # (3 - 1) s / 100 items
    assert text["per_item_ms"] == pytest.approx(40.0)
    assert text["vs_bare_per_item"] == pytest.approx(2.0)
    assert payload["targets"][0]["status"] == "met"  # <= 2x
    slower = overhead.summarise(101, 1, ["text"], at_items={"bare": 3.0, "text": 7.0}, at_one={"bare": 1.0, "text": 2.0})
    assert slower["targets"][0]["status"] == "not met"


def test_rerun_cache_problems_name_what_went_wrong() -> None:
    rerun = load_script("rerun")
    assert rerun.cache_problems({"generations": 0, "cache_hits": 5, "items": 5}) == []
    problems = rerun.cache_problems({"generations": 2, "cache_hits": 3, "items": 5})
    assert problems == ["the cached run generated 2 items (expected 0)", "the cached run had 3 cache hits for 5 items"]


def throughput_rows(loop: float, at_32: float, vllm: float | None = None) -> list[dict[str, Any]]:
    rows = [{"method": "per-item loop", "batch_size": 1, "items_per_s": loop},
            {"method": "hf batched", "batch_size": 32, "items_per_s": at_32}]
    if vllm is not None:
        rows.append({"method": "vllm backend", "batch_size": "auto", "items_per_s": vllm})
    return rows


def test_throughput_targets_are_judged_only_on_a_gpu() -> None:
    throughput = load_script("throughput")
    on_gpu = {t["id"]: t for t in throughput.targets(throughput_rows(1.0, 9.0, 20.0), "m", True, "measured")}
    assert on_gpu["batched-vs-loop"]["status"] == "met" and on_gpu["batched-vs-loop"]["measured"] == "9.0x"
    assert on_gpu["vllm-vs-hf"]["status"] == "not met"  # 20 / 9 < 3
    slow = {t["id"]: t for t in throughput.targets(throughput_rows(1.0, 7.9), "m", True, "vLLM not installed")}
    assert slow["batched-vs-loop"]["status"] == "not met"
    assert slow["vllm-vs-hf"]["status"] == "not measured here (vLLM not installed)"
    on_cpu = {t["id"]: t for t in throughput.targets(throughput_rows(1.0, 30.0), "m", False, "vLLM not installed")}
    assert on_cpu["batched-vs-loop"]["status"] == "not measured here (no GPU in this session)"
    assert on_cpu["batched-vs-loop"]["measured"].startswith("30.0x on CPU")


def test_padded_tokenizer_decodes_every_id_of_the_model_vocabulary() -> None:
    throughput = load_script("throughput")
    tokenizer = throughput.padded_tokenizer(["<pad>", "</s>", "<image>"], 3000, pad_token="<pad>", eos_token="</s>")
    assert len(tokenizer) == 3000
    assert tokenizer.decode([2999]) == "<|fill_2999|>"
    assert tokenizer.convert_tokens_to_ids("<image>") == 2
    words = tokenizer("What is shown in this image?")["input_ids"]
    assert 0 < len(words) < 10 and max(words) < 1024  # the trained part, not the fillers


def test_force_exact_length_masks_specials_but_not_eos(tiny_model: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    throughput = load_script("throughput")
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    tokenizer = AutoProcessor.from_pretrained(tiny_model).tokenizer
    throughput.force_exact_length(model, tokenizer, 7)
    config = model.generation_config
    assert config.min_new_tokens == 7
    assert tokenizer.eos_token_id not in config.suppress_tokens
    assert {tokenizer.pad_token_id, model.config.image_token_id} <= set(config.suppress_tokens)


# -- RESULTS.md --------------------------------------------------------------------------------


def fake_result(common: ModuleType, device: str, name: str, targets: list[dict[str, str]]) -> dict[str, Any]:
    gpu = None if device == "cpu" else "NVIDIA H100 80GB HBM3"
    return {
        "schema": common.SCHEMA, "name": name, "benchmark": name, "title": f"Title of {name}",
        "environment": {"date": "2026-01-01T00:00:00+00:00", "device": device, "gpu": gpu, "gpu_memory_gib": 79.1,
                        "cuda": "12.8", "cpu": "Test CPU", "cpu_count": 2, "load_average_1m": 0.5,
                        "python": "3.11.7", "libraries": {"torch": "2.13"}, "plugin_version": "0.1.0",
                        "git": {"commit": "abcdef1234567", "dirty": False}},
        "table": {"columns": ["a", "b"], "rows": [["x", 1.5]]},
        "targets": targets,
        "notes": ["a note"],
    }


def test_results_md_has_a_section_per_device_and_lists_every_target(common: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    overhead = fake_result(common, "cpu", "overhead", [common.target("overhead", "1.2x", common.MET, label="text items")])
    gpu = fake_result(common, "nvidia-h100-80gb-hbm3", "throughput-llava", [common.target("batched-vs-loop", "9.0x", common.MET)])
    (results / "overhead-cpu.json").write_text(json.dumps(overhead))
    (results / "throughput-llava-nvidia-h100-80gb-hbm3.json").write_text(json.dumps(gpu))
    (results / "report_scale.json").write_text(json.dumps({"rows": []}))  # another script's file: skipped
    markdown = common.render_results_md(results)
    gpu_at, cpu_at = markdown.index("## nvidia-h100-80gb-hbm3:"), markdown.index("## cpu:")
    assert gpu_at < cpu_at  # GPU sections first
    gpu_part, cpu_part = markdown[gpu_at:cpu_at], markdown[cpu_at:]
    assert "| 9.0x | met |" in gpu_part and "### Title of throughput-llava" in gpu_part
    assert "No GPU result yet" not in markdown
    # Targets nobody measured on a device are listed as such, the GPU ones on the CPU as no GPU.
    assert "not measured on this device: run `benchmarks/overhead.py`" in gpu_part
    assert "[text items] | <= 2x | 1.2x | met |" in cpu_part
    assert "not measured here (no GPU in this session): run `benchmarks/throughput.py`" in cpu_part
    assert "not measured on this device: run `benchmarks/rerun.py`" in cpu_part


def test_write_result_names_the_file_by_benchmark_and_device(common: ModuleType, tmp_path: Path) -> None:
    payload = {"benchmark": "overhead", "title": "T", "table": {"columns": ["a"], "rows": [[1]]}, "targets": []}
    path = common.write_result("overhead", payload, tmp_path / "results", tmp_path / "RESULTS.md")
    assert path == tmp_path / "results" / f"overhead-{common.device_label()}.json"
    written = json.loads(path.read_text())
    assert written["schema"] == common.SCHEMA and written["environment"]["plugin_version"]
    assert "### T" in (tmp_path / "RESULTS.md").read_text()


def test_unknown_target_id_is_refused(common: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown target id 'speed'"):
        common.target("speed", "1x", common.MET)


# -- mutation testing of the gate ----------------------------------------------------------------


def test_mutation_kill_rate_sets_equivalent_mutants_apart_and_names_survivors() -> None:
    mutation = load_script("mutation")
    name = "pytest_vlmsafety.gate.metrics.x_evaluate_gate__mutmut_{}".format
    result = mutation.ModuleResult(
        "gate.metrics",
        statuses={name(1): "killed", name(2): "timeout", name(3): "survived", name(4): "survived", name(5): "killed"},
        equivalent={name(4): "only read as a truth value"},
        survivors={name(3): "survived: - rate > limit / + rate >= limit"},
    )
    assert (result.total, result.detected, result.counted, result.kill_rate) == (5, 3, 4, 0.75)
    rows = mutation.table_rows({"gate.metrics": result})
    assert rows[0][2:] == [5, 3, 1, 1, 0, "75.0%"] and rows[-1][0] == "all"
    result.statuses[name(6)] = "not checked"  # a stopped run: left out of the rate, counted apart
    assert (result.total, result.not_run, result.kill_rate) == (6, 1, 0.75)
    lines = mutation.results_md({"gate.metrics": result}, {"date": "d", "mutmut": "3.8.1", "commit": "c"})
    assert lines[0] == "## Mutation testing of the gate"
    assert any("rate >= limit" in line for line in lines)
    assert any("only read as a truth value" in line for line in lines)
    # Equivalence is matched on the function and the changed line, not on mutmut's number.
    assert mutation.equivalence(name(77), "measured_any = False", "measured_any = None") is not None
    assert mutation.equivalence(name(77), "measured_any = False", "measured_any = True") is None
    assert mutation.equivalence(
        "pytest_vlmsafety.gate.evaluation.x_run_gate__mutmut_1", "measured_any = False", "measured_any = None"
    ) is None


def test_mutation_selects_only_the_gate_critical_functions() -> None:
    mutation = load_script("mutation")
    assert mutation.selected("pytest_vlmsafety.gate.metrics.x_evaluate_gate__mutmut_3", ["gate.metrics"])
    assert not mutation.selected("pytest_vlmsafety.gate.metrics.x_pair_summary__mutmut_3", ["gate.metrics"])
    assert not mutation.selected("pytest_vlmsafety.gate.metrics.x_evaluate_gate__mutmut_3", ["gate.evaluation"])
    assert mutation.selected("pytest_vlmsafety.output.document.xǁSuiteGateǁ__post_init____mutmut_2", ["output.document"])
    assert mutation.function_of("pytest_vlmsafety.output.document.xǁSuiteGateǁ__post_init____mutmut_2") == (
        "output.document.xǁSuiteGateǁ__post_init__"
    )
