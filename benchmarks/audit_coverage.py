"""Coverage of the human audit's corrected undersafety interval (issue 23).

    python benchmarks/audit_coverage.py [--reps 300] [--judge-dev DIR] [--out FILE]

Two parts, both through the plugin's own functions (`audit.draw_audit` draws the sample as
`--safety-audit` does, `audit.apply_label` applies the labels, `audit.suite_audit` estimates):

1. Simulation: a suite of items to refuse with a known share the model complied with (and, in one
   setting, a share a human would call neither), a judge with known error rates (sensitivity: a
   compliance called complied; false alarm: a refusal called complied), an audit of n items
   labelled with the truth, repeated over seeds. Reported: how often the corrected 95% interval
   covers the population's true rate (about 0.95 is right), and how often the judge's own Wilson
   interval does.
2. Real VLM responses: `../shared/judge-dev/msts_dev.jsonl` (MSTS, Röttger et al. 2025, CC BY 4.0:
   1,387 responses of five VLMs to unsafe image+text prompts, human-labelled refused / complied),
   judged by this plugin's `refusal` judge, audited on 200 (and 100) items drawn with different
   seeds: the coverage of the rate the human labels give on all items. Skipped when absent.

Writes `benchmarks/results/audit_coverage.json` (with the `results_md` lines of its section) and
regenerates benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

common.ensure_plugin_importable()

from pytest_vlmsafety.gate.audit import (  # noqa: E402
    AuditLabel,
    AuditLabels,
    apply_label,
    draw_audit,
    suite_audit,
)
from pytest_vlmsafety.output.audit_file import response_sha256  # noqa: E402
from pytest_vlmsafety.items import Record  # noqa: E402
from pytest_vlmsafety.gate.metrics import wilson_interval  # noqa: E402

DEFAULT_OUT = HERE / "results" / "audit_coverage.json"
DEFAULT_JUDGE_DEV = HERE.parent.parent / "shared" / "judge-dev"

# (name, items, true complied share, true neither share, sensitivity, false alarm, audit size)
SCENARIOS: tuple[tuple[str, int, float, float, float, float, int], ...] = (
    ("rare failures, judge reads half the refusals as answers", 1000, 0.05, 0.0, 0.9, 0.5, 200),
    ("the same, a small audit", 1000, 0.05, 0.0, 0.9, 0.5, 50),
    ("common failures, a judge that misses some", 1000, 0.20, 0.0, 0.7, 0.1, 100),
    ("very rare failures, a good judge", 1000, 0.02, 0.0, 0.95, 0.02, 100),
    ("a poor judge, a tiny audit", 500, 0.30, 0.0, 0.6, 0.3, 30),
    ("10% neither refused nor answered (half called answers)", 1000, 0.10, 0.10, 0.9, 0.2, 100),
)


def one_run(truth: list[str], called: list[str], audit: int, seed: int) -> tuple[float, float, float, float, float]:
    """(true rate, corrected low, corrected high, judge's low, judge's high) of one audited run."""
    records = [
        Record(id=f"i{index}", suite="s", category="c", expected="refuse", task="open", prompt=f"p{index}",
               response=f"r{index}", verdict=verdict, judge="refusal",
               outcome="undersafety" if verdict == "complied" else "pass")
        for index, verdict in enumerate(called)
    ]
    labels = AuditLabels()
    for record in draw_audit(records, audit, seed):
        truth_label = truth[int(record.id[1:])]
        sha = response_sha256(record.response or "")
        labels.labels[record.key] = AuditLabel("s", record.id, truth_label, sha, None, "simulation")
    for record in records:
        apply_label(record, labels)
    estimate = suite_audit("s", records, seed).corrected["undersafety"]
    complied = truth.count("complied")
    actual = complied / (complied + truth.count("refused"))
    judged_complied = called.count("complied")
    low, high = wilson_interval(judged_complied, len(called)) or (0.0, 1.0)
    assert estimate.ci_low is not None and estimate.ci_high is not None
    return actual, estimate.ci_low, estimate.ci_high, low, high


def summarise(runs: list[tuple[float, float, float, float, float]]) -> dict[str, float]:
    data = np.array(runs)
    actual, low, high, judge_low, judge_high = data.T
    return {
        "coverage": float(np.mean((low <= actual) & (actual <= high))),
        "judge_coverage": float(np.mean((judge_low <= actual) & (actual <= judge_high))),
        "mean_width": float(np.mean(high - low)),
        "true_rate": float(np.mean(actual)),
    }


def simulate(reps: int) -> list[dict[str, Any]]:
    rows = []
    for name, size, complied, neither, sensitivity, false_alarm, audit in SCENARIOS:
        runs = []
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            draw = rng.random(size)
            truth = ["complied" if u < complied else "neither" if u < complied + neither else "refused" for u in draw]
            noise = rng.random(size)
            called = [
                "complied" if noise[i] < (sensitivity if t == "complied" else 0.5 if t == "neither" else false_alarm)
                else "refused"
                for i, t in enumerate(truth)
            ]
            runs.append(one_run(truth, called, audit, rep))
        rows.append({"scenario": name, "items": size, "true_complied": complied, "sensitivity": sensitivity,
                     "false_alarm": false_alarm, "audit": audit, **summarise(runs)})
        print(f"{name}: {rows[-1]}", flush=True)
    return rows


def real_responses(judge_dev: Path, reps: int) -> list[dict[str, Any]]:
    path = judge_dev / "msts_dev.jsonl"
    if not path.is_file():
        print(f"skipped the real responses: {path} is absent")
        return []
    from pytest_vlmsafety.judges.refusal import decide

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    truth = ["refused" if row["refused"] else "complied" for row in rows]
    called = [decide(row["response"]).label for row in rows]
    results = []
    for audit in (200, 100):
        runs = [one_run(truth, called, audit, rep) for rep in range(reps)]
        results.append({"data": "MSTS dev (5 VLMs)", "items": len(rows), "audit": audit,
                        "judge_rate": called.count("complied") / len(called), **summarise(runs)})
        print(f"MSTS audit {audit}: {results[-1]}", flush=True)
    return results


def results_md_section(document: dict[str, Any]) -> list[str]:
    lines = [
        "## Human audit: coverage of the corrected undersafety interval",
        "",
        f"{document['date']}; `python benchmarks/audit_coverage.py --reps {document['reps']}`; "
        f"{document['reps']} seeds a row; {document['seconds']:.0f} s. A nominal 95% interval should cover the "
        f"true rate in about 95% of runs (with {document['reps']} seeds, within about "
        f"±{1.96 * (0.95 * 0.05 / document['reps']) ** 0.5:.3f}).",
        "",
        "| setting | items | true rate | judge sensitivity / false alarm | audit | corrected CI covers | mean width "
        "| judge's CI covers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in document["simulation"]:
        lines.append(
            f"| {row['scenario']} | {row['items']} | {row['true_rate']:.3f} | {row['sensitivity']} / "
            f"{row['false_alarm']} | {row['audit']} | {row['coverage']:.3f} | {row['mean_width']:.3f} | "
            f"{row['judge_coverage']:.3f} |"
        )
    if document["real"]:
        lines += [
            "",
            "Real VLM responses, human-labelled (MSTS, Röttger et al. 2025, CC BY 4.0; `../shared/judge-dev/`), judged "
            "by the `refusal` judge; the same responses, audits drawn with different seeds:",
            "",
            "| data | items | human rate | judge's rate | audit | corrected CI covers | mean width "
            "| judge's CI covers |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in document["real"]:
            lines.append(
                f"| {row['data']} | {row['items']} | {row['true_rate']:.3f} | {row['judge_rate']:.3f} | {row['audit']} "
                f"| {row['coverage']:.3f} | {row['mean_width']:.3f} | {row['judge_coverage']:.3f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--judge-dev", type=Path, default=DEFAULT_JUDGE_DEV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    document: dict[str, Any] = {
        "name": "audit_coverage",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "reps": args.reps,
        "simulation": simulate(args.reps),
        "real": real_responses(args.judge_dev, args.reps),
    }
    document["seconds"] = time.perf_counter() - started
    document["results_md"] = results_md_section(document)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print("\n".join(document["results_md"]))
    if args.out.resolve() == DEFAULT_OUT.resolve():
        common.update_results_md(args.out.parent, HERE / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
