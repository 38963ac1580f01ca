"""AD-PSGD: asynchronous decentralized parallel SGD (Lian, Zhang, Zhang, Liu 2018,
"Asynchronous Decentralized Parallel Stochastic Gradient Descent", ICML).

Every worker i loops, with no global clock:

    g <- grad f(x_hat_i; batch)                 # x_hat_i: x_i as it was when the step began
    if i is active:
        pick a random passive neighbour j
        x_i, x_j <- (x_i + x_j) / 2             # atomically: both sides hold the average
    x_i <- x_i - lr g                           # the run's optimizer, on whatever x_i is now

Deadlock-free as in the paper's implementation: the workers are split into active and passive
ones (ops.active_passive: a cut of the graph that keeps both sides reachable; a bipartite
graph's two sides, a complete graph's halves), and only active ones start an averaging. An
active worker sends x_i and waits; the passive worker's ``serve`` role averages in one step,
which nothing can interleave with, and replies with the average. Active workers wait only on
passive ones, and a passive one never waits, so no cycle of waits can form, on any graph. On a
graph that is not bipartite, the edges inside a side go unused.

A passive worker averages while it computes, so its gradient was taken at a model it no longer
holds: each gradient applied records its staleness, the averagings between the read and the
update (an active worker's own averaging counts, so its staleness is 1).

Under faults (netsim.faults) an active worker needs a ``timeout`` (without one, a passive
neighbour that went offline, or a request or reply dropped, leaves it waiting for ever; the
run stops with a line saying so). With one, an active worker that has waited that long for
the reply skips this averaging and applies its gradient. The average is then one-sided when
the request arrived and only the reply was lost (the passive worker holds the average, the
active one its own model): the workers' mean moves by the difference over n. A late reply
still waiting when the worker sends its next request is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netsim.algorithms import ops
from netsim.units import parse_time


@dataclass(frozen=True)
class ADPSGD:
    timeout: float | str | None = None  # s an active worker waits for the reply (faults)
    needs_connected: ClassVar[bool] = True
    sends: ClassVar[dict[str, str]] = {
        "average": "active worker to a random passive neighbour: x, its model",
        "averaged": "the passive worker's reply: x, the average (x_i + x_j) / 2 both now hold",
    }
    records: ClassVar[dict[str, str]] = {
        "staleness": "each worker, per gradient applied: the averagings of x_i since the read "
        "the gradient was taken at",
    }

    def check(self, workers: int) -> None:
        if self.timeout is not None and not parse_time(self.timeout, "ADPSGD.timeout") > 0:
            raise ops.AlgorithmError(f"ADPSGD.timeout must be > 0 seconds, got {self.timeout!r}")

    def layout(self, graph):
        return ops.active_passive(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        node.state.setdefault("averagings", 0)
        timeout = None if self.timeout is None else parse_time(self.timeout)
        while not node.done:
            read = node.state["averagings"]
            await node.gradient()
            if node.out_neighbors:  # active: only its passive neighbours are out-neighbours
                j = int(node.rng.choice(node.out_neighbors))
                node.drain("averaged")  # late replies to requests that timed out
                node.send(j, "average", x=node.x)
                reply = await node.recv("averaged", timeout=timeout)
                if reply is not None:
                    node.x.copy_(reply.x)
                    node.state["averagings"] += 1
            node.record("staleness", node.state["averagings"] - read)
            node.apply(node.g)

    async def serve(self, node):
        node.state.setdefault("averagings", 0)
        while True:
            request = await node.recv("average")
            node.x.add_(request.x).mul_(0.5)
            node.state["averagings"] += 1
            node.send(request.src, "averaged", x=node.x)
