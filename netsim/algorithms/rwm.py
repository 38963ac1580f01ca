"""RWM: the random-walk model with age weighting (Dresevic 2022, after decentralizepy).

Models walk the graph. Every node starts one walk (bootstrapping: it sends its initial model
and age 0 to a random neighbour, so there are as many models in flight as nodes and no node
waits for ever), then loops:

    x_i <- one SGD step on x_i;  age_i <- age_i + 1
    wait for one model (x_j, age_j) from a neighbour
    x_i <- (age_i x_i + age_j x_j) / (age_i + age_j);  age_i <- max(age_i, age_j)
    send (x_i, age_i) to one neighbour chosen uniformly at random

Each model received is averaged exactly once. A node that stops absorbs the walks that reach
it, so the run stops when the first node completes its iterations (stop = "first"); curves use
the iterations every node reached.

Under faults (netsim.faults) a walk sent to an offline node, or over a cut link, a partition
or a lossy edge, is lost. With ``timeout``, a node that has waited that long for a model starts
a new walk from its own model and age and trains on (without one it would wait for ever, and
the run stops with a line saying so), so the walks survive nodes going offline; a node that
comes back starts a walk as at the start, with its age kept (state "keep") or 0 ("reset").
Walks are thus not conserved under faults: lost ones are replaced, and a walk that was only
slow may meet its replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from netsim.algorithms import ops, sharing
from netsim.units import parse_time


@dataclass(frozen=True)
class RWM:
    share: Any = field(default_factory=sharing.Full)
    timeout: float | str | None = None  # s without a model before a node starts a new walk
    needs_connected: ClassVar[bool] = True
    stop: ClassVar[str] = "first"
    sends: ClassVar[dict[str, str]] = {
        "model": "to a random neighbour: the walking model, x or the fields of share, and its age",
    }
    records: ClassVar[dict[str, str]] = {
        "age": "each node, after each merge: the age of its model",
    }

    def check(self, workers: int) -> None:
        ops.check_peers("RWM", workers)
        if self.timeout is not None:
            parse_time(self.timeout, "RWM.timeout")

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        sent_state: dict = {}
        if hasattr(self.share, "after_averaging"):  # partial sharing measures change from x0
            self.share.after_averaging(node.x, sent_state)
        node.state.setdefault("age", 0)  # kept when a node comes back with its state
        timeout = None if self.timeout is None else parse_time(self.timeout)
        self._walk(node, sent_state)
        while not node.done:
            await node.train()
            node.state["age"] += 1
            m = await node.recv("model", timeout=timeout)
            if m is None:  # the walks that would reach us were lost: start a new one
                self._walk(node, sent_state)
                continue
            age, age_j = node.state["age"], m.age  # age >= 1 after the step
            w_j = age_j / (age + age_j)
            with node.update():  # busy for compute.update_time, if set
                x_j, mask = self.share.decode(m.payload, node.x)
                sharing.masked_average_(node.x, 1 - w_j, [(x_j, mask, w_j)])
            if hasattr(self.share, "after_averaging"):
                self.share.after_averaging(node.x, sent_state)
            node.state["age"] = max(age, age_j)
            node.record("age", node.state["age"])
            self._walk(node, sent_state)

    def _walk(self, node, sent_state: dict) -> None:
        peer = int(node.rng.choice(node.neighbors))
        payload = self.share.encode(node.x, sent_state, node.rng)
        node.send(peer, "model", age=node.state["age"], **payload)
