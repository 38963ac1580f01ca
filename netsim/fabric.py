"""Fabric: the network of one simulation, carrying messages on the SimPy clock.

See network.py for the model (SimGrid-style flows, max-min or fifo sharing) and its settings;
this module is the runtime: flows, progressive filling, queues, loss and noise (byte counts
are kept by counters.py).
"""

import heapq
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import simpy
import torch

from netsim.counters import Counters
from netsim.message import Message
from netsim.network import Edge, Network

_DUST = 1e-9  # s: a flow this close to done is done, else rounding dust can stall the clock


class _Link:
    """One direction of a NIC or edge: a capacity shared by the flows crossing it."""

    __slots__ = ("capacity", "flows")

    def __init__(self, capacity: float):
        self.capacity = capacity
        self.flows: dict[_Flow, None] = {}  # an insertion-ordered set


class _Flow:
    """A maxmin transfer in progress: `bits` left at time `t`, moving at `rate` bits/s."""

    __slots__ = ("links", "bits", "t", "rate", "generation", "done")

    def __init__(self, links: tuple[_Link, ...], bits: float, t: float, done: simpy.Event):
        self.links, self.bits, self.t, self.done = links, bits, t, done
        self.rate = 0.0
        self.generation = 0  # bumped on every reschedule; older wake-ups are stale


class Fabric:
    """The network of one simulation, carrying messages on env's clock."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        roles: list[str],
        rng: np.random.Generator,
        on_done: Callable[[Message], None],
    ):
        self.env, self.rng, self.on_done = env, rng, on_done
        self.net = network.resolve(roles)
        self.counters = Counters(len(roles))
        self._queued_up = [0] * len(roles)  # bytes held against each NIC direction's queue
        self._queued_down = [0] * len(roles)
        if self.net.sharing == "fifo":
            self._up = [simpy.Resource(env) for _ in roles]
            self._down = [simpy.Resource(env) for _ in roles]
        else:
            self._dirty: dict[_Link, None] = {}  # links whose flows changed at this instant
            self._up = [_Link(nic.up) for nic in self.net.nics]
            self._down = [_Link(nic.down) for nic in self.net.nics]
            self._edges = {
                uv: _Link(edge.bandwidth)
                for (u, v), edge in self.net.edges.items()
                if edge.bandwidth is not None
                for uv in ((u, v), (v, u))
            }

    def transmit(self, msg: Message) -> simpy.Process:
        """Start carrying msg; the returned event succeeds with msg, after on_done(msg) ran."""
        msg.t_send = self.env.now
        edge = self.net.edge(msg.src, msg.dst)
        lost = msg.src != msg.dst and edge.loss > 0 and self.rng.random() < edge.loss
        # msg.size here, so that a payload that cannot be sent fails at the sender.
        return self.env.process(self._carry(msg, msg.size, edge, lost))

    def _carry(self, msg: Message, size: int, edge: Edge, lost: bool):
        src, dst = msg.src, msg.dst
        if src == dst:
            yield self.env.timeout(0)
            return self._finish(msg)
        if not self._enter(self._queued_up, src, size):
            return self._finish(msg, "queue")
        yield self.env.timeout(edge.latency)
        if self.net.sharing == "fifo":
            moved = yield from self._serialise(msg, size, edge)
        else:
            moved = yield from self._share(msg, size)
        self._queued_up[src] -= size
        if not moved:
            return self._finish(msg, "queue")
        self._queued_down[dst] -= size
        self.counters.count_sent(msg)
        if lost:
            return self._finish(msg, "loss")
        if edge.noise:
            self._add_noise(msg.payload, edge.noise)
        return self._finish(msg)

    def _enter(self, queued: list[int], node: int, size: int) -> bool:
        """Hold size bytes against node's queue, or say False when they would overflow it."""
        limit = self.net.nics[node].queue
        if limit is not None and queued[node] + size > limit:
            return False
        queued[node] += size
        return True

    def _finish(self, msg: Message, drop_reason: str = "") -> Message:
        msg.t_arrive = self.env.now
        msg.dropped, msg.drop_reason = bool(drop_reason), drop_reason
        if msg.src != msg.dst:
            self.counters.count_outcome(msg)
        self.on_done(msg)
        return msg

    def _serialise(self, msg: Message, size: int, edge: Edge):
        """fifo: hold the uplink, then the downlink, and send the whole message."""
        src, dst = msg.src, msg.dst
        with self._up[src].request() as turn:
            yield turn
            if not self._enter(self._queued_down, dst, size):
                return False
            # Deadlock-free: whoever holds a downlink already holds its uplink and is sending.
            with self._down[dst].request() as turn:
                yield turn
                rate = min(
                    self.net.nics[src].up, self.net.nics[dst].down, edge.bandwidth or math.inf
                )
                yield self.env.timeout(8 * size / rate)
        return True

    def _share(self, msg: Message, size: int):
        """maxmin: one flow through uplink, edge and downlink, sharing each max-min fairly."""
        if not self._enter(self._queued_down, msg.dst, size):
            return False
        edge = self._edges.get((msg.src, msg.dst))
        links = (self._up[msg.src], self._down[msg.dst]) + ((edge,) if edge else ())
        flow = _Flow(links, 8.0 * size, self.env.now, self.env.event())
        for link in links:
            link.flows[flow] = None
        self._changed(links)
        yield flow.done
        return True

    def _wake(self, flow: _Flow, generation: int, _event: simpy.Event):
        if generation == flow.generation:
            # Its scheduled end: done, whatever rounding left in flow.bits.
            flow.bits, flow.t = 0.0, self.env.now
            self._changed(flow.links)

    def _changed(self, links: tuple[_Link, ...]):
        """Reshare once per instant: when a round of messages starts together, sharing
        after each start would reschedule every flow again, n^2 wake-ups for n flows."""
        if not self._dirty:
            reshare = self.env.event()
            reshare.callbacks.append(self._reshare)
            reshare.succeed()
        self._dirty.update(dict.fromkeys(links))

    def _reshare(self, _event: simpy.Event):
        """End the finished flows connected to the changed links; share fairly among the rest."""
        now = self.env.now
        component, flows = _component(list(self._dirty))
        self._dirty = {}
        for flow in flows:
            flow.bits -= flow.rate * (now - flow.t)
            flow.t = now
            if flow.rate and flow.bits <= flow.rate * _DUST:
                for link in flow.links:
                    del link.flows[flow]
                flow.generation += 1
                flow.done.succeed()
        # Only a changed rate moves a flow's end; the rest keep their pending wake-up.
        for flow, rate in _max_min(component).items():
            if rate != flow.rate:
                flow.rate = rate
                flow.generation += 1
                wake = self.env.timeout(flow.bits / rate)
                wake.callbacks.append(partial(self._wake, flow, flow.generation))

    def _add_noise(self, value, sigma: float):
        """Add N(0, sigma^2) in place to every floating tensor in value (a private snapshot)."""
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            seed = int(self.rng.integers(2**63))
            generator = torch.Generator(device=value.device).manual_seed(seed)
            noise = torch.randn(
                value.shape, generator=generator, dtype=value.dtype, device=value.device
            )
            value.add_(noise, alpha=sigma)
        elif isinstance(value, dict):
            for item in value.values():
                self._add_noise(item, sigma)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._add_noise(item, sigma)


def _component(links: list[_Link]) -> tuple[list[_Link], list[_Flow]]:
    """The links and flows reachable from links through flows that share a link."""
    seen, flows, stack = dict.fromkeys(links), {}, list(links)
    while stack:
        for flow in stack.pop().flows:
            if flow not in flows:
                flows[flow] = None
                for link in flow.links:
                    if link not in seen:
                        seen[link] = None
                        stack.append(link)
    return list(seen), list(flows)


def _max_min(links: list[_Link]) -> dict[_Flow, float]:
    """Max-min fair rates of the flows on links, by progressive filling.

    All rates rise together; the link whose fair share spare/unfrozen is smallest fills
    first and freezes its flows at that share. A heap with lazy deletion of outdated shares
    makes this O((flows + links) log links) instead of a rescan of every link per freeze.
    """
    spare = {link: link.capacity for link in links if link.flows}
    count = {link: len(link.flows) for link in spare}
    order = {link: i for i, link in enumerate(spare)}  # tie-break: links do not compare
    heap = [(spare[link] / count[link], order[link], link) for link in spare]
    heapq.heapify(heap)
    rates = {}
    while heap:
        share, _, link = heapq.heappop(heap)
        if not count[link] or share != spare[link] / count[link]:
            continue
        for flow in link.flows:
            if flow not in rates:
                rates[flow] = share
                for other in flow.links:
                    spare[other] -= share
                    count[other] -= 1
                    if count[other]:
                        heapq.heappush(heap, (spare[other] / count[other], order[other], other))
    return rates
