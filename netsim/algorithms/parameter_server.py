"""Parameter server, synchronous and asynchronous (Dean et al. 2012; Li et al. 2014).

Synchronous (a barrier each round):
    worker i: g_i <- grad f(x; batch_i); push g_i; wait for x
    server:   wait for every g_i; x <- optimizer step with mean_i g_i; send x to every worker

Asynchronous (Cui 2019's centralized baseline; the server's link is the bottleneck):
    worker i: g <- grad f(x_i; batch); push (g, version of x_i); x_i <- the server's reply
    server:   on each gradient: staleness <- version - its version; apply g; reply with x

The server node gets its own NIC, so ``Network(nodes={"server": {"bandwidth": "300Mbit/s"}})``
puts the bottleneck where it is in the study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from netsim.algorithms import ops


@dataclass(frozen=True)
class SyncPS:
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {
        "grad": "worker to server: g, the gradient at the worker's x",
        "params": "server to every worker, each round: x, the model after the averaged step",
    }
    records: ClassVar[dict[str, str]] = {}

    def layout(self, graph):
        return ops.with_server(graph)

    def global_model(self, X, roles):
        return ops.server_row(X, roles)

    async def worker(self, node):
        server = node.out_neighbors[0]
        while not node.done:
            await node.gradient()
            node.send(server, "grad", g=node.g)
            node.x.copy_((await node.recv("params")).x)

    async def server(self, node):
        while True:
            grads = [(await node.recv("grad")).g for _ in range(node.world_size)]
            node.apply(torch.stack(grads).mean(0))
            for worker in node.neighbors:
                node.send(worker, "params", x=node.x)


@dataclass(frozen=True)
class AsyncPS:
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {
        "grad": "worker to server: g, and the version of the model it was taken at",
        "params": "server to that worker: x, the model after applying g, and its version",
    }
    records: ClassVar[dict[str, str]] = {
        "staleness": "server, per gradient: the updates applied since the worker's version",
    }

    def layout(self, graph):
        return ops.with_server(graph)

    def global_model(self, X, roles):
        return ops.server_row(X, roles)

    async def worker(self, node):
        server, version = node.out_neighbors[0], 0
        while not node.done:
            await node.gradient()
            node.send(server, "grad", g=node.g, version=version)
            reply = await node.recv("params")
            node.x.copy_(reply.x)
            version = reply.version

    async def server(self, node):
        version = 0
        while True:
            push = await node.recv("grad")
            node.record("staleness", version - push.version)
            node.apply(push.g)
            version += 1
            node.send(push.src, "params", x=node.x, version=version)
