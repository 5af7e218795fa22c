"""The xdist scheduler for safety runs: whole shards per worker, crashed items not retried.

Built on xdist's LoadScopeScheduling, whose scope is the node id before the last `::` (our
shard), so plain `-n N` keeps each shard on one worker and its items generate as one batch.
One difference: when a worker dies, loadscope re-queues its unfinished shard *including* the item
it died on, so an item that kills its worker (a CUDA crash, an OOM kill) would take down every
replacement in turn. Here that item is reported as the crash (by xdist) and not sent again.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling


# xdist ships no type information: its scheduler is Any to mypy.
class ShardScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def remove_node(self, node: Any) -> str | None:
        crashitem: str | None = super().remove_node(node)
        if crashitem is None:
            return None
        for scope, work_unit in list(self.workqueue.items()):
            if crashitem in work_unit:
                work_unit[crashitem] = True  # marked done: xdist reports it as crashed
                if all(work_unit.values()):
                    del self.workqueue[scope]
        return crashitem
