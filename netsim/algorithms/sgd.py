"""Single-machine SGD: the accuracy baseline with no network at all.

    for each step: x <- x - lr * grad f(x; batch)

Run it with ``workers=1``; with more workers every one trains alone on its own shard and the
global model is their average (a "no communication" baseline).

Under faults (netsim.faults) only crashes, slow intervals and churn matter (it sends nothing):
an offline worker does not train, and comes back with its parameters or x0 ("reset").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netsim.algorithms import ops


@dataclass(frozen=True)
class SGD:
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {}
    records: ClassVar[dict[str, str]] = {}

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        while not node.done:
            await node.train()
