"""pytest nodes for suite items, with no test file of the user's.

The tree is `<suite>::<category>::<item id>`: one collector per suite selection, one per shard
(a category of that suite), one test per item. xdist's `--dist loadscope` groups by the node id
before the last `::`, so a shard stays on one worker and its items are generated as one batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import pytest

from ..items import Record, SafetyItem
from ..text import node_id_part, printable, printable_lines


class ItemRunning(Protocol):
    """What a safety test needs from the side that runs items (runner.ItemRunner)."""

    def record_for(self, test_item: SafetyTestItem) -> Record: ...

    def check_outcome(self, test_item: SafetyTestItem, record: Record) -> None: ...


# Where the process that runs items keeps its runner, for the items to find.
ITEM_RUNNER_KEY = pytest.StashKey[ItemRunning]()


# Marker fields that say what an item is; suite data (`meta`) must not be able to override them,
# or `-m "vlmsafety(expected='refuse')"` could deselect an item that must be refused.
ITEM_MARKER_FIELDS: tuple[str, ...] = ("suite", "subset", "category", "expected", "task")


def node_name(text: str) -> str:
    """A node name from untrusted suite text: printable, no `::` (the node id separator), no markup
    (see text.node_id_part). Distinct texts can give one name: preflight refuses such collisions."""
    return node_id_part(text)


class SafetyMismatch(Exception):
    """The model's behaviour differed from what the item expects (under/oversafety...)."""


class SafetyItemError(Exception):
    """The item could not be run or judged (missing image, no recorded response, ...)."""


class SuiteCollector(pytest.Collector):
    def __init__(self, *, items: Sequence[SafetyItem], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.safety_items = list(items)

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        by_category: dict[str, list[SafetyItem]] = {}
        for item in self.safety_items:
            by_category.setdefault(item.category, []).append(item)
        for category, items in by_category.items():
            yield ShardCollector.from_parent(self, name=node_name(category), items=items)


class ShardCollector(pytest.Collector):
    """A shard: the unit of batched generation."""

    def __init__(self, *, items: Sequence[SafetyItem], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.safety_items = list(items)

    def collect(self) -> Iterable[pytest.Item]:
        for item in self.safety_items:
            yield SafetyTestItem.from_parent(self, name=node_name(item.id), safety_item=item)


class SafetyTestItem(pytest.Item):
    """One benchmark item. Its setup makes sure its shard was generated and judged; the test itself
    is a lookup of the record."""

    def __init__(self, *, safety_item: SafetyItem, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.safety_item = safety_item
        marker_kwargs = {
            **{
                k: v
                for k, v in safety_item.meta.items()
                if isinstance(v, (str, int, bool)) and k not in ITEM_MARKER_FIELDS
            },
            "suite": safety_item.suite,
            "subset": safety_item.subset,
            "category": safety_item.category,
            "expected": safety_item.expected,
            "task": safety_item.task,
        }
        self.add_marker(pytest.mark.vlmsafety(**marker_kwargs))
        self.extra_keyword_matches.update(
            {safety_item.suite, safety_item.category, safety_item.expected, safety_item.subset} - {""}
        )

    @property
    def runner(self) -> ItemRunning:
        return self.config.stash[ITEM_RUNNER_KEY]

    def record(self) -> Record:
        return self.runner.record_for(self)

    def setup(self) -> None:
        record = self.record()
        if record.outcome == "error":
            raise SafetyItemError(printable_lines(record.error or "error"))

    def runtest(self) -> None:
        self.runner.check_outcome(self, self.record())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # Our own outcomes carry their whole story in the message; a traceback through pytest's
        # runner would say nothing more (and costs a third of a second per item to format).
        if isinstance(excinfo.value, (SafetyMismatch, SafetyItemError, pytest.xfail.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # pytest formats a setup error (our error items) here, not through repr_failure: without
        # this every error item pays a full traceback formatting (~100 ms), and an all-error run
        # costs ten times a generated one.
        if isinstance(excinfo.value, (SafetyMismatch, SafetyItemError)):
            return str(excinfo.value)
        return super()._repr_failure_py(excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, printable(self.safety_item.key)


def describe_failure(record: Record, limit: int = 600) -> str:
    """What a reader needs to see for a mismatch: the prompt, the images, the response, and why
    the judge decided as it did. Every field is untrusted (suite data, the model, an LLM judge):
    each is shown as one printable line."""
    response = record.response or ""
    if len(response) > limit:
        response = response[:limit] + f"... [{len(record.response or '') - limit} more characters]"
    lines = [
        f"{record.outcome}: expected the model to {record.expected}, judge {record.judge!r} says {record.verdict!r}",
        f"  reason:   {printable(record.reason)}",
        f"  prompt:   {printable(record.prompt)}",
    ]
    if record.images:
        lines.append(f"  images:   {printable(', '.join(record.images))}")
    if record.answer_key:
        lines.append(f"  expected answer: {printable(record.answer_key)}")
    lines.append(f"  response: {response!r}")
    return "\n".join(lines)
