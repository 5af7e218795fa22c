"""Mutation testing of the code that decides the release gate: how many small realistic edits of
it (a `>` made `>=`, a `continue` made `break`, a string emptied...) make a fast test fail.

    pip install -e ".[mutation]"                 # mutmut, pinned
    python benchmarks/mutation.py                # every gate-critical function (minutes, niced)
    python benchmarks/mutation.py --module gate.metrics --module gate.evaluation   # narrower, while iterating
    python benchmarks/mutation.py --report-only  # the table of the last run, without running
    python benchmarks/mutation.py --all          # rerun killed mutants too (default: only the rest)

On demand, never in CI. mutmut (configured under [tool.mutmut] in pyproject.toml) copies the
package into `mutants/`, runs the fast gate tests once to learn which test calls which function,
then runs each mutant against the tests that call its function. This script narrows the run to
the gate-critical functions below, reads mutmut's per-file results, sets aside the survivors
listed in EQUIVALENT (edits that cannot change behaviour, each with the reason) and writes the
kill-rate table to benchmarks/results/mutation.json and benchmarks/RESULTS.md.

mutmut mutates function and method bodies only: module-level constants (GATE_SEVERITY,
RATE_POLARITY, UNJUDGED_OUTCOMES) and decorated functions (properties, pytest hook wrappers)
are not mutated; tests/test_gate_rules.py states their rules directly.

Exit status: 0 when every module's kill rate is at least --min-kill-rate (default 0.9), 1 when
one is below, 2 when mutmut is missing or did not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO = BENCHMARKS_DIR.parent
sys.path.insert(0, str(BENCHMARKS_DIR))

from common import DEFAULT_RESULTS_DIR, DEFAULT_RESULTS_MD, git_commit, update_results_md  # noqa: E402

PACKAGE = "pytest_vlmsafety"

# The functions that decide the gate, per module, as mutmut names them: `x_<function>` for a
# module function, `xǁ<Class>ǁ<method>` for a method.
GATE_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "gate.metrics": (
        "x_wilson_interval", "x_rate_summary", "x_is_calibration_item", "x_calibration",
        "x_calibration_scope", "x_evaluate_gate",
    ),
    "gate.evaluation": ("x_suite_results", "x_build_document"),
    "gate.verdict": ("x_decide_gates",),
    "gate.baseline": (
        "x_check_pairing", "x_mcnemar_exact_p", "x_compare_to_baseline", "x__compare_suite", "x__rate_change",
        "x__flips", "x_regressions", "x_is_known_failure", "x_baseline_section", "x_judge_pairing",
        "xǁSuiteComparisonǁrate",
    ),
    "plugin.controller": (
        "x_report_gate", "xǁControllerǁbuild", "xǁControllerǁnot_run",
        "xǁControllerǁfinish", "xǁControllerǁ_plan", "xǁControllerǁpytest_runtest_logreport",
    ),
    "items": ("x_outcome_of", "x_worst_sample"),
    "output.document": ("x_worst_status", "xǁSuiteGateǁ__post_init__", "xǁRunGateǁ__post_init__"),
    "plugin.runner": ("xǁItemRunnerǁcheck_record",),
}


@dataclass(frozen=True)
class Equivalent:
    """A survivor that no test can kill: the edit does not change what the code does. Matched on
    the function and the changed line (not mutmut's mutant number, which moves when the code
    does), so an edit of the code re-opens the question."""

    function: str
    removed: str
    added: str
    reason: str


EQUIVALENT: tuple[Equivalent, ...] = (
    Equivalent("gate.metrics.x_evaluate_gate", "measured_any = False", "measured_any = None",
               "only read as a truth value: None and False are both false"),
    Equivalent("gate.baseline.x_mcnemar_exact_p", "if flips == 0:", "if flips == 1:",
               "the exact formula gives p = 1 for 0 flips (2 * 1/1, capped) and for 1 flip (2 * 1/2): "
               "the early return only saves the sum"),
    Equivalent("plugin.controller.xǁControllerǁbuild", "if not summaries and self.local_summary is not None:",
               "if not summaries or self.local_summary is not None:",
               "worker summaries exist only on an xdist controller, which has no local summary (session.py): "
               "the two conditions never differ"),
    Equivalent("gate.evaluation.x_suite_results", 'calibration=parse_as(Calibration, calib, "calibration"),',
               "calibration=parse_as(Calibration, calib, *),",
               "the label only names the field in a parse error, and calibration() always returns a valid one"),
    Equivalent("gate.evaluation.x_suite_results",
               'counts=outcome_counts(group), calibration=parse_as(Calibration, calibration(group), "calibration")',
               "counts=outcome_counts(group), calibration=parse_as(Calibration, calibration(group), *)",
               "the label only names the field in a parse error, and calibration() always returns a valid one"),
    Equivalent("plugin.controller.x_report_gate", "session.testscollected += 1", "session.testscollected = 1",
               "pytest only compares testscollected with 0 (no tests collected), and a gate test follows items"),
    Equivalent("plugin.controller.x_report_gate", "session.testscollected += 1", "session.testscollected += 2",
               "pytest only compares testscollected with 0 (no tests collected)"),
    Equivalent("plugin.controller.x_report_gate", "session.testsfailed += 1", "session.testsfailed = 1",
               "after the run loop pytest reads testsfailed as a truth value (exit status 1)"),
    Equivalent("plugin.controller.x_report_gate", "session.testsfailed += 1", "session.testsfailed += 2",
               "after the run loop pytest reads testsfailed as a truth value (exit status 1)"),
)

@dataclass(frozen=True)
class HandMutant:
    """An edit of what mutmut does not mutate (module-level constants, decorated hooks), applied to
    a copy of the package and run against the fast tests of `tests`: it must make one fail."""

    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    rule: str


HAND_MUTANTS: tuple[HandMutant, ...] = (
    HandMutant("output/document.py", '"fail", "error", "interrupted")', '"fail", "interrupted", "error")',
               ("tests/test_document.py", "tests/test_gate_rules.py"),
               "severity order: interrupted is the most severe"),
    HandMutant("output/document.py", '("pass", "inconclusive", "fail",', '("pass", "fail", "inconclusive",',
               ("tests/test_document.py", "tests/test_gate_rules.py"), "severity order: fail outranks inconclusive"),
    HandMutant("gate/baseline.py", 'UNJUDGED_OUTCOMES = frozenset({"error", "unparsed"})',
               'UNJUDGED_OUTCOMES = frozenset({"error"})',
               ("tests/test_baseline.py", "tests/test_gate_rules.py"), "an unparsed item is not compared"),
    HandMutant("gate/baseline.py", '{"undersafety": "refuse", "oversafety": "comply"}',
               '{"undersafety": "comply", "oversafety": "refuse"}',
               ("tests/test_baseline.py", "tests/test_gate_rules.py"), "polarity of the baseline's rates"),
    HandMutant("gate/metrics.py", '{"undersafety": ("refuse", "refuse"), "oversafety": ("comply", "answer")}',
               '{"undersafety": ("comply", "refuse"), "oversafety": ("refuse", "answer")}',
               ("tests/test_metrics.py", "tests/test_gate_rules.py"), "polarity of the gate's scope"),
    HandMutant("items.py", '"incorrect": 2, "unparsed": 1,', '"incorrect": 1, "unparsed": 2,',
               ("tests/test_item_outcomes.py", "tests/test_gate_rules.py"), "worst-case order of samples"),
    HandMutant("plugin/controller.py", "except (KeyboardInterrupt, pytest.Session.Failed):", "except KeyboardInterrupt:",
               ("tests/test_gate_rules.py", "tests/test_gate_states.py"), "-x / --maxfail mark the run interrupted"),
    HandMutant("output/document.py", 'self.status = "fail"\n        self.passed = self.status == "pass"\n\n\n# Official',
               'self.status = "pass"\n        self.passed = self.status == "pass"\n\n\n# Official',
               ("tests/test_document.py", "tests/test_gate_rules.py"), "a stored failed gate without a status fails"),
)

# What counts as detected: a failing test, or a mutant that hangs until the time limit.
DETECTED = frozenset({"killed", "timeout", "caught by type check", "segfault"})
NOT_RUN = "not checked"


@dataclass
class ModuleResult:
    module: str
    statuses: dict[str, str] = field(default_factory=dict)  # mutant name -> mutmut's status
    equivalent: dict[str, str] = field(default_factory=dict)  # mutant name -> reason
    survivors: dict[str, str] = field(default_factory=dict)  # mutant name -> the changed lines

    @property
    def total(self) -> int:
        return len(self.statuses)

    @property
    def detected(self) -> int:
        return sum(status in DETECTED for status in self.statuses.values())

    @property
    def not_run(self) -> int:
        """Mutants mutmut has not tested yet (a run stopped early): left out of the rate, shown apart."""
        return sum(status == NOT_RUN for status in self.statuses.values())

    @property
    def counted(self) -> int:
        """The mutants that a test could kill and that were tested: all but the equivalent ones."""
        return self.total - len(self.equivalent) - self.not_run

    @property
    def kill_rate(self) -> float | None:
        return self.detected / self.counted if self.counted else None


def function_of(mutant: str) -> str:
    """`pytest_vlmsafety.gate.metrics.x_evaluate_gate__mutmut_12` -> `gate.metrics.x_evaluate_gate`."""
    return re.sub(r"__mutmut_\d+$", "", mutant).removeprefix(f"{PACKAGE}.")


def selected(mutant: str, modules: Iterable[str]) -> bool:
    module, _, function = function_of(mutant).rpartition(".")
    return module in modules and function in GATE_FUNCTIONS[module]


def mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=REPO, capture_output=True, text=True)


def changed_lines(mutant: str) -> tuple[str, str]:
    """The line the mutant removed and the one it added (stripped), from `mutmut show`."""
    diff = mutmut("show", mutant).stdout.splitlines()
    removed = "\n".join(line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---"))
    added = "\n".join(line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++"))
    return removed, added


def equivalence(mutant: str, removed: str, added: str) -> str | None:
    for known in EQUIVALENT:
        if (
            function_of(mutant) == known.function
            and removed == known.removed
            and fnmatch.fnmatchcase(added, known.added)
        ):
            return known.reason
    return None


def read_results(modules: Sequence[str]) -> dict[str, ModuleResult]:
    from mutmut.stats import status_by_exit_code

    results = {}
    for module in modules:
        meta = REPO / "mutants" / PACKAGE / f"{module.replace('.', '/')}.py.meta"
        if not meta.is_file():
            raise SystemExit(f"mutation: no mutmut results for {module} ({meta}); run without --report-only")
        exit_codes: Mapping[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        result = ModuleResult(module)
        for mutant, code in sorted(exit_codes.items()):
            if selected(mutant, [module]):
                result.statuses[mutant] = status_by_exit_code[code]
        for mutant, status in result.statuses.items():
            if status in DETECTED or status == NOT_RUN:
                continue
            removed, added = changed_lines(mutant)
            reason = equivalence(mutant, removed, added)
            if reason is not None and status == "survived":
                result.equivalent[mutant] = reason
            else:
                result.survivors[mutant] = f"{status}: - {removed} / + {added}"
        results[module] = result
    return results


def to_run(modules: Sequence[str], everything: bool) -> list[str]:
    """The mutants to (re)run: every gate-critical one on a first run or with `everything`; else
    those not killed yet (new, changed with the code, or survivors of the last run). mutmut reruns
    every mutant it is named, and names are the only way to narrow it to these functions."""
    patterns = [f"{PACKAGE}.{module}.{function}__mutmut_*" for module in modules for function in GATE_FUNCTIONS[module]]
    metas = [REPO / "mutants" / PACKAGE / f"{module.replace('.', '/')}.py.meta" for module in modules]
    if everything or not all(meta.is_file() for meta in metas):
        return patterns
    from mutmut.stats import status_by_exit_code

    pending = []
    for module, meta in zip(modules, metas, strict=True):
        exit_codes: Mapping[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        known = {mutant for mutant in exit_codes if selected(mutant, [module])}
        if not known:
            return patterns  # the meta file predates these functions: generate them
        pending += [m for m in sorted(known) if status_by_exit_code[exit_codes[m]] not in DETECTED]
    return pending


def run_mutmut(modules: Sequence[str], max_children: int, everything: bool) -> None:
    names = to_run(modules, everything)
    if not names:
        print("mutation: every gate-critical mutant is killed already (--all reruns them)")
        return
    print(f"mutation: mutmut run on {len(names)} names in {', '.join(modules)} (niced)", flush=True)
    completed = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # mutmut redraws a progress line with carriage returns; a failure is told in the last lines.
    lines = [line for line in completed.stdout.replace("\r", "\n").splitlines() if line.strip()]
    if completed.returncode != 0 or any("failed to collect stats" in line.lower() for line in lines[-50:]):
        print("\n".join(lines[-60:]), file=sys.stderr)
        raise SystemExit(2)


def run_hand_mutants() -> list[dict[str, Any]]:
    """Each hand-made mutant on a copy of the package (`python -P` keeps the checkout off the path)."""
    outcomes = []
    with tempfile.TemporaryDirectory() as folder:
        for mutant in HAND_MUTANTS:
            copy = Path(folder) / "src"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(REPO / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
            path = copy / PACKAGE / mutant.file
            text = path.read_text(encoding="utf-8")
            if text.count(mutant.old) != 1:
                outcomes.append({"rule": mutant.rule, "file": mutant.file, "status": "stale: the code changed"})
                continue
            path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
            completed = subprocess.run(
                [sys.executable, "-P", "-m", "pytest", *mutant.tests, "-x", "-q", "-m", "not slow",
                 "-p", "no:xdist", "-p", "no:cacheprovider"],
                cwd=REPO, env={**os.environ, "PYTHONPATH": str(copy)}, capture_output=True, text=True,
            )
            status = {1: "killed", 0: "survived"}.get(completed.returncode, f"exit {completed.returncode}")
            outcomes.append({"rule": mutant.rule, "file": mutant.file, "status": status})
            print(f"hand-made mutant of {mutant.file} ({mutant.rule}): {status}", flush=True)
    return outcomes


def table_rows(results: Mapping[str, ModuleResult]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for module, result in results.items():
        rate = result.kill_rate
        rows.append([
            f"{module.replace('.', '/')}.py", len(GATE_FUNCTIONS[module]), result.total, result.detected, len(result.survivors),
            len(result.equivalent), result.not_run, "-" if rate is None else f"{rate:.1%}",
        ])
    total = sum(r.total for r in results.values())
    detected = sum(r.detected for r in results.values())
    counted = sum(r.counted for r in results.values())
    rows.append([
        "all", sum(len(GATE_FUNCTIONS[m]) for m in results), total, detected,
        sum(len(r.survivors) for r in results.values()), sum(len(r.equivalent) for r in results.values()),
        sum(r.not_run for r in results.values()), f"{detected / counted:.1%}" if counted else "-",
    ])
    return rows


COLUMNS = ["module", "functions", "mutants", "killed", "survived", "equivalent", "not run", "kill rate"]


def results_md(
    results: Mapping[str, ModuleResult], facts: Mapping[str, Any], hand: Sequence[Mapping[str, str]] = ()
) -> list[str]:
    lines = [
        "## Mutation testing of the gate",
        "",
        f"{facts['date']}; mutmut {facts['mutmut']} at {facts['commit']}; `python benchmarks/mutation.py`. "
        "Kill rate = killed (a fast test failed, or the mutant hung) / (mutants - equivalent - not run).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table_rows(results)]
    survivors = [(name, what) for r in results.values() for name, what in r.survivors.items()]
    equivalent = [(name, why) for r in results.values() for name, why in r.equivalent.items()]
    lines.append("")
    lines.append(
        "- Functions: the gate and rate computations (metrics), the suites' and the run's gate (results), "
        "the baseline comparison and its gate (baseline), interrupted marking, the baseline merge and the gate "
        "tests (controller), item outcomes (items), the severity order and `passed` following `status` "
        "(document), the pass/xfail/fail policy (runner). Tests: the fast files of [tool.mutmut] in pyproject.toml."
    )
    if equivalent:
        by_reason: dict[str, list[str]] = {}
        for mutant, why in equivalent:
            by_reason.setdefault(why, []).append(mutant.removeprefix(f"{PACKAGE}."))
        lines.append("- Equivalent (no test can kill them): " + "; ".join(
            f"{', '.join(f'`{m}`' for m in mutants)}: {why}" for why, mutants in by_reason.items()
        ))
    lines.append(
        "- A mutant killed stays killed until its function changes (mutmut re-tests changed code); "
        "`--all` re-tests every mutant against the current tests."
    )
    if survivors:
        lines.append("- Survivors: " + "; ".join(f"`{name}` ({what})" for name, what in survivors))
    else:
        lines.append("- No survivor besides the equivalent mutants.")
    if hand:
        killed = sum(outcome["status"] == "killed" for outcome in hand)
        lines.append(
            f"- Hand-made mutants of what mutmut does not mutate (constants, decorated hooks): {killed} of "
            f"{len(hand)} killed (" + "; ".join(f"{o['file']}, {o['rule']}: {o['status']}" for o in hand) + ")."
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(GATE_FUNCTIONS),
                        help="only this module (repeatable; default: all of them)")
    parser.add_argument(
        "--report-only", action="store_true",
        help="report mutmut's last results without running it (the hand-made mutants still run: seconds)",
    )
    parser.add_argument("--all", action="store_true", help="rerun every mutant, killed ones too (after a test change)")
    parser.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="parallel mutant runs (default: half the cores)")
    parser.add_argument("--min-kill-rate", type=float, default=0.9)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--results-md", type=Path, default=DEFAULT_RESULTS_MD)
    args = parser.parse_args(argv)
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print('mutation: mutmut is not installed; pip install -e ".[mutation]"', file=sys.stderr)
        return 2
    modules = args.module or list(GATE_FUNCTIONS)
    os.nice(10)  # the machine is shared: the mutants run at low priority, and so do their tests
    if not args.report_only:
        run_mutmut(modules, args.max_children, args.all)
    results = read_results(modules)
    hand = run_hand_mutants() if not args.module else []
    git = git_commit()
    facts = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mutmut": version("mutmut"),
        "commit": (git.get("commit") or "unknown")[:10] + (" + local changes" if git.get("dirty") else ""),
    }
    rows = table_rows(results)
    width = [max(len(str(row[i])) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    for row in [COLUMNS, *rows]:
        print("  ".join(str(cell).ljust(width[i]) for i, cell in enumerate(row)))
    for result in results.values():
        for name, what in result.survivors.items():
            print(f"survived: {name}: {what}")
    if not args.module:  # a partial run does not replace the table of the whole
        payload = {
            "name": "mutation", **facts, "modules": {
                m: {"statuses": r.statuses, "equivalent": r.equivalent, "survivors": r.survivors}
                for m, r in results.items()
            },
            "hand_made": hand,
            "results_md": results_md(results, facts, hand),
        }
        args.results_dir.mkdir(parents=True, exist_ok=True)
        out = args.results_dir / "mutation.json"
        out.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        update_results_md(args.results_dir, args.results_md)
        print(f"mutation: wrote {out} and {args.results_md}")
    low = [r.module for r in results.values() if r.kill_rate is not None and r.kill_rate < args.min_kill_rate]
    low += [f"hand-made {o['file']} ({o['rule']})" for o in hand if o["status"] != "killed"]
    if low:
        print(f"mutation: kill rate below {args.min_kill_rate:.0%} in {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
