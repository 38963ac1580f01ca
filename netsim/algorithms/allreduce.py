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
went offline or a message dropped leaves its peers waiting for ever; the run stops with a line
saying so). With one it is elastic (membership.py): a worker that has waited that long for a
message of its step applies its own gradient alone and enters a rendezvous with the workers
that answer; the group re-forms without the dead worker, the schedule is rebuilt for its m
members (so the mean divides by m), every member takes the model and momentum of the member
furthest on, and the group trains in step again, one model on every member. A worker that comes
back (a restart, a healed partition or link) is found by a rendezvous or a probe and rejoins
with the group's model. Each re-forming costs about two to three timeouts; records ``group``
gives the size of each group formed. The model evaluated is that of the lowest-numbered worker
online.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from netsim.algorithms import ops
from netsim.algorithms.collectives import SCHEDULES, Round
from netsim.algorithms.membership import Membership
from netsim.units import parse_time


@dataclass(frozen=True)
class AllReduceSGD:
    algorithm: str = "ring"  # "ring", "tree" or "halving_doubling"
    timeout: float | str | None = None  # s to wait for a message before going alone (faults)
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {
        "reduce": "a partial sum of the gradients: x, a slice of it, k, the step, t, the round "
        "(elastic: e, the group's epoch, g, its members' checksum)",
        "gather": "a slice of the summed gradient, on its way to every worker: x, k, t",
        "hello": "rendezvous (with a timeout): e, the epoch it calls for, k, the sender's step",
        "sync": "rendezvous: x, the model of the group's member furthest on, its momentum "
        "and started (its optimizer's state), e, the epoch",
    }
    records: ClassVar[dict[str, str]] = {
        "group": "each worker, at each rendezvous (with a timeout): the members of its group",
    }

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

    def global_model(self, X, roles, online=None):
        # every worker of a group holds the same model: the first one online's
        return X[next((i for i, up in enumerate(online or ()) if up), 0)]

    async def worker(self, node):
        if self.timeout is not None:
            return await self._elastic(node, parse_time(self.timeout))
        rounds = SCHEDULES[self.algorithm](node.world_size, node.x.numel())[node.id]
        early: dict = {}  # (src, k, t) -> a message for a later round, from a faster peer
        while not node.done:
            await node.gradient()
            g = node.g.clone()
            await _reduce(node, rounds, g, {"k": node.steps}, early)
            node.apply(g.div_(node.world_size))

    async def _elastic(self, node, timeout: float) -> None:
        group, early, k = Membership(node, timeout), {}, 0
        if node.steps:  # back after being offline: the others went on without it
            k = await group.rendezvous(k)
        while not node.done:
            hellos = group.news()
            if hellos:  # a worker came back or lost a peer: form the group again
                k = await group.rendezvous(k, hellos)
            group.probe(k)
            started = node.now
            await node.gradient()
            group.pace = node.now - started
            members, g = group.group.members, node.g.clone()
            stamp = {"e": group.group.epoch, "k": k, "g": group.group.id}
            rounds = _rounds(self.algorithm, members, node.x.numel(), node.id)
            ok = await _reduce(node, rounds, g, stamp, early, timeout)
            node.apply(g.div_(len(members)) if ok else node.g)  # else its gradient alone
            k += 1
            if not ok:
                k = await group.rendezvous(k)
            now = (group.group.epoch, k)
            for key in [key for key in early if key[1:-1] < now]:
                del early[key]  # of steps abandoned or of groups gone


@lru_cache(maxsize=256)
def _rounds(algorithm: str, members: tuple[int, ...], P: int, me: int) -> list[Round]:
    """The schedule of the group's members (ranks in order of id), with peers as node ids;
    kept, since a group lasts many steps."""
    plan = SCHEDULES[algorithm](len(members), P)[members.index(me)]
    ids = [[(members[j], a, b) for j, a, b in moves] for r in plan for moves in r[:2]]
    return [Round(ids[2 * t], ids[2 * t + 1], r.reduce) for t, r in enumerate(plan)]


async def _reduce(node, rounds, g, stamp: dict, early: dict, timeout=None) -> bool:
    """All-reduces g in place; False if a message did not come within timeout. Messages
    carry the stamp's fields (the step, and the epoch when elastic) and t, the round."""
    for t, (sends, recvs, reduce) in enumerate(rounds):
        kind = "reduce" if reduce else "gather"
        sent = [node.send(j, kind, x=g[a:b], **stamp, t=t) for j, a, b in sends]
        for j, a, b in recvs:
            m = await _take(
                node, kind, (j, *stamp.values(), t), b - a, tuple(stamp), early, timeout
            )
            if m is None:
                return False
            if reduce:
                g[a:b].add_(m.x)
            else:
                g[a:b].copy_(m.x)
        if sent:
            await node.all_of(sent)
    return True


async def _take(node, kind, key: tuple, size: int, fields: tuple, early: dict, timeout=None):
    """The message of kind from key's (src, *stamp, round), keeping any other that comes first
    (of a later step, or a later round of this one); None after timeout seconds without it."""
    if key in early and early[key].x.numel() == size:
        return early.pop(key)
    deadline = None if timeout is None else node.now + timeout
    while True:
        m = await node.recv(kind, timeout=None if deadline is None else deadline - node.now)
        if m is None:
            return None
        got = (m.src, *(getattr(m, f) for f in fields), m.t)
        if got == key and m.x.numel() == size:
            return m
        if got[1:-1] >= key[1:-1]:  # an earlier step's, abandoned by its sender: discarded
            early[got] = m
