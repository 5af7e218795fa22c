"""How the HTML report scales: render time, file size and (with Chromium) opening time.

Builds synthetic results like a real run's (30% failures, a few hundred distinct images shared
by many items, contrast pairs, some degenerate very long responses), renders the report and
measures it; then a worst case: every response long, 2,500 distinct images. Prints a table and
writes benchmarks/results/report_scale.json.

    python benchmarks/report_scale.py [--sizes 1000 10000] [--images 300] [--no-browser] [--no-worst]

tests/test_html_report.py imports `synthetic_results` from here for its 10,000-item test.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

RESULTS_FILE = Path(__file__).parent / "results" / "report_scale.json"
SUITES = ("vscbench", "holisafe", "mis")
CATEGORIES = ("drugs", "violence", "illegal_activity", "privacy", "self_harm", "hate")
# Outcome shares: 30% of the items fail in some way.
OUTCOME_WEIGHTS = {"pass": 70, "undersafety": 17, "oversafety": 8, "incorrect": 2, "unparsed": 1, "error": 2}
WORDS = (
    "the image shows a person holding an object near a table while others watch from a distance "
    "here is a detailed explanation step by step first second third finally note that safety matters"
).split()


def make_images(folder: Path, count: int, *, size: int = 384, seed: int = 0) -> list[Path]:
    """`count` distinct PNGs with noise, which compresses poorly: a pessimistic thumbnail size."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        base = Image.new("RGB", (size, size), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        noise = Image.effect_noise((size, size), 40 + index % 30).convert("RGB")
        path = folder / f"img_{index:05d}.png"
        Image.blend(base, noise, 0.35).save(path)
        paths.append(path)
    return paths


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _response(rng: random.Random, outcome: str, long_responses: bool) -> str | None:
    if outcome == "error":
        return None
    if long_responses or rng.random() < 0.01:  # a degenerate, repeating generation
        return "Step 1. Continue the list. " * rng.randrange(300, 1500)
    return _text(rng, rng.randrange(30, 450))


def synthetic_results(
    n_items: int, images: list[Path], *, seed: int = 0, long_responses: bool = False
) -> dict[str, Any]:
    """A results dict shaped like the plugin's, with `n_items` items over three suites.
    `long_responses`: every response is a long degenerate one (8,000 to 40,000 characters)."""
    rng = random.Random(seed)
    outcomes = rng.choices(list(OUTCOME_WEIGHTS), weights=list(OUTCOME_WEIGHTS.values()), k=n_items)
    items = []
    for index, outcome in enumerate(outcomes):
        suite = SUITES[index % len(SUITES)]
        expected = "comply" if outcome == "oversafety" or (outcome == "pass" and index % 2) else "refuse"
        task = "choice" if outcome in ("incorrect", "unparsed") else "open"
        images_of_item = [str(rng.choice(images))] * (2 if suite == "mis" else 1)
        items.append(
            {
                "id": f"{suite}-{index:06d}",
                "suite": suite,
                "subset": "",
                "category": CATEGORIES[index % len(CATEGORIES)],
                "expected": expected,
                "task": task,
                "prompt": _text(rng, rng.randrange(8, 60)),
                "images": images_of_item,
                "outcome": outcome,
                "response": _response(rng, outcome, long_responses),
                "verdict": None
                if outcome == "error"
                else ("refused" if outcome in ("pass", "oversafety") else "complied"),
                "reason": None if outcome == "error" else "matched 'i cannot'",
                "judge": None if outcome == "error" else "refusal",
                "answer_key": "A" if task == "choice" else None,
                # Neighbouring items of a suite form contrast pairs.
                "pair": f"row-{index // (2 * len(SUITES))}" if index % 5 else None,
                "meta": {"variant": "image", "row": index},
                "error": "ItemError: image could not be decoded" if outcome == "error" else None,
                "cached": False,
                "nodeid": f"vlmsafety::{suite}::{index}",
            }
        )
    return {
        "schema": "pytest-vlmsafety/results/1",
        "run": {
            "plugin_version": "0.1.0",
            "started": "2025-06-01T10:00:00+00:00",
            "finished": "2025-06-01T12:00:00+00:00",
            "duration_s": 7200.0,
            "model": {
                "spec": "synthetic",
                "id": "synthetic",
                "revision": None,
                "weights_hash": None,
                "backend": "replay",
                "dtype": "float32",
                "device": "cpu",
                "noise": False,
            },
            "generation": {"max_new_tokens": 512, "batch_size": "auto", "do_sample": False},
            "seed": seed,
            "sample": None,
            "suites": list(SUITES),
            "judge": "auto",
            "gate": {"mode": "rates", "max_undersafety": 0.1, "max_oversafety": 0.1},
            "generations": n_items,
            "cache_hits": 0,
            "timings": {"model_load_s": 0.0, "generation_s": 0.0, "judge_s": 0.0},
        },
        "items": items,
        "suites": {suite: _suite_summary([item for item in items if item["suite"] == suite]) for suite in SUITES},
        "gate": {"passed": False, "failures": ["synthetic failure"]},
    }


def _suite_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    def calibration(subset: list[dict[str, Any]]) -> dict[str, Any]:
        result = {}
        for rate, expected in (("undersafety", "refuse"), ("oversafety", "comply")):
            relevant = [
                item for item in subset if item["expected"] == expected and item["outcome"] not in ("error", "unparsed")
            ]
            count = sum(item["outcome"] == rate for item in relevant)
            share = count / len(relevant) if relevant else None
            result[rate] = {
                "count": count,
                "total": len(relevant),
                "rate": share,
                "ci_low": None if share is None else max(0.0, share - 0.02),
                "ci_high": None if share is None else min(1.0, share + 0.02),
            }
        return result

    def counts(subset: list[dict[str, Any]]) -> dict[str, int]:
        return {outcome: sum(item["outcome"] == outcome for item in subset) for outcome in OUTCOME_WEIGHTS}

    return {
        "counts": counts(items),
        "calibration": calibration(items),
        "categories": {
            category: {"calibration": calibration(members), "counts": counts(members)}
            for category in CATEGORIES
            if (members := [item for item in items if item["category"] == category])
        },
        "official": {"RR": 0.08, "mASR": 0.17},
        "pairs": {"total": 0, "calibrated": 0, "refuses_both": 0, "answers_both": 0, "inverted": 0},
        "gate": {"passed": False, "failures": ["undersafety above max"], "status": "fail"},
    }


def _browser_timings(report: Path) -> dict[str, float] | None:
    """Seconds to open the report in headless Chromium and to apply a filter, or None."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from browser import browser_unavailable_reason, headless_chromium

    if browser_unavailable_reason():
        return None
    with headless_chromium() as driver:
        started = time.perf_counter()
        driver.get(report.as_uri())  # returns once the load event has fired
        opened = time.perf_counter() - started
        filter_s = driver.execute_script(
            """
            const select = document.getElementById('filter-outcome');
            const t0 = performance.now();
            select.value = 'oversafety';
            select.dispatchEvent(new Event('change'));
            return (performance.now() - t0) / 1000;
            """
        )
        search_s = driver.execute_script(
            """
            const box = document.getElementById('filter-text');
            const t0 = performance.now();
            box.value = 'detailed explanation';
            box.dispatchEvent(new Event('search'));
            return (performance.now() - t0) / 1000;
            """
        )
    return {"open_s": round(opened, 3), "filter_s": round(float(filter_s), 3), "search_s": round(float(search_s), 3)}


def measure(scenario: str, n_items: int, images: list[Path], folder: Path, *, browser: bool) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pytest_vlmsafety.output.html import write_html_report

    results = synthetic_results(n_items, images, long_responses=scenario == "worst")
    started = time.perf_counter()
    report = write_html_report(results, folder / f"report_{scenario}_{n_items}.html")
    render_s = time.perf_counter() - started
    row: dict[str, Any] = {
        "scenario": scenario,
        "items": n_items,
        "failing_or_error": sum(item["outcome"] != "pass" for item in results["items"]),
        "distinct_images": len(images),
        "render_s": round(render_s, 3),
        "size_mb": round(report.stat().st_size / 1e6, 2),
    }
    if browser:
        row.update(_browser_timings(report) or {"browser": "unavailable"})
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-worst", action="store_true", help="skip the worst case (slow: makes 2,500 images)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        images = make_images(folder / "images", args.images)
        rows = [measure("typical", size, images, folder, browser=not args.no_browser) for size in args.sizes]
        if not args.no_worst:
            # Every response long and more distinct images than the default thumbnail limit:
            # the text and image budgets must keep the file under 25 MB.
            many = make_images(folder / "many", 2500, seed=1)
            rows.append(measure("worst", max(args.sizes), many, folder, browser=not args.no_browser))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print(" | ".join(f"{column:>16}" for column in columns))
    for row in rows:
        print(" | ".join(f"{str(row.get(column, '')):>16}" for column in columns))
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps({"machine": platform.platform(), "python": platform.python_version(), "rows": rows}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
