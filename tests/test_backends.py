from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_options import run_options
from PIL import Image

from pytest_vlmsafety.backends import GenerationRequest, parse_backend_spec
from pytest_vlmsafety.backends.hf import (
    HuggingFaceBackend,
    auto_batch_size,
    batches,
    kv_bytes_per_token,
    order_for_batching,
)
from pytest_vlmsafety.backends.replay import ReplayBackend
from pytest_vlmsafety.output.document import SCHEMA_VERSION
from pytest_vlmsafety.errors import ConfigError


def request(item_id: str, prompt: str = "p", images: tuple[Path, ...] = (), max_new: int = 8, suite: str = "s") -> GenerationRequest:
    return GenerationRequest(suite, item_id, prompt, images, max_new)


def test_spec_forms(tmp_path: Path) -> None:
    assert parse_backend_spec("qwen2-vl").target == "Qwen/Qwen2-VL-7B-Instruct"
    assert parse_backend_spec("llava-1.5-7b").target == "llava-hf/llava-1.5-7b-hf"
    assert parse_backend_spec("org/model-x").kind == "hf"
    assert parse_backend_spec("tiny-random").kind == "tiny"
    assert parse_backend_spec(str(tmp_path)).target == str(tmp_path.resolve())
    replay = tmp_path / "r.jsonl"
    replay.write_text("")
    assert parse_backend_spec(f"replay:{replay}").kind == "replay"


@pytest.mark.parametrize("bad", ["qwen3-vl-unknown", "not a model", "replay:/no/such/file.jsonl"])
def test_unknown_models_are_usage_errors_listing_the_aliases(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"--vlm={bad}"):
        parse_backend_spec(bad)


def test_batches_never_mix_image_counts_or_lengths() -> None:
    img = Path("x.png")
    requests = [
        request("a", "long prompt here", (img,)), request("b", "p", ()), request("c", "pp", (img,)),
        request("d", "p", (img, img)), request("e", "p", (img,), max_new=16), request("f", "ppp", ()),
    ]
    plan = batches(order_for_batching(requests), requests, size=2)
    for batch in plan:
        shapes = {(len(requests[i].images), requests[i].max_new_tokens) for i in batch}
        assert len(shapes) == 1 and len(batch) <= 2
    assert sorted(i for b in plan for i in b) == list(range(6))
    # Within one shape, shorter prompts first (less padding).
    one_image = [i for b in plan for i in b if len(requests[i].images) == 1 and requests[i].max_new_tokens == 8]
    assert [requests[i].item_id for i in one_image] == ["c", "a"]


def test_replay_reads_all_three_formats(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps({"schema": SCHEMA_VERSION, "items": [{"suite": "s", "id": "1", "response": "from results"}]})
    )
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"id": "1", "response": "from jsonl"}\n\n{"id": "2", "response": null}\n')
    holisafe = tmp_path / "pred.json"
    holisafe.write_text(json.dumps([{"id": 1, "query": "q", "prediction": "from holisafe"}]))
    assert ReplayBackend(results).generate([request("1")])[0].text == "from results"
    assert ReplayBackend(holisafe).generate([request("1")])[0].text == "from holisafe"
    out = ReplayBackend(jsonl).generate([request("1"), request("2"), request("3")])
    assert out[0].text == "from jsonl"
    assert out[1].text is None and "no recorded response for item '2'" in (out[1].error or "")
    assert out[2].error and "'3'" in out[2].error


def test_replay_bad_line_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"id": "1", "response": "ok"}\n{oops\n')
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        ReplayBackend(bad)


def test_hf_backend_generates_mixed_batches_through_the_chat_template(tiny_model: Path, tmp_path: Path) -> None:
    red = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(red)
    backend = HuggingFaceBackend(str(tiny_model), spec="tiny-random", noise=True)
    assert backend.describe()["dtype"] == "float32" and backend.device == "cpu"
    requests = [
        request("text", "Hello there"), request("one", "What is shown?", (red,)),
        request("two", "Compare these", (red, red)), request("one-b", "Describe the image in detail", (red,)),
    ]
    done: list[int] = []
    batched = backend.generate(requests, progress=lambda batch: done.extend(i for i, _ in batch), batch_size=4)
    assert sorted(done) == [0, 1, 2, 3]
    assert all(g.text is not None and g.error is None for g in batched)
    # Greedy and left-padded: the same answers one at a time as in a batch.
    single = [backend.generate([r], batch_size=1)[0].text for r in requests]
    assert [g.text for g in batched] == single


def test_auto_batch_size_fits_the_kv_cache_in_free_memory() -> None:
    from transformers import Qwen2Config

    # Qwen2-VL-7B's language model: 28 layers, 4 KV heads of 128 dims -> 2*28*4*128*2 bytes = 57,344 per token in bf16.
    config = Qwen2Config(num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, hidden_size=3584)
    per_token = kv_bytes_per_token(config, 2)
    assert per_token == 57_344
    # 40 GiB free, half for the KV cache, (1024 + 256) tokens an item: 20 GiB / 73.4 MB = 292 -> capped at 64.
    assert auto_batch_size(40 * 2**30, per_token, 1280) == 64
    # 2 GiB free: 1 GiB / 73.4 MB = 14.
    assert auto_batch_size(2 * 2**30, per_token, 1280) == 14
    assert auto_batch_size(10 * 2**20, per_token, 1280) == 1


def test_processor_kwargs_option_is_validated_and_keys_the_cache(tmp_path: Path) -> None:
    from pytest_vlmsafety.backends import store_identity
    from pytest_vlmsafety.cache import Cache

    def options(raw: str | None):  # type: ignore[no-untyped-def]
        return run_options({"--vlm": "tiny-random", "--vlm-processor-kwargs": raw}).model.load

    plain, capped = options(None), options('{"max_pixels": 12544, "min_pixels": 3136}')
    assert plain.processor_settings == {}
    assert capped.processor_settings == {"max_pixels": 12544, "min_pixels": 3136}
    with pytest.raises(ConfigError, match="--vlm-processor-kwargs.*JSON object"):
        options("[1, 2]")
    with pytest.raises(ConfigError, match="--vlm-processor-kwargs.*not valid JSON"):
        options("{max_pixels: 1}")
    spec = parse_backend_spec("org/some-model")
    cache = Cache(tmp_path / "cache")
    _, plain_params = store_identity(spec, plain, "official", cache)
    _, capped_params = store_identity(spec, capped, "official", cache)
    assert "processor_kwargs" not in plain_params  # keys of existing caches unchanged
    assert capped_params["processor_kwargs"] == {"max_pixels": 12544, "min_pixels": 3136}


def test_a_missing_package_at_load_is_one_message_naming_it_and_the_install_command() -> None:
    from pytest_vlmsafety.backends.hf import missing_dependency

    torchvision = ImportError("Qwen2VLVideoProcessor requires the Torchvision library but it was not found")
    message = str(missing_dependency("qwen2-vl", "Qwen/Qwen2-VL-7B-Instruct", torchvision))
    assert "--vlm=qwen2-vl" in message and "torchvision" in message and "pip install torch==2.14.1 torchvision" in message
    num2words = ImportError("Package `num2words` is required to run SmolVLM processor.")
    assert "pip install num2words" in str(missing_dependency("x", "m", num2words))
