"""D-PSGD with Metropolis-Hastings weights (Lian et al. 2017, "Can Decentralized Algorithms
Outperform Centralized Algorithms?"), as run by decentralizepy (Dresevic 2022).

Each round k, every node i:

    x_i <- local_steps SGD steps on x_i
    send (x_i, d_i, k) to every neighbour j                 # through a sharing method
    wait for round k from every neighbour
    x_i <- sum_j w_ij x_j + (1 - sum_j w_ij) x_i,   w_ij = 1 / (1 + max(d_i, d_j))

A neighbour whose model has not arrived ``timeout`` seconds after i began to wait (None:
wait, as decentralizepy's synchronous rounds do) counts as absent: its weight stays with x_i. With a
partial sharing method, a coordinate that did not arrive from j counts as i's own value
(sharing.masked_average), which is decentralizepy's rule.

Under faults (netsim.faults) a node proceeds with the neighbours that arrived, which needs a
``timeout``: without one, a neighbour that went offline, or a model dropped by a cut link, a
partition or loss, leaves the node waiting for ever (the run stops with a line saying so).
Models of rounds before the node's own are ignored; after a round it moves on to the next,
or to the newest round a neighbour has sent it if that is later, and a model two rounds
ahead ends its wait at once (that neighbour has given up on it). A node that comes back goes
on from its round (in ``node.state``; from 0 with state "reset") and so catches up.
Nothing is conserved that a lost model could take away: each node's weights sum to 1 over
what arrived.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netsim.algorithms import ops, sharing
from netsim.units import parse_time


@dataclass(frozen=True)
class DPSGD:
    local_steps: int = 1
    share: Any = field(default_factory=sharing.Full)
    timeout: float | str | None = None
    needs_connected: ClassVar[bool] = True
    sends: ClassVar[dict[str, str]] = {
        "model": "to every neighbour, each round: x or the fields of share, degree and round k",
    }
    records: ClassVar[dict[str, str]] = {}

    def check(self, workers: int) -> None:
        if not (isinstance(self.local_steps, int) and self.local_steps >= 1):
            raise ops.AlgorithmError(f"DPSGD.local_steps must be >= 1, got {self.local_steps}")
        if self.timeout is not None:
            parse_time(self.timeout, "DPSGD.timeout")

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        early: dict[int, list] = defaultdict(list)  # rounds ahead of ours, from faster peers
        sent_state: dict = {}
        if hasattr(self.share, "after_averaging"):  # partial sharing measures change from x0
            self.share.after_averaging(node.x, sent_state)
        k = node.state.get("k", 0)  # a node back from offline goes on from its round
        while not node.done:
            await node.train(self.local_steps)
            payload = self.share.encode(node.x, sent_state, node.rng)
            for j in node.neighbors:
                node.send(j, "model", degree=node.degree, k=k, **payload)
            del payload
            await self._average(node, k, early, sent_state)
            k = max([k + 1, *early])  # k + 1, unless a neighbour is further on (faults)
            node.state["k"] = k
            for stale in [r for r in early if r < k]:
                del early[stale]

    async def _average(self, node, k: int, early: dict, sent_state: dict) -> None:
        """Waits for round k from every neighbour (or the timeout), then averages. A function
        of its own so that the round's models are let go as soon as it returns."""
        deadline = None if self.timeout is None else node.now + parse_time(self.timeout)
        got = {m.src: m for m in early.pop(k, [])}
        while len(got) < node.degree:
            m = await node.recv("model", timeout=None if deadline is None else deadline - node.now)
            if m is None:
                break
            if m.k == k:
                got[m.src] = m
            elif m.k > k:
                early[m.k].append(m)
                if m.k > k + 1:  # a neighbour gave up on us: we are behind, catch up
                    break
        with node.update():  # busy for compute.update_time, if set
            received = []
            for m in got.values():
                x_j, mask = self.share.decode(m.payload, node.x)
                received.append((x_j, mask, 1.0 / (1 + max(node.degree, m.degree))))
            self_weight = 1.0 - sum(w for _, _, w in received)
            sharing.masked_average_(node.x, self_weight, received)
        if hasattr(self.share, "after_averaging"):
            self.share.after_averaging(node.x, sent_state)
