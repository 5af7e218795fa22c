"""A generating run, then the same run served from the generation cache.

    python benchmarks/rerun.py                                  # tiny-random on the sample suite
    python benchmarks/rerun.py --threads 1                      # a shared or small CPU machine
    python benchmarks/rerun.py --vlm /path/to/model/folder      # a real model: the ratio that matters
    python benchmarks/rerun.py --sample 8 --max-new-tokens 8    # the CI size

In a temporary folder with a fresh `--vlm-cache` it runs, in a subprocess each,

    pytest --vlm=tiny-random --safety-suite=sample --vlm-cache=cache -q -p no:cacheprovider

twice, and checks from the second run's results file that nothing was generated
(`run.generations == 0`) and that every item came from the cache (`run.cache_hits` == items).
The ratio of the wall times is the target (>= 20x). The tiny model is built before the first
run, so that run measures generation, not the one-time build. The second run still pays the
fixed cost of a pytest session with the plugin (interpreter, torch import, suite loading,
hashing the images for the cache keys), so the ratio grows with the cost of the model: with the
tiny model it shows the floor, with a real model the gain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py sits beside this script

import common  # noqa: E402

common.ensure_plugin_importable()

TARGET = 20.0
RESULTS_FILE = "vlmsafety-results.json"


def pytest_command(args: argparse.Namespace, report_dir: str) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        f"--vlm={args.vlm}", f"--safety-suite={args.suite}", "--vlm-cache=cache", f"--safety-report={report_dir}",
    ]
    if args.sample:
        command.append(f"--safety-sample={args.sample}")
    if args.max_new_tokens:
        command.append(f"--vlm-max-new-tokens={args.max_new_tokens}")
    return command


def subprocess_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        # torch's intra-op threads spin while they wait; on a machine shared with other work that
        # can slow a small model tenfold, so a busy CPU runs more evenly with fewer threads.
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def timed_run(command: Sequence[str], cwd: Path, env: dict[str, str], report_dir: str) -> tuple[float, dict[str, Any]]:
    """Wall seconds and the results file of one run. Exit code 1 (a failed calibration gate, which
    a random model always has) is a finished run; anything else is an error."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    results = cwd / report_dir / RESULTS_FILE
    if done.returncode not in (0, 1) or not results.is_file():
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(command)} (in {cwd}) exited {done.returncode} without {results}:\n{tail}")
    return wall, json.loads(results.read_text(encoding="utf-8"))


def prebuild(vlm: str) -> None:
    if vlm == "tiny-random":
        from pytest_vlmsafety.backends.tiny import build_tiny_model

        build_tiny_model()


def run_facts(results: dict[str, Any], wall: float) -> dict[str, Any]:
    run = results["run"]
    return {
        "wall_s": round(wall, 3),
        "items": len(results["items"]),
        "errors": sum(item["outcome"] == "error" for item in results["items"]),
        "generations": run["generations"],
        "cache_hits": run["cache_hits"],
        "session_s": run["duration_s"],
        **{key: value for key, value in run["timings"].items()},
    }


def cache_problems(second: dict[str, Any]) -> list[str]:
    problems = []
    if second["generations"] != 0:
        problems.append(f"the cached run generated {second['generations']} items (expected 0)")
    if second["cache_hits"] != second["items"]:
        problems.append(f"the cached run had {second['cache_hits']} cache hits for {second['items']} items")
    return problems


def run(args: argparse.Namespace) -> dict[str, Any]:
    prebuild(args.vlm)
    env = subprocess_env(args.threads)
    with tempfile.TemporaryDirectory(prefix="vlmsafety-rerun-") as scratch:
        cwd = Path(scratch)
        first_wall, first = timed_run(pytest_command(args, "first"), cwd, env, "first")
        second_wall, second = timed_run(pytest_command(args, "second"), cwd, env, "second")
    runs = [{"run": "generating", **run_facts(first, first_wall)}, {"run": "cached", **run_facts(second, second_wall)}]
    problems = cache_problems(runs[1])
    speedup = first_wall / second_wall
    if problems:
        status = common.NOT_MET + " (cache check failed: " + "; ".join(problems) + ")"
    else:
        status = common.MET if speedup >= TARGET else common.NOT_MET
    model = first["run"]["model"]
    columns = ["run", "items", "generated", "cache hits", "errors", "wall s", "model load s", "generation s", "judge s"]
    body = [[r["run"], r["items"], r["generations"], r["cache_hits"], r["errors"], r["wall_s"],
             r.get("model_load_s"), r.get("generation_s"), r.get("judge_s")] for r in runs]
    generation_share = common.ratio(runs[0].get("generation_s"), first_wall)
    return {
        "benchmark": "rerun",
        "title": f"Cached rerun: {args.vlm} on {args.suite}",
        "parameters": {"vlm": args.vlm, "suite": args.suite, "sample": args.sample,
                       "max_new_tokens": args.max_new_tokens, "threads": args.threads,
                       "model": model, "generation": first["run"]["generation"]},
        "table": {"columns": columns, "rows": body},
        "targets": [common.target("rerun", f"{speedup:.1f}x ({first_wall:.1f} s -> {second_wall:.1f} s)", status,
                                  label=args.vlm)],
        "notes": [
            f"wall times of whole pytest subprocesses; the model ({model.get('id')}, {model.get('dtype')} on "
            f"{model.get('device')}) runs {runs[0].get('generation_s')} s of the first run's {first_wall:.1f} s "
            f"({(generation_share or 0):.0%}).",
            f"OMP_NUM_THREADS={args.threads} in both runs" if args.threads
            else "OMP_NUM_THREADS unset: torch's default thread count",
            "cache check: " + ("; ".join(problems) if problems else
                               f"the cached run generated nothing and served all {runs[1]['items']} items from the cache"),
        ],
        "rows": runs,
        "speedup": speedup,
        "cache_ok": not problems,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vlm", default="tiny-random", help="the model, as --vlm takes it (default: tiny-random)")
    parser.add_argument("--suite", default="sample", help="the suite, as --safety-suite takes it (default: sample)")
    parser.add_argument("--sample", type=int, default=None, help="run N items of the suite (--safety-sample)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="--vlm-max-new-tokens for both runs")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both runs (default: unset)")
    common.add_output_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("sample", "max_new_tokens", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    payload = run(args)
    common.print_report(payload["title"], payload)
    name = "rerun" if args.vlm == "tiny-random" and args.suite == "sample" else f"rerun-{common.slug(Path(args.vlm).name)}"
    path = common.write_result(name, payload, args.results_dir, args.results_md)
    print(f"wrote {path} and {args.results_md}")
    return 0 if payload["cache_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
