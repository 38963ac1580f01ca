"""Synchronous data-parallel SGD with all-reduce, as PyTorch DDP and Horovod run it (Sergeev
and Del Balso 2018, "Horovod: fast and easy distributed deep learning in TensorFlow").

    worker i, each step k:
        g_i <- grad f(x; batch_i)
        g <- all-reduce(g_1, ..., g_n) / n         # a collective schedule through the network
        x <- optimizer step with g                 # the same on every worker: one model

The all-reduce is a real message pattern (collectives.py), so a step's time comes out of the
fabric: ``"ring"`` sends 2(n - 1) chunks of S/n per node (reduce-scatter, then all-gather),
``"tree"`` reduces the whole vector up a binomial tree and broadcasts it back, and
``"halving_doubling"`` is Rabenseifner's recursive halving and doubling. Each round a node
posts its sends, takes what its peers send it in that round, and waits until its own sends
are delivered, as blocking sends do. Nodes are ordered by id whatever the topology: the
collective runs over the switch. Given the same gradients, the update is SyncPS's: the same
mean, the same optimizer step, and every worker holds the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netsim.algorithms import ops
from netsim.algorithms.collectives import SCHEDULES


@dataclass(frozen=True)
class AllReduceSGD:
    algorithm: str = "ring"  # "ring", "tree" or "halving_doubling"
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {
        "reduce": "a partial sum of the gradients: x, a slice of it, k, the step, t, the round",
        "gather": "a slice of the summed gradient, on its way to every worker: x, k, t",
    }
    records: ClassVar[dict[str, str]] = {}

    def check(self, workers: int) -> None:
        if self.algorithm not in SCHEDULES:
            raise ops.AlgorithmError(
                f"AllReduceSGD.algorithm must be one of {', '.join(SCHEDULES)}, "
                f"got {self.algorithm!r}"
            )

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return X[0]  # every worker holds the same model

    async def worker(self, node):
        schedule = SCHEDULES[self.algorithm](node.world_size, node.x.numel())[node.id]
        early: dict = {}  # (src, k, t) -> a message for a later round, from a faster peer
        while not node.done:
            await node.gradient()
            g, k = node.g.clone(), node.steps
            for t, (sends, recvs, reduce) in enumerate(schedule):
                kind = "reduce" if reduce else "gather"
                sent = [node.send(j, kind, x=g[a:b], k=k, t=t) for j, a, b in sends]
                for j, a, b in recvs:
                    x = (await _take(node, kind, (j, k, t), early)).x
                    if reduce:
                        g[a:b].add_(x)
                    else:
                        g[a:b].copy_(x)
                if sent:
                    await node.all_of(sent)
            node.apply(g.div_(node.world_size))


async def _take(node, kind: str, key: tuple[int, int, int], early: dict):
    """The message of kind from key's (src, step, round), keeping any other that comes first."""
    if key in early:
        return early.pop(key)
    while True:
        m = await node.recv(kind)
        if (m.src, m.k, m.t) == key:
            return m
        early[(m.src, m.k, m.t)] = m
