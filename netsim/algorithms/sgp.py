"""SGP: Stochastic Gradient Push (Assran, Loizou, Ballas, Rabbat 2019, ICML), push-sum on
directed, possibly time-varying graphs, with the tau-overlap variant.

Each worker holds a push-sum numerator x_i and weight w_i = 1 and trains the de-biased
z_i = x_i / w_i. With P_k the column-stochastic mixing matrix of round k (P_k[j, i] is the share
of i's mass that goes to j):

    x_i <- x_i - lr * grad f_i(z_i)                 # local step at the de-biased parameters
    send (P_k[j, i] x_i, P_k[j, i] w_i) to each out-neighbour j of round k
    x_i <- P_k[i, i] x_i + sum of received x_j;  w_i likewise
    z_i <- x_i / w_i

Synchronous SGP (overlap=0) waits for every in-neighbour's message of round k; with overlap=tau
a node adds whatever of rounds <= k has arrived and waits only for the messages of rounds
<= k - tau (the paper's overlap SGP, tau = 1 there), so communication hides behind the next tau
steps: a round-r push is mixed in at a round in r..r + tau. Pushes of later rounds, from faster
in-neighbours, wait for their round. Each push mixed in records its staleness, the rounds it
waited (0..tau).

``schedule``: "one_peer_exponential" (round k: i sends half to i + 2^(k mod log2 n)), "graph"
(the topology's out-neighbours, an equal split among them and i itself, every round), or a
``topologies.schedules.Schedule`` of column-stochastic matrices. ``node.x`` holds z_i, so the
global model is the average of the de-biased parameters; ``node.state["w"]`` is w_i.

Under faults (netsim.faults) SGP needs a ``timeout`` (without one, a push that never comes
leaves its receiver waiting for ever; the run stops with a line saying so). With one, a node
that has waited that long for a round's pushes mixes in what came and goes on, and if a
later round's push has come it moves on to that round. Push-sum's mass is kept where the
sender can know it was not delivered: a push refused because its receiver is offline, the
link is down or a partition cuts it (a failed connection, which a TCP sender sees) is taken
back by its sender, its shares of x and w added to its own at its next mixing, so the w_i
still sum to n. Lost for good: a push lost on the way (``loss``, a loss burst, a full
queue), which its sender cannot tell from a slow one, the pushes in an offline node's
mailbox, and the mass of a node that crashes for good. Without taking refused pushes back,
an offline out-neighbour drained some mass every round: the w_i decayed geometrically (to
1e-4 in a 4 s partition of benchmarks/fault_matrix.py) and the de-biased step lr g / w_i
grew with 1 / w_i. Taking them back keeps the sum, not the spread: across a lasting cut the
one-peer schedule moves mass towards some nodes of each side (w_i from 0.125 to 3 there),
and the nodes with little take larger steps until the cut heals and the w_i even out. A
node that comes back with state "keep" goes on with its w_i (node.state["w"], kept as soon
as its pushes are sent); with "reset" it joins again with w_i = 1 and x_i = x0, new mass
that weighs 1/n of the average. It starts again at round 0 and catches up with the rounds
after one timeout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from netsim.algorithms import ops
from netsim.units import parse_time
from topologies import schedules


@dataclass(frozen=True)
class SGP:
    schedule: Any = "one_peer_exponential"
    overlap: int = 0
    timeout: float | str | None = None  # s to wait for a round's pushes (faults); None: ever
    needs_connected: ClassVar[bool] = True
    sends: ClassVar[dict[str, str]] = {
        "push": "to each out-neighbour of round k: x and w, its shares of i's mass, and k",
    }
    records: ClassVar[dict[str, str]] = {
        "staleness": "receiver, per push mixed in: the rounds it waited (0..overlap)",
    }

    def check(self, workers: int) -> None:
        ops.check_peers("SGP", workers)
        if self.schedule not in ("one_peer_exponential", "graph"):
            ops.check_matrix("SGP.schedule", self.schedule, workers)
        if not (isinstance(self.overlap, int) and self.overlap >= 0):
            raise ops.AlgorithmError(
                f"SGP.overlap is a whole number of rounds >= 0, got {self.overlap}"
            )
        if self.timeout is not None and not parse_time(self.timeout, "SGP.timeout") > 0:
            raise ops.AlgorithmError(f"SGP.timeout must be > 0 seconds, got {self.timeout!r}")

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        w, k = node.state.get("w", 1.0), 0  # w kept by a node back with state "keep"
        received: dict[int, int] = defaultdict(int)
        early: list = []  # pushes of rounds after ours, from faster in-neighbours
        unsure: list = []  # pushes sent whose fate is not known yet (with a timeout)
        while not node.done:
            await node.gradient()
            node.apply(node.g / w)  # z - lr g / w, i.e. the numerator x - lr g
            x = node.x * w
            keep, pushes = self._column(node, k)
            for j, share in pushes:
                sent = node.send(j, "push", x=x * share, w=w * share, k=k)
                if self.timeout is not None:
                    unsure.append(sent)
            x.mul_(keep)
            w *= keep
            node.state["w"] = w  # z = x / w is unchanged: node.x holds the node's mass now
            arrived = early + node.drain("push")
            r = k - self.overlap
            deadline = None if self.timeout is None else node.now + parse_time(self.timeout)
            while r >= 0 and received[r] + sum(m.k == r for m in arrived) < self._in_count(node, r):
                m = await node.recv("push", None if deadline is None else deadline - node.now)
                if m is None:  # timed out (faults): mix what came, go on from the newest round
                    k = max([k, *(push.k - 1 for push in arrived)])
                    break
                arrived.append(m)
            # mixing a later round's push now would make this round's matrix depend on timing
            early = [m for m in arrived if m.k > k]
            unsure, refused = _refused(node, unsure)
            for m in refused:  # taken back: the receiver never had it
                x.add_(m.x)
                w += m.w
            for m in arrived:
                if m.k <= k:
                    x.add_(m.x)
                    w += m.w
                    received[m.k] += 1
                    node.record("staleness", k - m.k)
            node.x.copy_(x / w)
            node.state["w"] = w
            k += 1

    def _column(self, node, k: int) -> tuple[float, list[tuple[int, float]]]:
        """(share i keeps, [(out-neighbour, share)]) for round k."""
        if self.schedule == "graph":
            share = 1.0 / (len(node.out_neighbors) + 1)
            return share, [(j, share) for j in node.out_neighbors]
        P = _matrices(self.schedule, node.world_size)[k]
        column = P[:, node.id]
        return float(column[node.id]), [
            (int(j), float(column[j])) for j in np.flatnonzero(column) if j != node.id
        ]

    def _in_count(self, node, k: int) -> int:
        if self.schedule == "graph":
            return len(node.neighbors)
        row = _matrices(self.schedule, node.world_size)[k][node.id]
        return int(np.count_nonzero(row)) - int(row[node.id] != 0)


REFUSED = ("offline", "link down", "partition")  # drops a sender sees: the connection failed


def _refused(node, sent: list) -> tuple[list, list]:
    """(the sends whose fate is still unknown, the messages refused among the others)."""
    unknown, refused = [], []
    for event in sent:
        m = node.ended(event)
        if m is None:
            unknown.append(event)
        elif m.dropped and m.drop_reason in REFUSED:
            refused.append(m)
    return unknown, refused


@lru_cache(maxsize=8)
def _one_peer(n: int):
    return schedules.one_peer_exponential(n)


def _matrices(schedule, n: int):
    return _one_peer(n) if schedule == "one_peer_exponential" else schedule
