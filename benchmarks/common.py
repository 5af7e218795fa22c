"""Shared by the performance benchmarks (throughput.py, overhead.py, rerun.py).

Each benchmark returns a payload (parameters, a table, its targets, notes, raw rows); this
module adds the facts that make a number comparable (device, GPU name, library versions, date,
plugin version, git commit, machine load), writes `benchmarks/results/<name>-<device>.json`
and regenerates `benchmarks/RESULTS.md` from every result file, one section per device, so the
markdown always shows the latest run of each benchmark on each device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO = BENCHMARKS_DIR.parent
DEFAULT_RESULTS_DIR = BENCHMARKS_DIR / "results"
DEFAULT_RESULTS_MD = BENCHMARKS_DIR / "RESULTS.md"
SCHEMA = "pytest-vlmsafety/benchmark/1"
LIBRARIES = ("torch", "transformers", "tokenizers", "pillow", "pytest", "pytest-xdist", "vllm")

MET = "met"
NOT_MET = "not met"
NO_GPU = "not measured here (no GPU in this session)"

# The targets, in the order RESULTS.md lists them. A benchmark reports a target by id;
# a target no result file reports on a device is listed as not measured there.
TARGETS: dict[str, tuple[str, str, str]] = {
    "batched-vs-loop": (
        "Batched HF generation at batch 32 vs the per-item loop (items/s, GPU)", ">= 8x", "throughput.py"
    ),
    "vllm-vs-hf": ("vLLM vs batched HF generation (items/s)", ">= 3x", "throughput.py"),
    "overhead": ("Plugin cost per item (replay backend) vs bare pytest", "<= 2x", "overhead.py"),
    "rerun": ("Cached rerun vs the generating run (wall time)", ">= 20x", "rerun.py"),
    "pipeline": (
        "Pipeline work time vs max(generation, judging) (fake model and judge)", "<= 1.25x + one batch", "pipeline.py"
    ),
}


def ensure_plugin_importable() -> None:
    """Import the plugin from this checkout even when it is not installed."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


# -- environment facts -------------------------------------------------------------------------


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_name() -> str | None:
    if not cuda_available():
        return None
    import torch

    return str(torch.cuda.get_device_name(0))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_label() -> str:
    """`cpu`, or the GPU's name as a file-name-safe slug (`nvidia-h100-80gb-hbm3`)."""
    name = gpu_name()
    return slug(name) if name else "cpu"


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def plugin_version() -> str:
    ensure_plugin_importable()
    from pytest_vlmsafety import __version__

    return __version__


def git_commit() -> dict[str, Any]:
    """The checkout's commit and whether it has local changes (read-only git calls)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def gpu_facts() -> dict[str, Any]:
    if not cuda_available():
        return {"gpu": None}
    import torch

    props = torch.cuda.get_device_properties(0)
    return {
        "gpu": props.name,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "bf16_supported": bool(torch.cuda.is_bf16_supported()),
    }


def environment() -> dict[str, Any]:
    """Everything a reader needs to judge whether two results are comparable."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_label(),
        **gpu_facts(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        # Other processes share small machines; a high load explains noisy numbers.
        "load_average_1m": round(load[0], 2) if load else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "plugin_version": plugin_version(),
        "git": git_commit(),
    }


# -- command line and output -------------------------------------------------------------------


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR,
                        help=f"folder for the JSON results (default: {DEFAULT_RESULTS_DIR.relative_to(REPO)})")
    parser.add_argument("--results-md", type=Path, default=DEFAULT_RESULTS_MD,
                        help=f"markdown summary to regenerate (default: {DEFAULT_RESULTS_MD.relative_to(REPO)})")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def text_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [list(columns)] + [[format_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(format_cell(value).replace("|", "\\|") for value in row) + " |" for row in rows]
    return lines


def target(target_id: str, measured: str, status: str, *, label: str = "") -> dict[str, str]:
    """One target's verdict, as RESULTS.md lists it. `label` tells apart several of one id."""
    if target_id not in TARGETS:
        raise ValueError(f"unknown target id {target_id!r}; known: {', '.join(TARGETS)}")
    return {"id": target_id, "label": label, "measured": measured, "status": status}


def write_result(name: str, payload: Mapping[str, Any], results_dir: Path, results_md: Path) -> Path:
    """Write `<results_dir>/<name>-<device>.json` and regenerate `results_md`."""
    env = environment()
    document = {"schema": SCHEMA, "name": name, "environment": env, **payload}
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}-{env['device']}.json"
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(scratch, path)
    update_results_md(results_dir, results_md)
    return path


def print_report(title: str, payload: Mapping[str, Any]) -> None:
    table = payload["table"]
    print(f"\n{title}")
    print(text_table(table["columns"], table["rows"]))
    for item in payload.get("targets", []):
        name = TARGETS[item["id"]][0] + (f" [{item['label']}]" if item["label"] else "")
        print(f"target: {name}: goal {TARGETS[item['id']][1]}, measured {item['measured']}: {item['status']}")
    for note in payload.get("notes", []):
        print(f"note: {note}")


# -- RESULTS.md --------------------------------------------------------------------------------

_HEADER = """# Performance results

This file is regenerated by `benchmarks/common.py` from `benchmarks/results/*.json` each time a
benchmark runs: edit the scripts, not this file. It keeps the latest run of each benchmark on
each device. The targets are the ones of the performance issue; they are checked here, never by
timed tests.

    python benchmarks/throughput.py --model tiny            # CPU: the plugin's tiny model
    python benchmarks/throughput.py --model llava-1.5-7b    # GPU: LLaVA-1.5-7B size, random weights
    python benchmarks/throughput.py --model qwen2-vl-2b     # GPU: Qwen2-VL-2B size, random weights
    python benchmarks/overhead.py                           # 10,000 replayed items vs bare pytest
    python benchmarks/rerun.py                              # sample suite, then the same run cached
    python benchmarks/refusal_judge_eval.py                 # refusal judge vs labelled responses
    python benchmarks/pipeline.py                           # generation overlapping judging (fake model and judge)
    python benchmarks/mutation.py                           # mutation testing of the gate (mutmut)
    python benchmarks/openai_client.py                      # the openai: backend's client vs a fake server
"""


def load_results(results_dir: Path) -> list[dict[str, Any]]:
    """The benchmark result files of this schema (other JSON files in the folder are skipped)."""
    documents = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(document, dict) and document.get("schema") == SCHEMA:
            documents.append(document)
    return documents


def _device_order(device: str) -> tuple[int, str]:
    return (1 if device == "cpu" else 0, device)


def _device_heading(documents: Sequence[Mapping[str, Any]]) -> str:
    env = max((d["environment"] for d in documents), key=lambda e: e["date"])
    if env.get("gpu"):
        gpu = f"{env['gpu']} ({env.get('gpu_memory_gib')} GiB, CUDA {env.get('cuda')}"
        return f"{gpu}; CPU {env['cpu']}, {env['cpu_count']} cores)"
    return f"CPU only: {env['cpu']}, {env['cpu_count']} cores"


def _target_rows(device: str, documents: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    reported: dict[str, list[Mapping[str, str]]] = {}
    for document in documents:
        for item in document.get("targets", []):
            reported.setdefault(item["id"], []).append(item)
    rows = []
    for target_id, (description, goal, script) in TARGETS.items():
        for item in reported.get(target_id, []):
            label = f"{description} [{item['label']}]" if item["label"] else description
            rows.append([label, goal, item["measured"], item["status"]])
        if target_id not in reported:
            gpu_only = device == "cpu" and target_id in ("batched-vs-loop", "vllm-vs-hf")
            status = NO_GPU if gpu_only else "not measured on this device"
            rows.append([description, goal, "-", f"{status}: run `benchmarks/{script}`"])
    return rows


def _document_section(document: Mapping[str, Any]) -> list[str]:
    env = document["environment"]
    libraries = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v)
    git = env.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" + local changes" if git.get("dirty") else "")
    lines = [
        f"### {document['title']}",
        "",
        f"{env['date']}; plugin {env['plugin_version']} at {commit}; {libraries}; "
        f"python {env['python']}; load average {env.get('load_average_1m')} on {env['cpu_count']} cores.",
        "",
    ]
    lines += markdown_table(document["table"]["columns"], document["table"]["rows"])
    notes = document.get("notes") or []
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    lines.append("")
    return lines


def _own_sections(results_dir: Path) -> list[str]:
    """Sections that a benchmark with its own result format renders itself: the `results_md` lines
    of a results file (benchmarks/refusal_judge_eval.py)."""
    lines: list[str] = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        section = document.get("results_md") if isinstance(document, dict) else None
        if isinstance(section, list) and all(isinstance(line, str) for line in section):
            lines += [*section, ""]
    return lines


def render_results_md(results_dir: Path) -> str:
    by_device: dict[str, list[dict[str, Any]]] = {}
    for document in load_results(results_dir):
        by_device.setdefault(document["environment"]["device"], []).append(document)
    lines = [_HEADER]
    if not any(device != "cpu" for device in by_device):
        lines += [
            "No GPU result yet: the GPU targets (batched >= 8x the per-item loop, vLLM >= 3x batched HF) are "
            "not measured here (no GPU in this session). On a GPU machine run "
            "`python benchmarks/throughput.py --model llava-1.5-7b` (and `--model qwen2-vl-2b`).",
            "",
        ]
    for device in sorted(by_device, key=_device_order):
        documents = sorted(by_device[device], key=lambda d: d["name"])
        lines += [f"## {device}: {_device_heading(documents)}", "", "### Targets", ""]
        lines += markdown_table(["target", "goal", "measured", "status"], _target_rows(device, documents))
        lines.append("")
        for document in documents:
            lines += _document_section(document)
    lines += _own_sections(results_dir)
    return "\n".join(lines).rstrip() + "\n"


def update_results_md(results_dir: Path, results_md: Path) -> None:
    results_md.parent.mkdir(parents=True, exist_ok=True)
    results_md.write_text(render_results_md(results_dir), encoding="utf-8")
