"""The side of a run that collects and runs items: a single process, or each xdist worker.

`ItemRunner` puts the suites' items into pytest's collection, streams their shards through the
generation pipeline (pipeline.py: an item waits for its own batch), decides each item's test
outcome and puts the item's record on its test report, where the controller (controller.py)
picks it up, in this process or through xdist. An item's reported duration is its share of its
batch's generation and judging. `WorkerSummaryWriter`
is registered on xdist workers only: it hands the worker's summary to the controller.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

import pytest

from ..engine import Engine
from ..gate.audit import AuditLabels, apply_label
from ..gate.baseline import Baseline, is_known_failure
from ..items import REPORT_RECORD_ATTR, WORKER_SUMMARY_KEY, Record, SafetyItem
from ..output.document import WorkerSummary, to_json_value
from ..pipeline import Pipeline, ShardJob
from ..suites import SuiteSelection
from ..text import printable, printable_lines
from .collect import (
    ITEM_RUNNER_KEY,
    SafetyItemError,
    SafetyMismatch,
    SafetyTestItem,
    SuiteCollector,
    describe_failure,
    node_name,
)
from .run_options import RunOptions

FAILURE_SHOWN_CHARS = 2_000


def failed_outside_the_check(record: Record, when: str, summary: str) -> Record:
    """The item's test failed for a reason other than its own check (a plugin's or a conftest's
    setup or teardown): pytest exits non-zero, so the gate must not keep the judged outcome and
    say PASSED. The record becomes an error record (the judged verdict stays for the report)."""
    return replace(
        record,
        outcome="error",
        error=f"the item's test failed in {when} outside the safety check: {summary[:FAILURE_SHOWN_CHARS]}",
    )


class ItemRunner:
    def __init__(
        self,
        config: pytest.Config,
        options: RunOptions,
        loaded: list[tuple[SuiteSelection, list[SafetyItem]]],
        engine: Engine,
        *,
        explicit_paths: bool,
        baseline: Baseline | None = None,
        html_extras: bool = False,
        worker_id: str | None = None,
        device: str | None = None,
        audit_labels: AuditLabels | None = None,
    ) -> None:
        self.config = config
        self.audit_labels = audit_labels
        self.options = options
        self.loaded = loaded
        self.engine = engine
        self.explicit_paths = explicit_paths
        self.baseline = baseline
        self.html_extras = html_extras
        self.worker_id = worker_id
        self.device = device
        self.shards: dict[str, list[SafetyItem]] = {}
        # In a single process, the shard that runs after each shard (xdist workers learn theirs
        # from the next item only: the controller hands out shards as workers free up).
        self.next_shard: dict[str, str] = {}
        self.pipeline = Pipeline(engine)
        config.stash[ITEM_RUNNER_KEY] = self

    # -- collection ------------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """A safety run given no paths runs only the suites; pass paths to run your tests alongside."""
        return None if self.explicit_paths else True

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        seen: set[str] = set()
        for selection, suite_items in self.loaded:
            unique = [i for i in suite_items if i.key not in seen]
            seen.update(i.key for i in unique)
            name = node_name(selection.label)
            suite_node = SuiteCollector.from_parent(session, name=name, nodeid=name, items=unique)
            # Through pytest's own collection protocol, so reporters count the items and a broken
            # collector shows as a collection error.
            items.extend(session.genitems(suite_node))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Shards hold the items that survived -k/-m deselection: only those are generated."""
        for item in session.items:
            if isinstance(item, SafetyTestItem):
                assert item.parent is not None
                self.shards.setdefault(item.parent.nodeid, []).append(item.safety_item)
        if self.worker_id is None:
            order = list(self.shards)
            self.next_shard = dict(zip(order, order[1:], strict=False))

    # -- running ---------------------------------------------------------------------------------

    def submit(self, test_item: SafetyTestItem) -> ShardJob | None:
        """Queue the item's shard for generation (once); None once the pipeline has stopped."""
        assert test_item.parent is not None
        label = test_item.parent.nodeid
        return self.pipeline.submit(self.shards.get(label) or [test_item.safety_item], label)

    @pytest.hookimpl(tryfirst=True, wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        # Outside every other plugin's protocol (pytest-timeout's timer among them): queue the
        # shard and the next one, and wait for the cache lookup and the model's load.
        if isinstance(item, SafetyTestItem):
            job = self.submit(item)
            if isinstance(nextitem, SafetyTestItem):
                self.submit(nextitem)
            elif item.parent is not None and item.parent.nodeid in self.next_shard:
                label = self.next_shard[item.parent.nodeid]
                self.pipeline.submit(self.shards[label], label)
            if job is not None:
                self.pipeline.wait_ready(job)
        try:
            return (yield)
        finally:
            if item.session.shouldfail or item.session.shouldstop:
                self.pipeline.stop(wait=False)  # -x, --maxfail: generate nothing more

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            return (yield)
        except BaseException:
            self.pipeline.stop(wait=False)  # Ctrl-C: the files are written first, joined at the end
            raise

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.pipeline.stop(wait=True)  # no thread left running after the session

    def record_for(self, test_item: SafetyTestItem) -> Record:
        key = test_item.safety_item.key
        if key not in self.engine.records:
            job = self.submit(test_item)
            if job is not None:
                self.pipeline.record_for(job, test_item.safety_item)
        if key not in self.engine.records:
            # The pipeline stopped before this item's batch (the run is ending): run it here.
            assert test_item.parent is not None
            shard = self.shards.get(test_item.parent.nodeid) or [test_item.safety_item]
            self.engine.run_shard(shard, label=test_item.parent.nodeid)
        return self.engine.records[key]

    def check_outcome(self, test_item: SafetyTestItem, record: Record) -> None:
        self.check_record(record)

    def check_record(self, record: Record) -> None:
        """Pass, xfail or fail the running test by its record's outcome (a suite item's or a
        `vlmsafety_case` test's). A reviewer's label of the record, if any, decides first."""
        apply_label(record, self.audit_labels)
        if record.outcome == "pass":
            return
        if record.outcome == "error":
            raise SafetyItemError(printable_lines(record.error or "error"))
        why = printable(f"{record.outcome}: judge {record.judge} says {record.verdict} ({record.reason})")
        if self.baseline is not None:
            # Under a baseline the question is "did it get worse?": old failures are expected,
            # new ones fail whatever the gate mode.
            if is_known_failure(self.baseline, record.suite, record.id, record.outcome):
                pytest.xfail(f"known failure in the baseline: {why}")
            raise SafetyMismatch("new failure (not in the baseline)\n" + describe_failure(record))
        if self.options.gate.mode == "items":
            raise SafetyMismatch(describe_failure(record))
        pytest.xfail(why)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, SafetyTestItem):
            if call.excinfo is not None and call.excinfo.errisinstance((SafetyItemError, SafetyMismatch)):
                report.longrepr = str(call.excinfo.value)  # the message is the whole story, not a traceback
            share = self.pipeline.item_seconds.get(item.safety_item.key)
            if call.when == "setup" and share is not None:
                # Its share of its batch, not the wait for it: --durations and JUnit times.
                report.duration = share
            decisive = call.when == "call" or report.failed
            record = self.engine.records.get(item.safety_item.key)
            if decisive and record is not None:
                if report.failed and not (
                    call.excinfo is not None and call.excinfo.errisinstance((SafetyItemError, SafetyMismatch))
                ):
                    lines = report.longreprtext.strip().splitlines()
                    summary = call.excinfo.exconly() if call.excinfo is not None else (lines or ["no detail"])[-1]
                    record = failed_outside_the_check(record, call.when, summary)
                self.attach_record(report, record, item.nodeid)
        return report

    def attach_record(self, report: pytest.TestReport, record: Record, nodeid: str) -> None:
        """Put the record on its test's report, where the controller receives it."""
        record.nodeid = nodeid
        setattr(report, REPORT_RECORD_ATTR, record.to_dict())
        if self.html_extras:
            from ..output.pytest_html import add_item_extras

            add_item_extras(report, record)
        report.user_properties.append(("vlmsafety_outcome", record.outcome))
        if record.verdict is not None:
            report.user_properties.append(("vlmsafety_verdict", printable(record.verdict)))

    def summary(self) -> WorkerSummary:
        """What this process did, for the run facts."""
        return WorkerSummary(
            worker_id=self.worker_id,
            device=self.device,
            model=self.engine.model_info(),
            stats=self.engine.stats.rounded(),
        )


class WorkerSummaryWriter:
    """On an xdist worker: the worker's summary goes to the controller with `workeroutput`."""

    def __init__(self, config: pytest.Config, runner: ItemRunner) -> None:
        self.config = config
        self.runner = runner

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Set by xdist on workers only: execnet carries plain data, hence the JSON value.
        self.config.workeroutput[WORKER_SUMMARY_KEY] = to_json_value(self.runner.summary())  # type: ignore[attr-defined]
