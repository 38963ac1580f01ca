"""FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
Decentralized Data") and FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous
Networks").

    server, each round t = 1..rounds:
        S_t <- a random C fraction of the K clients (at least one)
        send w_t to every k in S_t                     # over the server's NIC: rounds take time
        w_{t+1} <- sum_k n_k w_k / sum_k n_k over the replies kept
    client k:
        w <- w_t; E local epochs of SGD with batch B on its n_k samples, minimising
        F_k(w) + mu/2 ||w - w_t||^2                    # mu = 0: FedAvg; mu > 0: FedProx
        reply (w, n_k)

Systems heterogeneity as in FedProx: a ``stragglers`` fraction of each round's clients does only
a random part of its E epochs; FedAvg drops their replies, FedProx keeps the partial work
(``FedProx(...)`` is FedAvg with ``drop_stragglers=False``). Local optimizer state (momentum)
persists across rounds, so runs usually set momentum=0 as the papers do.

Under faults (netsim.faults) the server needs a ``timeout`` (without one, a client that went
offline, or a model or reply dropped, leaves it waiting for ever; the run stops with a line
saying so). With one, each round waits at most that long for the replies and averages those
that came (none: w stays); messages then carry the round, so a late reply to an earlier round
is discarded. A client that goes offline loses its round's work; one that comes back waits
for the server's next model. The server's state is its row (kept with state "keep"). When
clients' online sessions are shorter than a round's local training, few replies ever come
(benchmarks/fault_matrix.py: under churn with 2 s sessions and 12 s rounds, none came and
the model stayed at x0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from netsim.algorithms import ops
from netsim.units import parse_time


@dataclass(frozen=True)
class FedAvg:
    rounds: int = 20
    C: float = 0.1
    E: int = 1
    mu: float = 0.0
    stragglers: float = 0.0
    drop_stragglers: bool = True
    timeout: float | str | None = None  # s a round waits for replies (faults); None: all
    needs_connected: ClassVar[bool] = False
    drives: ClassVar[tuple[str, ...]] = ("server",)
    sends: ClassVar[dict[str, str]] = {
        "model": "server to each chosen client: x, the global model, and partial (a straggler)",
        "update": "client to server: x after local training, n, its samples, and partial",
    }
    records: ClassVar[dict[str, str]] = {
        "clients_kept": "server, per round: the replies averaged (stragglers' dropped)",
    }

    @property
    def label(self) -> str:
        return "FedProx" if self.mu > 0 else "FedAvg"

    def layout(self, graph):
        return ops.with_server(graph)

    def global_model(self, X, roles):
        return ops.server_row(X, roles)

    def check(self, workers: int) -> None:
        if self.timeout is not None and not parse_time(self.timeout, "FedAvg.timeout") > 0:
            raise ops.AlgorithmError(f"FedAvg.timeout must be > 0 seconds, got {self.timeout!r}")

    def clients_per_round(self, clients: int) -> int:
        return max(1, round(self.C * clients))

    async def server(self, node):
        clients = node.neighbors
        m = self.clients_per_round(len(clients))
        timeout = None if self.timeout is None else parse_time(self.timeout)
        for t in range(self.rounds):
            chosen = sorted(int(k) for k in node.rng.choice(clients, m, replace=False))
            slow = set(node.rng.permutation(chosen)[: round(self.stragglers * m)].tolist())
            tag = {} if timeout is None else {"t": t}  # which round a reply answers
            for k in chosen:
                node.send(k, "model", x=node.x, partial=k in slow, **tag)
            if timeout is None:
                replies = [await node.recv("update") for _ in chosen]
            else:
                replies = await _replies(node, t, len(chosen), node.now + timeout)
            kept = [r for r in replies if not (r.partial and self.drop_stragglers)]
            if kept:
                total = sum(r.n for r in kept)
                with node.update():  # busy for compute.update_time, if set
                    node.x.copy_(torch.stack([r.x * (r.n / total) for r in kept]).sum(0))
            node.record("clients_kept", len(kept))

    async def worker(self, node):
        while True:
            model = await node.recv("model")
            node.x.copy_(model.x)
            steps = self.E * math.ceil(node.samples / node.batch_size)
            if model.partial and steps > 1:
                steps = int(node.rng.integers(1, steps))
            await node.train(steps, prox=(self.mu, model.x) if self.mu else None)
            tag = {"t": model.t} if "t" in model.payload else {}
            node.send(model.src, "update", x=node.x, n=node.samples, partial=model.partial, **tag)


async def _replies(node, t: int, count: int, deadline: float) -> list:
    """Round t's replies that come before the deadline (at most count)."""
    replies = []
    while len(replies) < count:
        reply = await node.recv("update", timeout=deadline - node.now)
        if reply is None:
            break
        if reply.t == t:
            replies.append(reply)
    return replies


def FedProx(mu: float = 0.01, **hyper) -> FedAvg:  # noqa: N802 (reads as the algorithm's name)
    """FedAvg with the proximal term and stragglers' partial work kept."""
    return FedAvg(mu=mu, drop_stragglers=False, **hyper)
