"""GoSGD: gossip stochastic gradient descent (Blot, Picard, Cord, Thome 2016, arXiv 1611.09726).

Each of the M workers holds parameters x_i and a weight alpha_i = 1/M; the alphas of all workers
and all messages in flight always sum to 1, and the alpha-weighted mean of the models is what an
exchange preserves. Worker i loops:

    for each queued message (x_j, alpha_j):                      # processed before each step
        x_i <- (alpha_i x_i + alpha_j x_j) / (alpha_i + alpha_j)
        alpha_i <- alpha_i + alpha_j
    x_i <- SGD step on x_i
    with probability p:
        alpha_i <- alpha_i / 2;  push (x_i, alpha_i) to a random peer's queue

The global model is the plain average of all x_m, as in the paper.

Matrix-driven variant (Ghaemi; Mirzaei), ``W`` given: a row-stochastic W (or a periodic
``topologies.schedules.Schedule``, indexed by the worker's own step count) replaces the uniform
peer choice and the halving. When worker i pushes at its step k, it draws the peer j with
probability W_k[j, i] / sum_{l != i} W_k[l, i] (who gives weight to i's value), and sends
(x_i, alpha_i * s) keeping alpha_i * (1 - s), where s = 1 - W_k[i, i] is the share row i does not
keep for itself. The merge rule above is unchanged, so total weight and the weighted mean are still
conserved; W's support decides who talks to whom, and its diagonal how much is handed over. The
uniform all-1/M matrix thus hands over (M-1)/M of the weight to a uniformly chosen peer.

Under message loss a lost push takes its weight with it: at p = 1 and 50% loss every alpha shrinks
by about 3/4 a step and would underflow to 0 within 3,000 steps, after which pushes carry no
weight and merges stop. Only the ratio alpha_j / (alpha_i + alpha_j) enters a merge, so the
weights are held as logarithms (``log_alpha``, in the state and in each push), which never
underflow; without loss the arithmetic is the paper's. The lost weight is not recovered (a sender
does not learn that its push was lost), so under loss the models still reach consensus, on a mean
weighted by who lost what, as push-sum does without loss recovery.

Under faults (netsim.faults) GoSGD never waits, so it needs no timeout. A push dropped because
its receiver is offline, its link is down or a partition or loss burst is on is lost with its
weight, as above; the mass lost is not recovered and the log-weights keep merges going. A node
that goes offline keeps its weight while away (it is in ``node.state``, kept with state
"keep"); one that comes back with state "reset" starts again from x0 with weight 1/M, so the
total weight then exceeds 1 by that much. Only ratios of weights enter a merge, so neither
changes the rule, only whose models count for more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from netsim.algorithms import ops, sharing


@dataclass(frozen=True)
class GoSGD:
    p: float = 0.1
    W: Any = None  # None: the paper's rule; else a matrix or a topologies.schedules.Schedule
    share: Any = field(default_factory=sharing.Full)  # what a push carries (sharing.py)
    needs_connected: ClassVar[bool] = True
    sends: ClassVar[dict[str, str]] = {
        "gossip": "to a random peer: log_alpha, the log of the weight handed over, and x or the "
        "fields of share",
    }
    records: ClassVar[dict[str, str]] = {}

    def check(self, workers: int) -> None:
        ops.check_peers("GoSGD", workers)
        if not 0 <= self.p <= 1:
            raise ops.AlgorithmError(f"GoSGD.p is a probability in [0, 1], got {self.p}")
        if self.W is not None:
            ops.check_matrix("GoSGD.W", self.W, workers)

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        node.state.setdefault("log_alpha", -math.log(node.world_size))  # kept on a comeback
        sent_state: dict = {}
        while not node.done:
            for message in node.drain("gossip"):
                with node.update():  # busy for compute.update_time, if set
                    x_j, _ = self.share.decode(message.payload, node.x)  # missing: i's own
                    node.state["log_alpha"] = ops.gossip_merge(
                        node.x, node.state["log_alpha"], x_j, message.log_alpha
                    )
            await node.train()
            if node.rng.random() < self.p:
                peer, handed = self._peer_and_share(node)
                if peer is None:
                    continue
                log_alpha = node.state["log_alpha"]
                node.state["log_alpha"] = log_alpha + _log(1.0 - handed)
                payload = self.share.encode(node.x, sent_state, node.rng)
                node.send(peer, "gossip", log_alpha=log_alpha + _log(handed), **payload)
                if hasattr(self.share, "after_averaging"):  # next push: change since this one
                    self.share.after_averaging(node.x, sent_state)

    def _peer_and_share(self, node) -> tuple[int | None, float]:
        if self.W is None:
            return int(node.rng.choice(node.out_neighbors)), 0.5
        W = np.asarray(self.W[node.steps] if hasattr(self.W, "period") else self.W)
        column = W[:, node.id].copy()
        column[node.id] = 0.0
        if column.sum() <= 0:  # W links i to nobody at this step: keep everything
            return None, 0.0
        peer = int(node.rng.choice(len(column), p=column / column.sum()))
        return peer, 1.0 - float(W[node.id, node.id])


def _log(share: float) -> float:
    return math.log(share) if share > 0 else -math.inf
