"""The generation cache, resuming killed runs, devices per worker, and -n 2 against -n 0."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jsonl_files import write_jsonl
from PIL import Image

from pytest_vlmsafety.__main__ import main as cli_main
from pytest_vlmsafety.cache import Cache, GenerationStore, ModelFingerprint, fingerprint_model
from pytest_vlmsafety.distributed.devices import DeviceAllocator, visible_devices


def results(folder: Path) -> dict:
    return json.loads((folder / "reports" / "vlmsafety-results.json").read_text())


# -- the cache as a module ------------------------------------------------------------------------


def test_store_keys_cover_model_params_prompt_and_image_bytes(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(image)
    store = GenerationStore(cache, ModelFingerprint("m1"), {"dtype": "auto"})
    key = store.key("prompt", [image], 32)
    assert key == store.key("prompt", [image], 32)
    assert key != store.key("prompt ", [image], 32)
    assert key != store.key("prompt", [image], 33)
    assert key != GenerationStore(cache, ModelFingerprint("m2"), {"dtype": "auto"}).key("prompt", [image], 32)
    assert key != GenerationStore(cache, ModelFingerprint("m1"), {"dtype": "bfloat16"}).key("prompt", [image], 32)
    moved = tmp_path / "moved.png"
    moved.write_bytes(image.read_bytes())
    assert store.key("prompt", [moved], 32) == key  # bytes, not paths
    Image.new("RGB", (8, 8), (9, 9, 9)).save(moved)
    assert store.key("prompt", [moved], 32) != key
    store.put_many({key: "a response with ünïcode"})
    assert store.get_many([key, "missing"]) == ["a response with ünïcode", None]


def test_cache_holds_json_only_and_a_weights_change_changes_the_fingerprint(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    cache.put_generations({"k": "text"})
    raw = sqlite3.connect(cache.path).execute("SELECT response FROM generations").fetchone()[0]
    assert json.loads(raw) == "text"
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights-1")
    (model / "config.json").write_text("{}")
    first = fingerprint_model(cache, str(model), None)
    (model / "model.safetensors").write_bytes(b"weights-2")
    second = fingerprint_model(cache, str(model), None)
    assert first.value != second.value and first.weights_hash
    assert fingerprint_model(cache, "org/name", "0123456789abcdef0123456789abcdef01234567").value.endswith(
        "@0123456789abcdef0123456789abcdef01234567"
    )


def test_cache_cli_info_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Cache(tmp_path).put_generations({"a": "x", "b": "y"})
    assert cli_main(["cache", "info", "--dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["generations"] == 2
    assert cli_main(["cache", "clear", "--dir", str(tmp_path)]) == 0
    assert "cleared 2 generations" in capsys.readouterr().out
    assert Cache(tmp_path).info()["generations"] == 0


# -- devices --------------------------------------------------------------------------------------


def test_visible_devices_prefer_the_option_then_the_environment() -> None:
    assert visible_devices("0, 2", {"CUDA_VISIBLE_DEVICES": "5"}) == ["0", "2"]
    assert visible_devices(None, {"CUDA_VISIBLE_DEVICES": "3,1"}) == ["3", "1"]
    assert visible_devices(None, {"CUDA_VISIBLE_DEVICES": ""}) == []


def test_allocator_gives_each_worker_a_free_device_and_reuses_a_dead_workers() -> None:
    allocator = DeviceAllocator(["3", "1"])
    assert [allocator.assign("gw0"), allocator.assign("gw1")] == ["3", "1"]
    allocator.release("gw0")
    assert allocator.assign("gw2") == "3"
    assert allocator.assign("gw3") in ("3", "1")
    assert DeviceAllocator([]).assign("gw0") is None


# -- runs -----------------------------------------------------------------------------------------


pytestmark_runs = pytest.mark.usefixtures("vlm_env")


@pytest.mark.slow
@pytestmark_runs
def test_rerun_is_served_from_the_cache_and_a_judge_change_reuses_generations(pytester: pytest.Pytester) -> None:
    args = ("--vlm=tiny-random", "--safety-suite=sample", "--safety-sample=20", "--vlm-max-new-tokens=4", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess(*args)
    first = results(pytester.path)
    assert first["run"]["generations"] == 20 and first["run"]["cache_hits"] == 0
    pytester.runpytest_subprocess(*args, "--max-undersafety=0.9")
    second = results(pytester.path)
    assert second["run"]["generations"] == 0 and second["run"]["cache_hits"] == 20
    assert [i["response"] for i in second["items"]] == [i["response"] for i in first["items"]]
    assert all(i["cached"] for i in second["items"])
    pytester.runpytest_subprocess(*args, "--vlm-cache=off")
    assert results(pytester.path)["run"]["generations"] == 20


@pytest.mark.slow
@pytestmark_runs
def test_n2_and_n0_agree_item_for_item(pytester: pytest.Pytester) -> None:
    args = ("--vlm=tiny-random", "--safety-suite=sample", "--safety-sample=40", "--vlm-max-new-tokens=6",
            "--vlm-cache=off", "-p", "no:cacheprovider", "--max-undersafety=0.5")
    single = pytester.runpytest_subprocess(*args, "-n", "0")
    one = results(pytester.path)
    double = pytester.runpytest_subprocess(*args, "-n", "2")
    two = results(pytester.path)
    assert single.ret == double.ret
    key = lambda d: {(i["suite"], i["id"]): (i["response"], i["verdict"], i["outcome"]) for i in d["items"]}  # noqa: E731
    assert key(one) == key(two)
    assert one["suites"] == two["suites"]
    assert len(two["run"]["workers"]) == 2 and sum(w["stats"]["generations"] for w in two["run"]["workers"]) == 40
    double.stdout.fnmatch_lines(["worker gw*: device cpu*generated*", "worker gw*: device cpu*generated*"])


@pytest.mark.slow
@pytestmark_runs
def test_a_crashed_worker_costs_only_its_item(pytester: pytest.Pytester) -> None:
    Image.new("RGB", (16, 16), (0, 0, 255)).save(pytester.path / "blue.png")
    write_jsonl(pytester.path / "crash.jsonl", [
        {"id": f"item{i}", "prompt": f"question {i}", "images": ["blue.png"], "expected": "comply", "category": f"c{i % 2}"}
        for i in range(6)
    ])
    pytester.makeconftest(
        "import os\n"
        "def pytest_runtest_call(item):\n"
        "    if item.name == 'item3' and os.environ.get('PYTEST_XDIST_WORKER'):\n"
        "        os._exit(3)\n"
    )
    result = pytester.runpytest_subprocess(
        "--vlm=tiny-random", "--safety-suite=crash.jsonl", "--vlm-max-new-tokens=4", "-n", "2",
        "--max-oversafety=off",
    )
    data = results(pytester.path)
    outcomes = {i["id"]: i for i in data["items"]}
    assert set(outcomes) == {f"item{i}" for i in range(6)}
    assert outcomes["item3"]["outcome"] == "error" and "crashed" in outcomes["item3"]["error"]
    assert all(outcomes[f"item{i}"]["outcome"] != "error" for i in (0, 1, 2, 4, 5))
    assert result.ret == 1


@pytest.mark.slow
@pytestmark_runs
def test_a_killed_run_resumes_generating_only_what_is_missing(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    command = [
        sys.executable, "-m", "pytest", "--vlm=tiny-random", "--safety-suite=sample:text", "--vlm-batch-size=1",
        "--vlm-max-new-tokens=48", f"--vlm-cache={cache_dir}", "-p", "no:cacheprovider", "-q",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    database = cache_dir / "vlmsafety-cache.sqlite3"
    deadline = time.monotonic() + 120
    done_before = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if database.exists():
                try:
                    done_before = sqlite3.connect(database).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
                except sqlite3.OperationalError:
                    done_before = 0
                if done_before >= 10:
                    break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    done_before = sqlite3.connect(database).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    total = 54
    assert 10 <= done_before < total, "the run must be killed part-way for this test to mean anything"
    # The batch size is not part of a generation's key: the resumed run may batch differently.
    rerun = subprocess.run([*command, "--vlm-batch-size=16"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode in (0, 1), rerun.stdout[-2000:]
    data = results(tmp_path)
    assert len(data["items"]) == total
    assert data["run"]["cache_hits"] == done_before
    assert data["run"]["generations"] == total - done_before
