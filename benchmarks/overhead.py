"""The plugin's own cost per item: a replayed suite against bare pytest on trivial tests.

    python benchmarks/overhead.py                     # 10,000 items, 3 repeats
    python benchmarks/overhead.py --items 200 --repeats 1

In a temporary folder it writes a JSONL suite of `--items` items and a replay file answering
each of them (90% as expected, 10% not: a real run has xfails), then times in a subprocess

    pytest -p pytest_vlmsafety.plugin --vlm=replay:replies.jsonl --safety-suite=suite.jsonl -q -p no:cacheprovider

against bare pytest running as many trivial parametrized tests, both with
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 so that other installed plugins (hypothesis, xdist, ...) add
nothing to either side. No model runs, so what remains is what the plugin adds: loading the
suite, collecting one test per item, checking the item's images, judging, reporting,
aggregating and writing the results file.

Both are also run with a single item, so the fixed start-up (interpreter, imports, plugin
loading) is separated from the cost that grows with the suite: per-item cost =
(time(N) - time(1)) / (N - 1), median of `--repeats` runs. The target is judged on it. Two suite
variants: `text` (no images: the plumbing alone) and `image` (one 224x224 PNG per item, 100
distinct: real suites have images; the plugin checks that each exists and hashes it for the cache
key, and leaves decoding to the model backend).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py sits beside this script

import common  # noqa: E402

TARGET = 2.0
VARIANTS = ("text", "image")
CATEGORIES = ("weapons", "drugs", "violence", "privacy", "self_harm", "hate", "fraud", "sexual")
REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "Sure. The picture shows a table with a few objects on it; here is a short description."
DISTINCT_IMAGES = 100
TRIVIAL_TESTS = '''import pytest

N = {count}


@pytest.mark.parametrize("index", range(N))
def test_item(index):
    assert index >= 0
'''


def write_images(folder: Path, count: int) -> list[str]:
    from PIL import Image

    rng = random.Random(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        image = Image.new("RGB", (224, 224), tuple(rng.randrange(256) for _ in range(3)))
        image.putpixel((index % 224, index // 224), (255, 255, 255))  # distinct bytes, distinct files
        name = f"images/image-{index:03d}.png"
        image.save(folder / name)
        names.append(name)
    return names


def write_suite(folder: Path, count: int, with_images: bool) -> tuple[Path, Path]:
    """A JSONL suite and a replay file of `count` items; one item in ten gets the wrong answer."""
    images = write_images(folder, DISTINCT_IMAGES) if with_images else []
    suite = folder / "suite.jsonl"
    replies = folder / "replies.jsonl"
    with suite.open("w", encoding="utf-8") as items, replies.open("w", encoding="utf-8") as answers:
        for index in range(count):
            expected = "refuse" if index % 2 else "comply"
            row: dict[str, Any] = {
                "id": f"item-{index:06d}",
                "prompt": f"Question number {index}: what should I do with the object in this picture?",
                "expected": expected,
                "category": CATEGORIES[index % len(CATEGORIES)],
            }
            if images:
                row["images"] = [images[index % len(images)]]
            items.write(json.dumps(row) + "\n")
            behaves = index % 10 != 0
            refuses = (expected == "refuse") == behaves
            answers.write(json.dumps({"id": row["id"], "response": REFUSAL if refuses else ANSWER}) + "\n")
    return suite, replies


def timed_pytest(arguments: Sequence[str], cwd: Path) -> float:
    """Wall seconds of one pytest subprocess; exit codes 0 and 1 (failed gate or tests) are runs.
    Other installed plugins are not loaded: they would add their own costs to both sides."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(command)} (in {cwd}) exited {done.returncode}:\n{tail}")
    return wall


def plugin_arguments() -> list[str]:
    return ["-p", "pytest_vlmsafety.plugin", "--vlm=replay:replies.jsonl", "--safety-suite=suite.jsonl",
            "--safety-report=reports"]


def prepare(root: Path, count: int) -> dict[str, Path]:
    """Folders for the bare run and each plugin variant, at `count` items."""
    folders = {"bare": root / f"bare-{count}"}
    folders["bare"].mkdir(parents=True)
    (folders["bare"] / "test_trivial.py").write_text(TRIVIAL_TESTS.format(count=count), encoding="utf-8")
    for variant in VARIANTS:
        folders[variant] = root / f"{variant}-{count}"
        folders[variant].mkdir(parents=True)
        write_suite(folders[variant], count, with_images=variant == "image")
    return folders


def measure(folders: dict[str, Path], configs: Sequence[str], repeats: int) -> dict[str, float]:
    """Median wall seconds per config, the configs interleaved so machine load hits each alike."""
    samples: dict[str, list[float]] = {config: [] for config in configs}
    for _ in range(repeats):
        for config in configs:
            if config == "bare":
                arguments = ["test_trivial.py"]
            else:
                arguments = plugin_arguments()
            samples[config].append(timed_pytest(arguments, folders[config]))
    return {config: statistics.median(values) for config, values in samples.items()}


def results_check(folder: Path, count: int) -> str | None:
    """Why the plugin run did not produce one record per item, or None."""
    path = folder / "reports" / "vlmsafety-results.json"
    if not path.is_file():
        return f"no results file at {path}"
    items = json.loads(path.read_text(encoding="utf-8"))["items"]
    errors = sum(item["outcome"] == "error" for item in items)
    if len(items) != count or errors:
        return f"{path}: {len(items)} items (expected {count}), {errors} errors"
    return None


def run(items: int, repeats: int, variants: Sequence[str], warm_up: bool = True) -> dict[str, Any]:
    configs = ["bare", *variants]
    with tempfile.TemporaryDirectory(prefix="vlmsafety-overhead-") as scratch:
        root = Path(scratch)
        large, single = prepare(root / "large", items), prepare(root / "single", 1)
        if warm_up:  # the disk cache, .pyc files and the first-run costs of each configuration
            measure(large, configs, 1)
        at_items = measure(large, configs, repeats)
        for variant in variants:
            problem = results_check(large[variant], items)
            if problem:
                raise RuntimeError(f"the {variant} plugin run is not a valid measurement: {problem}")
        at_one = measure(single, configs, repeats)
    return summarise(items, repeats, variants, at_items, at_one)


def summarise(items: int, repeats: int, variants: Sequence[str], at_items: dict[str, float],
              at_one: dict[str, float]) -> dict[str, Any]:
    per_item = {config: (at_items[config] - at_one[config]) / max(items - 1, 1) for config in at_items}
    rows = []
    for config in ["bare", *variants]:
        rows.append({
            "run": "bare pytest, trivial tests" if config == "bare" else f"plugin, replay, {config} items",
            "config": config,
            "items": items,
            "wall_s": round(at_items[config], 3),
            "startup_s": round(at_one[config], 3),
            "per_item_ms": per_item[config] * 1000,
            "wall_per_item_ms": at_items[config] / items * 1000,
            "vs_bare_per_item": common.ratio(per_item[config], per_item["bare"]),
            "vs_bare_wall": common.ratio(at_items[config], at_items["bare"]),
        })
    targets = []
    for row in rows[1:]:
        factor = row["vs_bare_per_item"]
        status = common.MET if factor is not None and factor <= TARGET else common.NOT_MET
        measured = "-" if factor is None else f"{factor:.2f}x ({row['per_item_ms']:.2f} vs {per_item['bare'] * 1000:.2f} ms/item)"
        targets.append(common.target("overhead", measured, status, label=f"{row['config']} items"))
    columns = ["run", "items", "wall s", "start-up s", "ms/item", "vs bare (per item)", "vs bare (wall)"]
    body = [[r["run"], r["items"], r["wall_s"], r["startup_s"], r["per_item_ms"],
             r["vs_bare_per_item"], r["vs_bare_wall"]] for r in rows]
    return {
        "benchmark": "overhead",
        "title": f"Overhead: {items:,} replayed items vs bare pytest",
        "parameters": {"items": items, "repeats": repeats, "variants": list(variants)},
        "table": {"columns": columns, "rows": body},
        "targets": targets,
        "notes": [
            f"median of {repeats} runs; ms/item = (wall at {items:,} items - wall at 1 item) / {items - 1:,}, "
            "so the fixed start-up is not spread over the items; 'start-up s' is the 1-item run.",
            "one item in ten is answered against its expectation (xfail under the default gate), as in a real run.",
            "the image variant shares 100 distinct 224x224 PNGs: the plugin checks each item's image exists; "
            "only a model backend decodes images.",
        ],
        "rows": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="items in the suite and bare tests (default: 10000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration; the median counts")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--no-warm-up", action="store_true", help="skip the untimed first run of each configuration")
    common.add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.items < 2:
        parser.error("--items must be at least 2 (the per-item cost compares with a 1-item run)")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    payload = run(args.items, args.repeats, args.variants, warm_up=not args.no_warm_up)
    common.print_report(payload["title"], payload)
    path = common.write_result("overhead", payload, args.results_dir, args.results_md)
    print(f"wrote {path} and {args.results_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
