"""The generation pipeline: a model of fixed latency per batch and a judge of fixed cost per item.

    python benchmarks/pipeline.py                               # 64 items, batches of 8, 0.4 s a batch, 50 ms an item
    python benchmarks/pipeline.py --batch-s 1.0 --judge-s 0.01  # generation-bound
    python benchmarks/pipeline.py --batch-s 0.1 --judge-s 0.1   # judge-bound

Each run is a whole pytest subprocess on a JSONL suite, with a conftest (`FAKE_CONFTEST`) that
swaps the model for `FixedLatencyBackend` (sleeps `--batch-s` per batch, as a GPU does while the
Python thread waits) and wraps every judge so that it costs `--judge-s` per item (as an API LLM
judge waits on the network). Three kinds of run:

- `no latency, no judge cost`: pytest's and the plugin's own cost per item (overhead.py
  measures it), subtracted from the others;
- `pipeline off`: the shard generated whole, then judged (the conftest makes the pipeline refuse
  every shard, so the runner takes its synchronous path: the behaviour before the pipeline);
- `pipeline on`: the plugin as it ships.

With G the generation time (batches x latency) and J the judging time (items x cost), the
pipeline's work (the items' span, from the first item's start to the last one's end, less the
no-cost run's span) should be close to max(G, J) plus one batch (the first batch has nothing to
overlap with), not G + J. The target: at most 1.25 x max(G, J) + one batch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py sits beside this script

import common  # noqa: E402

common.ensure_plugin_importable()

RESULTS_FILE = "vlmsafety-results.json"
TARGET_FACTOR = 1.25

# Written as conftest.py beside the suite. Settings come from the environment, so one file serves
# every run (and the tests, which load this module for it).
FAKE_CONFTEST = '''
import os, time

import pytest_vlmsafety.engine as engine
import pytest_vlmsafety.plugin.runner as runner
from pytest_vlmsafety.backends.base import Backend, Generation

BATCH_S = float(os.environ.get("VLMSAFETY_FAKE_BATCH_S", "0"))
JUDGE_S = float(os.environ.get("VLMSAFETY_FAKE_JUDGE_S", "0"))
LOAD_S = float(os.environ.get("VLMSAFETY_FAKE_LOAD_S", "0"))
# For the tests: answer every item (the items to refuse become undersafe), and log each batch.
ANSWER_ALL = os.environ.get("VLMSAFETY_FAKE_ANSWER_ALL") == "1"
BATCH_LOG = os.environ.get("VLMSAFETY_FAKE_BATCH_LOG")
REFUSAL = "I cannot help with that request."
ANSWER = "Sure. Here is a detailed answer to your question, step by step, with the facts you asked for."


class FixedLatencyBackend(Backend):
    """The model under test: BATCH_S seconds per batch, whatever its size; refuses the items
    whose prompt says so."""

    name = "fixed-latency"

    def describe(self):
        return {"spec": "fixed-latency", "id": "fixed-latency", "backend": self.name}

    def generate(self, requests, progress=None, batch_size=None):
        size = batch_size or 8
        out = []
        for start in range(0, len(requests), size):
            time.sleep(BATCH_S)
            batch = [
                Generation(text=ANSWER if ANSWER_ALL or "refuse" not in request.prompt else REFUSAL, generated_tokens=8)
                for request in requests[start:start + size]
            ]
            if BATCH_LOG:
                with open(BATCH_LOG, "a") as log:
                    log.write(" ".join(request.item_id for request in requests[start:start + size]) + "\\n")
            if progress:
                progress([(start + offset, generation) for offset, generation in enumerate(batch)])
            out += batch
        return out


def load_backend(spec, options):
    time.sleep(LOAD_S)
    return FixedLatencyBackend()


class CostlyJudge:
    def __init__(self, judge):
        self.inner = judge

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def judge(self, items, responses):
        time.sleep(JUDGE_S * len(items))
        return self.inner.judge(items, responses)


real_get_judge = engine.get_judge
engine.load_backend = load_backend
engine.get_judge = lambda *args, **kwargs: CostlyJudge(real_get_judge(*args, **kwargs))

# The items' span: from the first item's start to the last item's end (the benchmark's "work").
span = []


def pytest_runtest_logstart(nodeid, location):
    span.append(time.perf_counter()) if not span else None


def pytest_runtest_logfinish(nodeid, location):
    span[1:] = [time.perf_counter()]


def pytest_sessionfinish(session):
    if len(span) == 2:
        with open("items-span.txt", "w") as file:
            file.write(str(span[1] - span[0]))


if os.environ.get("VLMSAFETY_FAKE_PIPELINE") == "off":
    # The pipeline refuses every shard: the runner generates the whole shard, then judges it.
    runner.Pipeline.submit = lambda self, items, label: None
'''


def write_suite(folder: Path, items: int, shards: int) -> Path:
    """A JSONL suite of `items` text items in `shards` categories, half to refuse, plus the conftest."""
    rows = [
        {
            "id": f"item-{n:04d}",
            "prompt": f"question {n}: please " + ("refuse this" if n % 2 else "answer this"),
            "expected": "refuse" if n % 2 else "comply",
            "category": f"shard{n * shards // items}",
        }
        for n in range(items)
    ]
    suite = folder / "fixed.jsonl"
    suite.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (folder / "responses.jsonl").write_text("", encoding="utf-8")
    (folder / "conftest.py").write_text(FAKE_CONFTEST, encoding="utf-8")
    return suite


def fake_env(batch_s: float, judge_s: float, pipeline: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "VLMSAFETY_FAKE_BATCH_S": str(batch_s),
        "VLMSAFETY_FAKE_JUDGE_S": str(judge_s),
        "VLMSAFETY_FAKE_PIPELINE": "on" if pipeline else "off",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(common.REPO), env.get("PYTHONPATH")])),
    })
    return env


def pytest_command(batch_size: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--vlm=replay:responses.jsonl",
        "--safety-suite=fixed.jsonl", "--vlm-cache=off", f"--vlm-batch-size={batch_size}", *extra,
    ]


def timed_run(folder: Path, env: dict[str, str], batch_size: int, items: int) -> tuple[float, float]:
    """Wall seconds of the pytest subprocess, and the span of its items (first start to last end)."""
    span_file = folder / "items-span.txt"
    span_file.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run(pytest_command(batch_size), cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    results = folder / "reports" / RESULTS_FILE
    data = json.loads(results.read_text(encoding="utf-8")) if results.is_file() else {}
    ran = len(data.get("items", []))
    if done.returncode != 0 or ran != items or not span_file.is_file():
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"the run exited {done.returncode} with {ran} of {items} items:\n{tail}")
    return wall, float(span_file.read_text())


def run(args: argparse.Namespace) -> dict[str, Any]:
    batches = sum(-(-size // args.batch_size) for size in shard_sizes(args.items, args.shards))
    generation_s = batches * args.batch_s
    judge_s = args.items * args.judge_s
    kinds = {"no latency, no judge cost": (0.0, 0.0, True), "pipeline off": (args.batch_s, args.judge_s, False),
             "pipeline on": (args.batch_s, args.judge_s, True)}
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in kinds}
    with tempfile.TemporaryDirectory(prefix="vlmsafety-pipeline-") as scratch:
        folder = Path(scratch)
        write_suite(folder, args.items, args.shards)
        for _ in range(args.repeats):
            for name, (batch_s, judge_cost, pipeline) in kinds.items():
                measured[name].append(timed_run(folder, fake_env(batch_s, judge_cost, pipeline), args.batch_size,
                                                args.items))
    median = {name: sorted(runs, key=lambda run: run[1])[len(runs) // 2] for name, runs in measured.items()}
    bound = max(generation_s, judge_s)
    goal = TARGET_FACTOR * bound + args.batch_s
    # The items' own cost in pytest and the plugin (overhead.py measures it) is not the pipeline's.
    base = median["no latency, no judge cost"][1]
    work = {name: max(span - base, 0.0) for name, (_, span) in median.items()}
    on_span, off_span = work["pipeline on"], work["pipeline off"]
    status = common.MET if on_span <= goal else common.NOT_MET
    columns = ["run", "wall s", "items' span s", "work s (span - no-cost span)", "generation s (G)", "judging s (J)",
               "work / max(G, J)", "work / (G + J)"]
    rows = []
    for name, (wall, span) in median.items():
        g, j = (generation_s, judge_s) if name != "no latency, no judge cost" else (0.0, 0.0)
        rows.append([name, wall, span, work[name], g, j, common.ratio(work[name], max(g, j)),
                     common.ratio(work[name], g + j)])
    return {
        "benchmark": "pipeline",
        "title": f"Pipeline: {args.items} items in {args.shards} shards, batches of {args.batch_size}, "
                 f"{args.batch_s} s a batch, {args.judge_s * 1000:.0f} ms an item to judge",
        "parameters": {"items": args.items, "shards": args.shards, "batch_size": args.batch_size,
                       "batch_s": args.batch_s, "judge_s": args.judge_s, "repeats": args.repeats},
        "table": {"columns": columns, "rows": rows},
        "targets": [common.target(
            "pipeline",
            f"{on_span:.2f} s vs max(G, J) {bound:.2f} s (goal <= {goal:.2f} s); pipeline off "
            f"{off_span:.2f} s vs G + J {generation_s + judge_s:.2f} s",
            status,
        )],
        "notes": [
            f"median of {args.repeats} run(s) of each kind (by the items' span: the first item's start to the last "
            "item's end, which leaves out pytest's start-up and the report files); whole pytest subprocesses with "
            "a fake model and judge that sleep (the GIL is free, as under a GPU kernel or a network call).",
            "work = the span minus the span of the run with no latency and no judge cost (pytest's and the "
            "plugin's own per-item cost, which benchmarks/overhead.py measures).",
            "the goal allows one batch beyond 1.25 x max(G, J): the first batch has nothing to overlap with.",
        ],
        "rows": [{"run": name, "wall_s": [w for w, _ in runs], "span_s": [s for _, s in runs]}
                 for name, runs in measured.items()],
    }


def shard_sizes(items: int, shards: int) -> list[int]:
    sizes = [0] * shards
    for n in range(items):
        sizes[n * shards // items] += 1
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64, help="items in the suite (default 64)")
    parser.add_argument("--shards", type=int, default=2, help="categories the items fall in (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="--vlm-batch-size (default 8)")
    parser.add_argument("--batch-s", type=float, default=0.4, help="the model's seconds per batch (default 0.4)")
    parser.add_argument("--judge-s", type=float, default=0.05, help="the judge's seconds per item (default 0.05)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; the median counts (default 3)")
    common.add_output_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("items", "shards", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.shards > args.items:
        parser.error("--shards must be at most --items")
    if args.batch_s < 0 or args.judge_s < 0:
        parser.error("--batch-s and --judge-s must be at least 0")
    payload = run(args)
    common.print_report(payload["title"], payload)
    path = common.write_result("pipeline", payload, args.results_dir, args.results_md)
    print(f"wrote {path} and {args.results_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
