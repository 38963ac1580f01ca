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

Under faults (netsim.faults) the collective needs a ``timeout`` (without one, a worker that
went offline or a message dropped leaves its peers waiting for ever; the run stops with a
line saying so). With one, a worker that has waited that long for a message of its step
abandons the step's all-reduce, applies its own gradient alone and goes on; the messages of
abandoned steps are discarded. A worker that abandons a step moves to the newest step it
has heard of, or, if no peer is ahead of it, tries the same step again (with a new gradient),
so that the workers behind catch up with the one ahead and the ring falls back in step once
every worker is reachable again (after a cut link, a restart). This is not elastic
all-reduce: the schedule is fixed for n workers, so a dead worker is dropped from each step
after the timeout, not from the ring (that needs a membership protocol this does not have):
while one is offline, or for good after a crash, the others train alone, one step per
timeout, and their models drift apart and stay so (nothing averages models, only gradients;
worker 0's is the one evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netsim.algorithms import ops
from netsim.algorithms.collectives import SCHEDULES
from netsim.units import parse_time


@dataclass(frozen=True)
class AllReduceSGD:
    algorithm: str = "ring"  # "ring", "tree" or "halving_doubling"
    timeout: float | str | None = None  # s to wait for a message before going alone (faults)
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
        if self.timeout is not None and not parse_time(self.timeout, "timeout") > 0:
            raise ops.AlgorithmError(f"AllReduceSGD.timeout must be > 0 s, got {self.timeout!r}")

    def layout(self, graph):
        return ops.solo(graph)

    def global_model(self, X, roles):
        return X[0]  # every worker holds the same model

    async def worker(self, node):
        schedule = SCHEDULES[self.algorithm](node.world_size, node.x.numel())[node.id]
        early: dict = {}  # (src, k, t) -> a message for a later round, from a faster peer
        timeout = None if self.timeout is None else parse_time(self.timeout)
        k = 0
        while not node.done:
            await node.gradient()
            g, k = node.g.clone(), (node.steps if timeout is None else k + 1)
            if await self._reduce(node, schedule, g, k, early, timeout):
                node.apply(g.div_(node.world_size))
                for key in [key for key in early if key[1] <= k] if timeout else []:
                    del early[key]  # left from steps that others abandoned
                continue
            node.apply(node.g)  # abandoned: this worker's gradient alone
            ahead = [key[1] for key in early if key[1] > k]
            # next: the newest step heard of; if nobody is ahead, this step again, so that
            # the workers behind can catch up with it
            k = max(ahead) - 1 if ahead else k - 1
            for key in [key for key in early if key[1] <= k]:
                del early[key]

    async def _reduce(self, node, schedule, g, k: int, early: dict, timeout) -> bool:
        """All-reduces g in place; False if a message did not come within timeout."""
        for t, (sends, recvs, reduce) in enumerate(schedule):
            kind = "reduce" if reduce else "gather"
            sent = [node.send(j, kind, x=g[a:b], k=k, t=t) for j, a, b in sends]
            for j, a, b in recvs:
                m = await _take(node, kind, (j, k, t), early, timeout)
                if m is None:
                    return False
                if reduce:
                    g[a:b].add_(m.x)
                else:
                    g[a:b].copy_(m.x)
            if sent:
                await node.all_of(sent)
        return True


async def _take(node, kind: str, key: tuple[int, int, int], early: dict, timeout=None):
    """The message of kind from key's (src, step, round), keeping any other that comes first
    (of a later step, or a later round of this one); None after timeout seconds without it."""
    if key in early:
        return early.pop(key)
    deadline = None if timeout is None else node.now + timeout
    while True:
        m = await node.recv(kind, timeout=None if deadline is None else deadline - node.now)
        if m is None:
            return None
        if (m.src, m.k, m.t) == key:
            return m
        if m.k >= key[1]:  # an earlier step's, from a worker that abandoned it: discarded
            early[(m.src, m.k, m.t)] = m
