"""Which collected tests of an xdist worker are `vlmsafety_case` tests, told to the controller.

A marked test's record travels on its test report. A worker that dies inside the test (a
segfault, an OOM kill, `os._exit`) sends no report: xdist makes one for the crashed node id, and
the controller must turn it into the case's error record, so that the gate does not pass on a
case that never got judged. Only the node id comes with that report; the case's suite, id,
expected behaviour and category come from here. The controller cannot collect them itself (under
xdist it collects nothing), and xdist's own worker-to-controller channel accepts only xdist's
events, so, as progress.py does, the controller opens a side channel per worker (an execnet
channel of the worker's gateway, handed over in `workerinput`) and each worker sends its cases
once, at the end of its collection, before any test runs. execnet delivers a channel's messages
in order with the worker's events, so the cases arrive before any crash report of theirs.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from ..items import EXPECTED_VALUES, Expected

# The side channel's key in xdist's workerinput.
CASE_CHANNEL_KEY = "vlmsafety_cases"


@dataclass(frozen=True)
class MarkedCase:
    """A `vlmsafety_case` test's case, as its marker and node id give it (plugin/fixture.marked_case
    reads them): the fields of its record that do not need the test to run."""

    suite: str
    id: str
    expected: Expected
    category: str

    def message(self) -> dict[str, str]:
        """The case as execnet carries it (plain strings)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_message(cls, data: Any) -> MarkedCase | None:
        """A case as `message` wrote it; None for anything else (the controller ignores it)."""
        names = [field.name for field in dataclasses.fields(cls)]
        if not isinstance(data, dict) or not all(isinstance(data.get(name), str) for name in names):
            return None
        if data["expected"] not in EXPECTED_VALUES:
            return None
        return cls(suite=data["suite"], id=data["id"], expected=data["expected"], category=data["category"])


def announce_cases(config: pytest.Config, cases: Mapping[str, MarkedCase]) -> None:
    """On a worker: send {node id: case} to the controller. Outside xdist, nothing to do: a
    single process that dies writes nothing at all."""
    workerinput = getattr(config, "workerinput", None)
    channel = workerinput.get(CASE_CHANNEL_KEY) if workerinput else None
    if channel is None or not cases:
        return
    channel.send({nodeid: case.message() for nodeid, case in cases.items()})


class CaseBoard:
    """On the controller: the cases every worker announced, by node id."""

    def __init__(self) -> None:
        self.cases: dict[str, MarkedCase] = {}
        self.lock = threading.Lock()

    def open_channel(self, node: Any) -> Any:
        channel = node.gateway.newchannel()
        # Runs in execnet's receiver thread: record only.
        channel.setcallback(self.update)
        return channel

    def update(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        with self.lock:
            for nodeid, data in message.items():
                case = MarkedCase.from_message(data)
                if isinstance(nodeid, str) and case is not None:
                    self.cases[nodeid] = case

    def get(self, nodeid: str) -> MarkedCase | None:
        with self.lock:
            return self.cases.get(nodeid)
