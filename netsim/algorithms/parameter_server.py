"""Parameter server, synchronous and asynchronous (Dean et al. 2012; Li et al. 2014).

Synchronous (a barrier each round):
    worker i: g_i <- grad f(x; batch_i); push g_i; wait for x
    server:   wait for every g_i; x <- optimizer step with mean_i g_i; send x to every worker

Asynchronous (Cui 2019's centralized baseline; the server's link is the bottleneck):
    worker i: g <- grad f(x_i; batch); push (g, version of x_i); x_i <- the server's reply
    server:   on each gradient: staleness <- version - its version; apply g; reply with x

The server node gets its own NIC, so ``Network(nodes={"server": {"bandwidth": "300Mbit/s"}})``
puts the bottleneck where it is in the study.

Under faults (netsim.faults) both need a ``timeout`` (without one, a gradient or a model that
never comes leaves them waiting for ever; the run stops with a line saying so):

- SyncPS: the server waits for the workers it counts as alive, at most ``timeout`` seconds a
  round, then steps with the mean of the gradients that came and sends x to every worker. A
  worker whose gradient missed the round is dropped: later rounds do not wait for it, until
  a gradient of its arrives again (a worker that comes back rejoins so, with one gradient
  taken at the x it held, x0 after state "reset", before it gets the server's). A worker
  that has waited ``timeout`` for x takes a new gradient at the x it holds and sends that.
- AsyncPS: a worker that has waited ``timeout`` for the reply to its gradient takes a new
  gradient at the x it holds and sends that; the server never waits on any one worker.

A server that goes offline loses nothing it needs (x is its row, kept with state "keep").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from netsim.algorithms import ops
from netsim.units import parse_time


@dataclass(frozen=True)
class SyncPS:
    timeout: float | str | None = None  # s a round waits for gradients (faults); None: all
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

    def check(self, workers: int) -> None:
        _check_timeout("SyncPS", self.timeout)

    async def worker(self, node):
        server, timeout = node.out_neighbors[0], _seconds(self.timeout)
        while not node.done:
            await node.gradient()
            node.send(server, "grad", g=node.g)
            reply = await node.recv("params", timeout=timeout)
            if reply is not None:  # the newest model, if several came
                node.x.copy_(([reply] + node.drain("params"))[-1].x)

    async def server(self, node):
        timeout, alive = _seconds(self.timeout), set(node.neighbors)
        while True:
            if timeout is None:
                grads = [(await node.recv("grad")).g for _ in range(node.world_size)]
            else:
                grads = await self._round(node, timeout, alive)
                if not grads:  # nobody answered: the next gradient starts a round
                    continue
            node.apply(torch.stack(grads).mean(0))
            for worker in node.neighbors:
                node.send(worker, "params", x=node.x)

    async def _round(self, node, timeout: float, alive: set) -> list:
        """The gradients of one round: from every worker alive, or those that came within
        timeout; the others are dropped from alive (in place) until they send again."""
        got = {}
        if not alive:  # every worker dropped: the next gradient starts the round
            m = await node.recv("grad")
            got[m.src] = m.g
        deadline = node.now + timeout
        while not alive <= got.keys():
            m = await node.recv("grad", timeout=deadline - node.now)
            if m is None:
                break
            got[m.src] = m.g
        alive.clear()
        alive.update(got)
        return list(got.values())


@dataclass(frozen=True)
class AsyncPS:
    timeout: float | str | None = None  # s a worker waits for the reply (faults); None: ever
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

    def check(self, workers: int) -> None:
        _check_timeout("AsyncPS", self.timeout)

    async def worker(self, node):
        server, version, timeout = node.out_neighbors[0], 0, _seconds(self.timeout)
        while not node.done:
            await node.gradient()
            node.send(server, "grad", g=node.g, version=version)
            reply = await node.recv("params", timeout=timeout)
            if reply is None:  # lost on the way, or the server is offline: a new gradient
                continue
            reply = ([reply] + node.drain("params"))[-1]  # late replies: the newest
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


def _check_timeout(name: str, timeout) -> None:
    if timeout is not None and not parse_time(timeout, f"{name}.timeout") > 0:
        raise ops.AlgorithmError(f"{name}.timeout must be > 0 seconds, got {timeout!r}")


def _seconds(timeout) -> float | None:
    return None if timeout is None else parse_time(timeout)
