"""A run's faults on its clock: what holds now (who is offline, which links are down, which
partitions and loss bursts are on, how slow each node is) and the calls that tell the
simulation when a node goes offline and comes back. The faults themselves: faults.py.

Every interval starts and ends at an event scheduled when the run starts (churn drawn from a
distribution: at each session's end, the next), ahead of anything else due at the same
instant; the fabric asks ``at_send``, ``lost`` and ``offline`` about each message. A node is
offline while any of its offline intervals holds (a crash during a churn session's offline
period keeps it offline until both have ended).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import simpy

from netsim.network.faults import Plan


class Outages:
    def __init__(
        self,
        env: simpy.Environment,
        plan: Plan,
        roles: list[str],
        seed: int,
        offline: Callable[[int, bool], None],
        online: Callable[[int, str], None],
        tick: Callable[[], None] | None = None,
    ):
        """offline(node, forever) and online(node, state) are called as nodes go and come,
        tick() after every event of the faults."""
        self.env, self.plan, self._offline, self._online = env, plan, offline, online
        self._tick = tick
        n = len(roles)
        self.depth = [0] * n  # offline intervals holding per node
        self.down: Counter = Counter()  # (u, v) -> down intervals holding
        self.splits: list[dict[int, int]] = []  # the partitions on now
        self.bursts: list[float] = []  # the loss bursts on now
        self.factors: list[list[float]] = [[] for _ in roles]  # Slow factors on now, per node
        self.rng = np.random.default_rng([seed, 5])  # loss bursts' draws
        self.queued: set[int] = set()  # ids of this module's timeouts still to fire
        self.comebacks = 0  # finite offline intervals still to end
        for node, start, end, state in plan.offline:
            self._at(start, self._go, node, end == math.inf)
            if end < math.inf:
                self.comebacks += 1
                self._at(end, self._come, node, state)
        for u, v, at, until in plan.links:
            self._during(at, until, self.down.update, self.down.subtract, [(u, v)])
        for side, at, until in plan.partitions:
            self._during(at, until, self.splits.append, self.splits.remove, side)
        for p, at, until in plan.bursts:
            self._during(at, until, self.bursts.append, self.bursts.remove, p)
        for node, factor, at, until in plan.slow:
            self._during(at, until, self.factors[node].append, self.factors[node].remove, factor)
        if plan.churn is not None:
            fraction, session, state = plan.churn
            for i, role in enumerate(roles):
                if role == "worker":
                    rng = np.random.default_rng([seed, 6, i])
                    self._session(i, rng, session, session * fraction / (1 - fraction), state)

    # -- what holds now ---------------------------------------------------------------------
    def offline(self, node: int) -> bool:
        return self.depth[node] > 0

    def at_send(self, src: int, dst: int) -> str:
        """Why a message from src to dst sent now is dropped at once, or "" if it goes."""
        if self.depth[src] or self.depth[dst]:
            return "offline"
        if self.down[(min(src, dst), max(src, dst))] > 0:
            return "link down"
        if any(side[src] != side[dst] for side in self.splits):
            return "partition"
        return ""

    def lost(self) -> bool:
        """A message sent now is lost to a loss burst (one draw per burst on)."""
        return any(self.rng.random() < p for p in self.bursts)

    def slowdown(self, node: int) -> float:
        return math.prod(self.factors[node])

    @property
    def can_come_back(self) -> bool:
        """Whether a node may still come back online (churn drawn goes on for ever)."""
        return self.comebacks > 0 or self.plan.churn is not None

    # -- the clock --------------------------------------------------------------------------
    def _at(self, t: float, call: Callable, *args) -> None:
        """call(*args) at time t, before anything else due then (a node crashing at 2 s
        does not finish a step ending at 2 s; a step starting at a Slow's ``at`` is slow)."""
        timeout = simpy.Event(self.env)
        timeout._ok, timeout._value = True, None
        self.env.schedule(timeout, simpy.events.URGENT, max(0.0, t - self.env.now))
        self.queued.add(id(timeout))

        def fire(event):
            self.queued.discard(id(event))
            call(*args)
            if self._tick is not None:
                self._tick()

        timeout.callbacks.append(fire)

    def _during(self, at: float, until: float, start: Callable, end: Callable, item) -> None:
        self._at(at, start, item)
        self._at(until, end, item)

    def _go(self, node: int, forever: bool) -> None:
        self.depth[node] += 1
        if self.depth[node] == 1 or forever:
            self._offline(node, forever)

    def _come(self, node: int, state: str) -> None:
        self.comebacks -= 1
        self.depth[node] -= 1
        if self.depth[node] == 0:
            self._online(node, state)

    def _session(self, node: int, rng, up: float, down: float, state: str) -> None:
        """Churn: an online session, then an offline period, then the next session."""

        def go() -> None:
            self._go(node, False)
            self._at(self.env.now + rng.exponential(down), come)

        def come() -> None:
            self.comebacks += 1  # _come counts a comeback that was scheduled
            self._come(node, state)
            self._at(self.env.now + rng.exponential(up), go)

        self._at(self.env.now + rng.exponential(up), go)
