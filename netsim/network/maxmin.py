"""Max-min fair sharing of links among flows, on the SimPy clock (the "maxmin" of fabric.py).

A flow moves some bits through a few links (uplink, downlink, maybe an edge), each link a
capacity shared by the flows crossing it. Rates are max-min fair, found by progressive
filling: all rates rise together, and a link whose fair share spare / unfrozen is no larger
than the share of any other link its unfrozen flows cross is a bottleneck; it freezes them at
that share and gives the rest of the links what is left. Freezing every such link in one
round, not only the tightest one, gives the same rates in far fewer rounds: a link's share
never falls while flows elsewhere freeze below it, so a local bottleneck stays one. Weighted
(Network.unfairness): what rises is a link's spare capacity per unit of its unfrozen flows'
weight, and a flow's rate is its weight times that at its bottleneck. With a ramp (T, k), a
flow's weight starts at 2^-k of the one it is given and doubles every T / k seconds, each
doubling a reshare of its group (Network.ramp). With ``together`` = W, a flow's weight counts
only once it races another for a link (races.py; Network.unfairness_among = "together").

ACKs (Network.acks = a): a flow's column of link ids holds its links out, then its links back,
and a flow of rate r sends a r of ACKs over the links back. ACKs go first (as a host's qdisc
serves sparse flows first), so a link's data gets its capacity less the ACKs on it, and a flow
is held by its own ACKs only where ACKs alone fill a link back. The rates are the fixed point
of: ACK loads from the rates, then max-min rates on what the ACKs leave. Iterated from the
rates without ACKs, each step shrinks the change about a-fold (a flow's ACKs change the
capacity of links its peers' data crosses by a times its own change), so a = 2.5% takes a few
rounds and the result is exact to 1e-12. (The links back as ordinary rows of coefficient a
would freeze a flow wherever its ACKs cross a saturated link, however small a is.)

Rates depend on each other only within a group of flows connected through shared links, the
unit of work: its flows live in numpy arrays, reshared once per instant in a few vectorised
passes when flows start or end (1,000 flows into one downlink cost about twice what 10 do),
and only its earliest end is scheduled. Groups merge when a flow joins two, and split once
half their flows have ended since the last check (resharing them together gives each the
rates it would get alone: filling never mixes unconnected flows). A connection
(Network.connections = "pair") is one flow: ``more`` queues a message's bits behind it.

Numerics: a flow with less than 1e-9 s of work left is done (otherwise rounding dust can
stall the clock); SimPy cannot cancel a timeout, so a wake-up carries its group's generation,
bumped at every reshare or merge, and an older one is ignored.
"""

from collections import deque
from collections.abc import Callable
from functools import partial

import numpy as np
import simpy

from netsim.network.filling import NO_LINK, connected, max_min
from netsim.network.groups import Group
from netsim.network.races import Races

_DUST = 1e-9  # s: a flow this close to done is done, else rounding dust can stall the clock


class MaxMin:
    """Links of the given capacities (bits/s; id NO_LINK must be math.inf), shared fairly, or
    with weighted=True in proportion to each flow's weight (weighted max-min)."""

    def __init__(
        self,
        env: simpy.Environment,
        capacities: list[float],
        width: int,
        weighted: bool = False,
        ramp: tuple[float, int] = (0.0, 0),
        acks: float = 0.0,
        together: float | None = None,
    ):
        self.env, self.weighted = env, weighted or ramp[0] > 0
        # with ACKs, a flow's link ids are its width links out, then its width links back
        self.out, self.width, self.acks = width, 2 * width if acks else width, acks
        # (T, k): a flow starts at 2^-k of its weight and doubles it every T / k seconds
        self._ramp_step, self._ramp_steps = (ramp[0] / ramp[1], ramp[1]) if ramp[0] > 0 else (0, 0)
        self.capacity = np.array(capacities, dtype=float)
        self._users = [0] * len(capacities)  # flows on each link
        self._group: list[Group | None] = [None] * len(capacities)  # the group on each link
        self._queued: dict[int, deque] = {}  # flow id: (bits, on_end) queued behind it, by more
        self._dirty: dict[Group, None] = {}  # groups whose flows changed at this instant
        self._next_id = 0
        # together = W: weights count only among flows that start within W s of one another
        self._races = Races(together) if together is not None else None

    def start(
        self, links: tuple[int, ...], bits: float, on_end: Callable[[], None], weight: float = 1.0
    ) -> int:
        """Start moving bits through links (width ids, NO_LINK for none); on_end() when done;
        its id. Under weighted sharing its rate is weight times its bottleneck's rate per unit."""
        groups = {}
        for link in links:
            if link != NO_LINK:
                if self._group[link] is not None:
                    groups[self._group[link]] = None
                self._users[link] += 1
        group = max(groups, key=len) if groups else Group(self.width, self.env.now)
        for other in groups:
            if other is not group:
                self._merge(other, group)
        for link in links:
            if link != NO_LINK:
                self._group[link] = group
        self._next_id += 1
        if self._races is not None:
            weight = self._race(links, self._next_id, weight)
        if self._ramp_steps:
            weight *= 0.5**self._ramp_steps
            self._double(links, self._next_id, self._ramp_steps)
        group.new.append((links, bits, self._next_id, weight))
        group.on_end[self._next_id] = on_end
        self._changed(group)
        return self._next_id

    def more(self, flow: int, bits: float, on_end: Callable[[], None]):
        """Queue bits behind a running flow's (a connection's next message), moved in turn."""
        self._queued.setdefault(flow, deque()).append((bits, on_end))

    def _race(self, links: tuple[int, ...], flow: int, weight: float) -> float:
        """The weight a new flow starts with under ``together`` (races.py)."""
        out = {link for link in links[: self.out] if link != NO_LINK}
        weight, joined = self._races.start(self.env.now, flow, links, out, weight, self._running)
        for its_links, other, draw in joined:
            self._scale(its_links, other, draw)
        return weight

    def _live(self, links: tuple[int, ...], flow: int) -> Group | None:
        """The group of a flow through links, or None once it has ended."""
        group = self._group[next(link for link in links if link != NO_LINK)]
        return group if group is not None and flow in group.on_end else None

    def _running(self, links: tuple[int, ...], flow: int) -> bool:
        return self._live(links, flow) is not None

    def _scale(self, links: tuple[int, ...], flow: int, factor: float) -> bool:
        """Multiply a running flow's weight by factor (a reshare); False if it ended."""
        if (group := self._live(links, flow)) is None:
            return False
        for i, new in enumerate(group.new):
            if new[2] == flow:
                group.new[i] = (*new[:3], factor * new[3])
                break
        else:
            group.weight[np.flatnonzero(group.ids == flow)] *= factor
        self._changed(group)
        return True

    def _double(self, links: tuple[int, ...], flow: int, left: int):
        """In one ramp step, double the weight of the flow (if it still runs), left times."""
        wake = self.env.timeout(self._ramp_step)
        wake.callbacks.append(lambda _: self._doubled(links, flow, left))

    def _doubled(self, links: tuple[int, ...], flow: int, left: int):
        if self._scale(links, flow, 2.0) and left > 1:
            self._double(links, flow, left - 1)

    def _merge(self, source: Group, target: Group):
        now = self.env.now
        source.advance(now)
        target.advance(now)
        target.links = np.concatenate([target.links, source.links], axis=1)
        target.bits = np.concatenate([target.bits, source.bits])
        target.rate = np.concatenate([target.rate, source.rate])
        target.ids = np.concatenate([target.ids, source.ids])
        target.weight = np.concatenate([target.weight, source.weight])
        target.on_end |= source.on_end
        target.new += source.new
        target.ended += source.ended
        source.generation += 1
        for link in np.unique(source.links).tolist() + [i for new in source.new for i in new[0]]:
            if link != NO_LINK:
                self._group[link] = target
        self._dirty.pop(source, None)

    def _changed(self, group: Group):
        """Reshare once per instant: when a round of messages starts together, sharing
        after each start would reschedule the group again, n^2 work for n flows."""
        if not self._dirty:
            reshare = self.env.event()
            reshare.callbacks.append(self._reshare)
            reshare.succeed()
        self._dirty[group] = None

    def _wake(self, group: Group, generation: int, row: int, _event: simpy.Event):
        if generation == group.generation:
            # Its scheduled end: done, whatever rounding left in its bits.
            group.bits[row] = 0.0
            self._changed(group)

    def _reshare(self, _event: simpy.Event):
        """End the finished flows of the changed groups; share fairly among the rest."""
        groups, self._dirty = list(self._dirty), {}
        ended = []
        for group in groups:
            group.generation += 1
            ended += self._end_finished(group)
            group.add_new()
            for part in self._split(group):
                self._share(part)
        for on_end in ended:
            on_end()

    def _end_finished(self, group: Group) -> list[Callable[[], None]]:
        """Drop the group's flows that are done by now; their on_end callbacks."""
        group.advance(self.env.now)
        done = group.bits <= group.rate * _DUST
        if not done.any():
            return []
        rows = done.nonzero()[0]
        ids = group.ids[rows].tolist()
        on_end = [group.on_end.pop(i) for i in ids]
        if self._queued:  # flows with more queued go on with it
            for row, flow in zip(rows.tolist(), ids, strict=True):
                if queued := self._queued.get(flow):
                    group.bits[row], group.on_end[flow] = queued.popleft()
                    done[row] = False
                    if not queued:
                        del self._queued[flow]
            rows = done.nonzero()[0]
        for link in group.links[:, rows].ravel().tolist():
            if link != NO_LINK:
                self._users[link] -= 1
                if not self._users[link]:
                    self._group[link] = None
        group.ended += len(rows)
        if len(group):  # else the group is dropped whole
            group.take(~done)
        return on_end

    def _split(self, group: Group) -> list[Group]:
        """The group, or its connected parts once half its flows ended since the last check."""
        if 2 * group.ended < len(group) or len(group) < 2:
            return [group] if len(group) else []
        group.ended = 0
        labels = connected(group.links, len(self.capacity))
        first = labels == labels[0]
        if first.all():
            return [group]
        parts = [group]
        for label in np.unique(labels[~first]).tolist():
            rows = labels == label
            part = Group(self.width, group.t)
            part.links = group.links.compress(rows, axis=1)
            part.bits, part.rate, part.ids = group.bits[rows], group.rate[rows], group.ids[rows]
            part.weight = group.weight[rows]
            part.on_end = {i: group.on_end.pop(i) for i in part.ids.tolist()}
            for link in np.unique(part.links).tolist():
                if link != NO_LINK:
                    self._group[link] = part
            parts.append(part)
        group.take(first)
        return parts

    def _share(self, group: Group):
        """Set the group's max-min rates and schedule its earliest end."""
        weight = group.weight if self.weighted else None
        if self.acks:
            group.rate = self._with_acks(group.links, weight)
        else:
            group.rate = max_min(group.links, self.capacity, weight)
        left = group.bits / group.rate
        row = int(left.argmin())
        wake = self.env.timeout(float(left[row]))
        wake.callbacks.append(partial(self._wake, group, group.generation, row))

    def _with_acks(self, links: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
        """Rates where each link's data has what the ACKs leave of it (the module's note)."""
        out, back, n = links[: self.out], links[self.out :], len(self.capacity)
        # Rows back again, as links of their own (ids n..2n-1) holding ACKs alone, at a.
        rows = np.concatenate([out, back + n])
        coefficient = np.array([1.0] * self.out + [self.acks] * self.out)
        floor = self.capacity * 1e-9  # data never stops for good while ACKs settle
        rate = max_min(out, self.capacity, weight)
        for _ in range(_ACK_ROUNDS):
            acked = np.bincount(back.ravel(), np.tile(self.acks * rate, len(back)), minlength=n)
            acked[NO_LINK] = 0.0
            capacity = np.concatenate([np.maximum(self.capacity - acked, floor), self.capacity])
            new = max_min(rows, capacity, weight, coefficient)
            if np.all(np.abs(new - rate) <= 1e-12 * rate):
                return new
            rate = new
        return rate


_ACK_ROUNDS = 200  # a = 0.5 takes about 40 rounds to 1e-12; 2.5% about 8
