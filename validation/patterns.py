"""Traffic patterns for the fidelity harness: tiny roles that send S bytes and train nothing.

A pattern is a schedule of transfers (t, src, dst, bytes). Each node's role sends its own
transfers at their times (a uint8 tensor of the given size, so the message is S bytes plus a
few bytes of header) and waits for every transfer addressed to it; the run ends when every
node has sent and received all of its share. The same pattern runs in both runtimes, and
messages.csv then holds each message's t_send and t_arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import networkx as nx
import numpy as np
import torch

from netsim.algorithms import ops

MB = 10**6


@dataclass(frozen=True)
class Transfers:
    """Sends (t, src, dst, bytes): at time t (s since the start) src sends dst a payload of
    that many bytes."""

    schedule: tuple[tuple[float, int, int, int], ...]
    nodes: int
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {"data": "a payload of the pattern's size"}
    records: ClassVar[dict[str, str]] = {}

    def layout(self, graph):
        return ops.solo(nx.complete_graph(self.nodes))

    def alike(self) -> dict[tuple[int, int, int], tuple[float, int]]:
        """(src, dst, k) of each transfer (k counting that pair's transfers in time order, as
        messages are matched) -> its (t, bytes). Transfers that start at the same instant
        with the same size are alike: in these patterns they also cross links of the same
        rates, so which of them ends first is chance, not something a model can know."""
        seen: dict[tuple[int, int], int] = {}
        found = {}
        for t, src, dst, size in sorted(self.schedule):
            k = seen[src, dst] = seen.get((src, dst), -1) + 1
            found[src, dst, k] = (t, size)
        return found

    async def worker(self, node):
        mine = sorted((t, dst, size) for t, src, dst, size in self.schedule if src == node.id)
        expected = sum(dst == node.id for _, _, dst, _ in self.schedule)
        for t, dst, size in mine:
            await node.sleep(t - node.now)
            node.send(dst, "data", blob=torch.zeros(size, dtype=torch.uint8))
        for _ in range(expected):
            await node.recv("data")


def one(size: int) -> Transfers:
    return Transfers(((0.0, 0, 1, size),), 2)


def fan_in(n: int, size: int) -> Transfers:
    """n senders (nodes 1..n) into node 0, all at once."""
    return Transfers(tuple((0.0, i, 0, size) for i in range(1, n + 1)), n + 1)


def fan_out(n: int, size: int) -> Transfers:
    return Transfers(tuple((0.0, 0, i, size) for i in range(1, n + 1)), n + 1)


def all_to_all(n: int, size: int) -> Transfers:
    return Transfers(tuple((0.0, i, j, size) for i in range(n) for j in range(n) if i != j), n)


def ring(n: int, size: int) -> Transfers:
    return Transfers(tuple((0.0, i, (i + 1) % n, size) for i in range(n)), n)


def staggered(n: int, size: int, count: int, spread: float, seed: int = 0) -> Transfers:
    """count random pairs among n nodes, starting uniformly over spread seconds: flows that
    start and end while others run."""
    rng = np.random.default_rng(seed)
    schedule = []
    for _ in range(count):
        src, dst = rng.choice(n, size=2, replace=False)
        schedule.append((float(rng.uniform(0, spread)), int(src), int(dst), size))
    return Transfers(tuple(sorted(schedule)), n)


@dataclass(frozen=True)
class Served:
    """The parameter-server pattern without training: each worker (nodes 1..workers) waits
    its emulated compute (``compute`` seconds x exp(N(0, jitter^2)), from its seeded
    generator), pushes ``size`` bytes to the server (node 0) and waits for the server's
    reply of ``size`` bytes, ``rounds`` times; the server replies to each push as it has it.
    Unlike a schedule it runs closed-loop: when a worker sends depends on when its reply
    came, so the two runtimes' timings are compared, not replayed."""

    workers: int
    size: int
    rounds: int
    compute: float = 0.58
    jitter: float = 0.02
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {"data": "a push or a reply of the pattern's size"}
    records: ClassVar[dict[str, str]] = {}

    @property
    def nodes(self) -> int:
        return self.workers + 1

    def layout(self, graph):
        return ops.solo(nx.complete_graph(self.nodes))

    async def worker(self, node):
        blob = torch.zeros(self.size, dtype=torch.uint8)
        if node.id == 0:
            for _ in range(self.workers * self.rounds):
                push = await node.recv("data")
                node.send(push.src, "data", blob=blob)
            return
        for _ in range(self.rounds):
            await node.sleep(self.compute * float(np.exp(node.rng.normal(0.0, self.jitter))))
            node.send(0, "data", blob=blob)
            await node.recv("data")


@dataclass(frozen=True)
class Pulled:
    """ps_vs_p2p's peer-to-peer pattern (P2PPull) without training: each of ``workers`` nodes
    waits its emulated compute (as in Served), drops any reply that came after its timeout,
    asks a random other node for its model (a request of a few bytes) and waits up to
    ``timeout`` seconds for the ``size``-byte reply, ``rounds`` times; every node answers each
    request as it has it. A worker's steps end when it sends its requests, so its step times
    are the gaps between them. Nothing is decoded or averaged, so what differs from the
    simulation is TCP and the runtime's handling of the bytes, not training's CPU."""

    workers: int
    size: int
    rounds: int
    compute: float = 0.58
    jitter: float = 0.02
    timeout: float = 1.0
    needs_connected: ClassVar[bool] = False
    sends: ClassVar[dict[str, str]] = {
        "pull": "a request for the peer's model (one byte)",
        "model": "a reply of the pattern's size",
    }
    records: ClassVar[dict[str, str]] = {}

    @property
    def nodes(self) -> int:
        return self.workers

    def layout(self, graph):
        return ops.peers(nx.complete_graph(self.nodes))

    async def worker(self, node):
        others = [j for j in range(self.nodes) if j != node.id]
        for _ in range(self.rounds):
            await node.sleep(self.compute * float(np.exp(node.rng.normal(0.0, self.jitter))))
            node.drain("model")
            node.send(int(node.rng.choice(others)), "pull", blob=torch.zeros(1, dtype=torch.uint8))
            await node.recv("model", timeout=self.timeout)

    async def serve(self, node):
        blob = torch.zeros(self.size, dtype=torch.uint8)
        while True:
            request = await node.recv("pull")
            node.send(request.src, "model", blob=blob)
