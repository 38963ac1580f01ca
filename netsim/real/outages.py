"""A run's faults on real time: the plan (netsim/network/faults.py) read as intervals of
seconds since t0, the same intervals the simulation schedules (netsim/network/outages.py).

The coordinator makes the plan once and sends it to every node process, so no node reads a
churn trace itself. Churn drawn from a distribution is drawn as the simulation draws it
(per worker, the stream [seed, 6, i]: an online session, an offline period, and so on),
lazily, as far as the run's clock has gone. Every process answers the same questions about
any node at any time: whether it is offline, why a message sent now is dropped, how slow a
step started now is. Loss bursts draw from a stream of the sender's own ([seed, 5, i]): a
process cannot share the simulation's single stream, so which messages a burst of p < 1
takes differs; how many, in expectation, does not.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Iterator

import numpy as np

from netsim.network.faults import Plan


class Schedule:
    def __init__(self, plan: Plan, roles: list[str], seed: int, me: int):
        self.plan = plan
        self.spans: list[list[tuple[float, float]]] = [[] for _ in roles]
        for node, start, end, _ in plan.offline:
            self.spans[node].append((start, end))
        self._draws: list[Iterator | None] = [None] * len(roles)
        self._drawn: list[list[tuple[float, float]]] = [[] for _ in roles]  # churn's, in order
        if plan.churn is not None:
            fraction, session, _ = plan.churn
            for i, role in enumerate(roles):
                if role == "worker":
                    rng = np.random.default_rng([seed, 6, i])
                    self._draws[i] = _sessions(rng, session, session * fraction / (1 - fraction))
        self.rng = np.random.default_rng([seed, 5, me])

    def offline(self, node: int, t: float) -> bool:
        """Whether node is offline at t: an offline interval [start, end) holds t."""
        if any(start <= t < end for start, end in self.spans[node]):
            return True
        drawn = self._churn(node, t)
        k = bisect.bisect_right(drawn, (t, math.inf)) - 1
        return k >= 0 and t < drawn[k][1]

    def at_send(self, src: int, dst: int, t: float) -> str:
        """Why a message from src to dst sent at t is dropped at once, or "" if it goes."""
        if self.offline(src, t) or self.offline(dst, t):
            return "offline"
        u, v = min(src, dst), max(src, dst)
        if any(a == u and b == v and at <= t < until for a, b, at, until in self.plan.links):
            return "link down"
        if any(
            side[src] != side[dst] and at <= t < until for side, at, until in self.plan.partitions
        ):
            return "partition"
        return ""

    def lost(self, t: float) -> bool:
        """A message sent at t is lost to a loss burst (one draw per burst on)."""
        return any(self.rng.random() < p for p, at, until in self.plan.bursts if at <= t < until)

    def slowdown(self, node: int, t: float) -> float:
        """The Slow factors on at t for node, multiplied."""
        return math.prod(f for i, f, at, until in self.plan.slow if i == node and at <= t < until)

    def changes(self, node: int) -> Iterator[tuple[float, int, str, bool]]:
        """(t, +1 or -1, state, forever) as node's offline intervals start (+1) and end (-1),
        in time order: node is offline while more have started than ended. ``state`` is the
        ending interval's ("keep" or "reset"); ``forever``: an interval that never ends."""
        events = []
        for i, start, end, state in self.plan.offline:
            if i == node:
                events.append((start, 1, state, end == math.inf))
                if end < math.inf:
                    events.append((end, -1, state, False))
        events.sort(key=lambda e: e[0])
        if self._draws[node] is None:
            return iter(events)
        state = self.plan.churn[2]
        return heapq.merge(events, self._churn_changes(node, state), key=lambda e: e[0])

    def _churn_changes(self, node: int, state: str) -> Iterator:
        for k in itertools.count():
            if k == len(self._drawn[node]):
                self._drawn[node].append(next(self._draws[node]))
            off, on = self._drawn[node][k]
            yield off, 1, state, False
            yield on, -1, state, False

    def _churn(self, node: int, t: float) -> list[tuple[float, float]]:
        """Node's churn intervals drawn so far, drawn on until one starts after t."""
        drawn, draws = self._drawn[node], self._draws[node]
        while draws is not None and (not drawn or drawn[-1][0] <= t):
            drawn.append(next(draws))
        return drawn


def _sessions(rng: np.random.Generator, up: float, down: float) -> Iterator:
    """Churn's offline intervals (t_off, t_on), drawn as the simulation draws them: starting
    online at 0, an online session of mean up, then an offline period of mean down, ..."""
    t = 0.0
    while True:
        off = t + rng.exponential(up)
        t = off + rng.exponential(down)
        yield off, t
