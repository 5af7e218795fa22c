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

import threading
from collections.abc import Mapping
from typing import Any

import pytest

# The side channel's key in xdist's workerinput.
CASE_CHANNEL_KEY = "vlmsafety_cases"
# What a case announcement holds: the fields of its record that do not need the test to run.
CASE_FIELDS = ("suite", "id", "expected", "category")


def announce_cases(config: pytest.Config, cases: Mapping[str, Mapping[str, str]]) -> None:
    """On a worker: send {node id: case fields} to the controller. Outside xdist, nothing to do:
    a single process that dies writes nothing at all."""
    workerinput = getattr(config, "workerinput", None)
    channel = workerinput.get(CASE_CHANNEL_KEY) if workerinput else None
    if channel is None or not cases:
        return
    channel.send({nodeid: dict(case) for nodeid, case in cases.items()})


class CaseBoard:
    """On the controller: the cases every worker announced, by node id."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, str]] = {}
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
            for nodeid, case in message.items():
                if isinstance(nodeid, str) and isinstance(case, dict) and all(
                    isinstance(case.get(name), str) for name in CASE_FIELDS
                ):
                    self.cases[nodeid] = {name: case[name] for name in CASE_FIELDS}

    def get(self, nodeid: str) -> dict[str, str] | None:
        with self.lock:
            return self.cases.get(nodeid)
