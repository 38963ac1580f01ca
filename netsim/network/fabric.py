"""Fabric: the network of one simulation, carrying messages on the SimPy clock.

See network.py for the model (SimGrid-style flows, max-min or fifo sharing) and its settings;
this module is the runtime: a message's way through latency, queues and links, loss and noise.
Max-min sharing is maxmin.py; byte counts are kept by counters.py.

A message is not a SimPy process but a few callbacks on plain events, since the fabric of a
large run carries hundreds of thousands of them. Under maxmin its latency is one timeout and
the transfer a flow, whose end maxmin.py schedules. Under fifo each NIC direction is a flag
(held or not) and a queue of the messages waiting for it; a message makes two hops, its
latency and its transfer, and the hops due at one instant share one timeout: they run in the
order they were scheduled, where the first of them would have run (so at an instant shared
with other events, the later ones run ahead of events scheduled after that first one).
"""

import math
from collections import deque
from collections.abc import Callable
from functools import partial

import numpy as np
import simpy

from netsim.network.counters import Counters
from netsim.network.maxmin import NO_LINK, MaxMin
from netsim.network.message import Message
from netsim.network.noise import noisy
from netsim.network.outages import Outages
from netsim.network.spec import RAMP_STEPS, Edge, Network


class _Transfer(simpy.Event):
    """A message on its way, with what was settled at send (its size, edge and fate), and
    the event of its end: it succeeds with the message, after on_done(message) ran."""

    hop: Callable[["_Transfer"], None]  # fifo: its next hop, once scheduled

    def __init__(self, env: simpy.Environment, msg: Message, size: int, edge: Edge, lost: bool):
        # Event.__init__ inlined, as simpy.Timeout does, since each message makes one.
        self.env, self.callbacks, self._value = env, [], simpy.events.PENDING
        self.msg, self.src, self.dst, self.size = msg, msg.src, msg.dst, size
        self.edge, self.lost = edge, lost


class Fabric:
    """The network of one simulation, carrying messages on env's clock."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        roles: list[str],
        rng: np.random.Generator,
        on_done: Callable[[Message], None],
        faults: Outages | None = None,
    ):
        self.env, self.rng, self.on_done, self.faults = env, rng, on_done, faults
        self.net = network.resolve(roles)
        self.counters = Counters(len(roles))
        # messages on their way, in send order: still there when the run ends, they are
        # written as sent and not delivered (in_flight)
        self._flying: dict[_Transfer, None] = {}
        n = len(roles)
        self._edges = {
            uv: edge for (u, v), edge in self.net.edges.items() for uv in ((u, v), (v, u))
        }
        self._queue = [nic.queue for nic in self.net.nics]  # bytes per direction, or None
        self._queued_up = [0] * n  # bytes held against each NIC direction's queue
        self._queued_down = [0] * n
        self._fifo = self.net.sharing == "fifo"
        # Hops bound once, not once per message (an object more in flight for each).
        if self._fifo:
            # Each NIC direction: whether a message holds it, and the messages waiting for it.
            self._up_busy, self._down_busy = [False] * n, [False] * n
            self._up_wait = [deque() for _ in roles]
            self._down_wait = [deque() for _ in roles]
            self._up = [nic.up for nic in self.net.nics]
            self._down = [nic.down for nic in self.net.nics]
            # Transfers whose next hop is due, by the instant it is due at, in order.
            self._due: dict[float, list[_Transfer]] = {}
            self._arrive, self._sent = self._fifo_arrive, self._fifo_sent
            return
        self._arrive = self._share
        # Link ids: NO_LINK, every uplink, every downlink, then each direction of an edge.
        nics = self.net.nics
        capacities = [math.inf] + [nic.up for nic in nics] + [nic.down for nic in nics]
        self._edge_link = {}
        for uv, edge in self._edges.items():
            if edge.bandwidth is not None:
                self._edge_link[uv] = len(capacities)
                capacities.append(edge.bandwidth)
        width, sigma = 3 if self._edge_link else 2, self.net.unfairness
        self._links = MaxMin(
            env,
            capacities,
            width,
            weighted=sigma > 0,
            ramp=(self.net.ramp, RAMP_STEPS),
            acks=self.net.acks,  # a flow's links back follow its links out
            together=self.net.ramp if self.net.unfairness_among == "together" else None,
        )
        self._edge_width = width == 3
        # connections="pair": (src, dst) -> [its flow's id, messages on it not through yet]
        self._pairs: dict[tuple[int, int], list[int]] | None = (
            {} if self.net.connections == "pair" else None
        )
        if sigma > 0:  # a stream of its own: loss and noise draw what they draw without it
            self._weights = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])

    def transmit(self, msg: Message, fault: str = "") -> simpy.Event:
        """Start carrying msg; the returned event succeeds with msg, after on_done(msg) ran.
        ``fault``: why msg is dropped at its sender anyway (e.g. "offline")."""
        env = self.env
        msg.t_send = env.now
        src, dst = msg.src, msg.dst
        edge = self._edges.get((src, dst), self.net.default) if self._edges else self.net.default
        lost = src != dst and edge.loss > 0 and self.rng.random() < edge.loss
        if not fault and self.faults is not None and src != dst:
            fault = self.faults.at_send(src, dst)
            lost = lost or (not fault and self.faults.bursts and self.faults.lost())
        # msg.size here, so that a payload that cannot be sent fails at the sender.
        transfer = _Transfer(env, msg, msg.size, edge, lost)
        self._flying[transfer] = None
        if src == dst:
            env.timeout(0).callbacks.append(lambda _: self._finish(transfer))
        elif fault:  # never enters the network
            env.timeout(0).callbacks.append(lambda _: self._finish(transfer, fault))
        elif not self._enter(self._queued_up, src, transfer.size):
            env.timeout(0).callbacks.append(lambda _: self._finish(transfer, "queue"))
        elif self._fifo:
            self._after(edge.latency, self._arrive, transfer)
        else:
            env.timeout(edge.latency, transfer).callbacks.append(self._arrive)
        return transfer

    def in_flight(self) -> list[Message]:
        """The messages sent and neither delivered nor dropped yet, oldest first."""
        return [transfer.msg for transfer in self._flying]

    def _enter(self, queued: list[int], node: int, size: int) -> bool:
        """Hold size bytes against node's queue, or say False when they would overflow it."""
        limit = self._queue[node]
        if limit is not None and queued[node] + size > limit:
            return False
        queued[node] += size
        return True

    def _share(self, latency: simpy.Timeout):
        """maxmin, after latency: one flow through uplink, edge and downlink."""
        transfer = latency.value
        src, dst = transfer.src, transfer.dst
        if not self._enter(self._queued_down, dst, transfer.size):
            self._queued_up[src] -= transfer.size
            return self._finish(transfer, "queue")
        moved = partial(self._moved, transfer)
        if self._pairs is not None and (pair := self._pairs.get((src, dst))):
            pair[1] += 1  # behind the messages already on the pair's connection
            return self._links.more(pair[0], 8.0 * transfer.size, moved)
        n = len(self._queued_up)
        links = (1 + src, 1 + n + dst)
        if self._edge_width:
            links += (self._edge_link.get((src, dst), NO_LINK),)
        if self.net.acks:  # the receiver's uplink, the sender's downlink, the edge back
            links += (1 + dst, 1 + n + src)
            if self._edge_width:
                links += (self._edge_link.get((dst, src), NO_LINK),)
        weight = self._weights.lognormal(0.0, self.net.unfairness) if self.net.unfairness else 1.0
        flow = self._links.start(links, 8.0 * transfer.size, moved, weight)
        if self._pairs is not None:
            self._pairs[src, dst] = [flow, 1]

    def _moved(self, transfer: _Transfer):
        if self._pairs is not None:
            pair = self._pairs[transfer.src, transfer.dst]
            pair[1] -= 1
            if not pair[1]:
                del self._pairs[transfer.src, transfer.dst]
        self._queued_up[transfer.src] -= transfer.size
        self._queued_down[transfer.dst] -= transfer.size
        self._delivered(transfer)

    def _after(self, delay: float, hop: Callable[[_Transfer], None], transfer: _Transfer):
        """fifo: hop(transfer) in delay seconds, in one timeout with the other hops then."""
        at = self.env.now + delay  # as SimPy reckons the timeout's time, so equal floats
        due = self._due.get(at)
        if due is None:
            due = self._due[at] = []
            self.env.timeout(delay).callbacks.append(self._run_due)
        transfer.hop = hop
        due.append(transfer)

    def _run_due(self, _timeout: simpy.Timeout):
        # A hop due now that this one schedules (no latency) gets a timeout of its own.
        for transfer in self._due.pop(self.env.now):
            transfer.hop(transfer)

    def _fifo_arrive(self, transfer: _Transfer):
        """fifo, after latency: take the uplink, or wait for it in turn. Holding it, wait for
        the downlink in turn, or be dropped at once when the downlink's queue is full."""
        src, dst, size = transfer.src, transfer.dst, transfer.size
        if self._up_busy[src]:
            self._up_wait[src].append(transfer)
        elif not self._enter(self._queued_down, dst, size):
            self._queued_up[src] -= size
            self._finish(transfer, "queue")
        else:
            self._up_busy[src] = True
            # Deadlock-free: whoever holds a downlink already holds its uplink and sends.
            if self._down_busy[dst]:
                self._down_wait[dst].append(transfer)
            else:
                self._fifo_send(transfer)

    def _fifo_send(self, transfer: _Transfer):
        """transfer holds both its links and sends all of itself at the smallest capacity on
        its path."""
        src, dst = transfer.src, transfer.dst
        self._down_busy[dst] = True
        rate = min(self._up[src], self._down[dst], transfer.edge.bandwidth or math.inf)
        self._after(8 * transfer.size / rate, self._sent, transfer)

    def _fifo_sent(self, transfer: _Transfer):
        src, dst = transfer.src, transfer.dst
        self._queued_up[src] -= transfer.size
        self._queued_down[dst] -= transfer.size
        # The downlink to the next message waiting for it, then the uplink likewise, past
        # those that find their downlink's queue full (dropped as they get the uplink).
        if self._down_wait[dst]:
            self._fifo_send(self._down_wait[dst].popleft())
        else:
            self._down_busy[dst] = False
        self._up_busy[src] = False
        wait = self._up_wait[src]
        while wait and not self._up_busy[src]:
            self._fifo_arrive(wait.popleft())
        self._delivered(transfer)

    def _delivered(self, transfer: _Transfer):
        """The last bit is through: lose it, or add noise to it."""
        if transfer.lost:
            return self._finish(transfer, "loss")
        if transfer.edge.noise:
            msg = transfer.msg
            msg.payload = noisy(msg.payload, transfer.edge.noise, self.rng)
        self._finish(transfer)

    def _finish(self, transfer: _Transfer, drop_reason: str = ""):
        if not drop_reason and self.faults is not None and self.faults.offline(transfer.dst):
            drop_reason = "offline"  # its receiver went offline while it was on its way
        del self._flying[transfer]
        msg = transfer.msg
        msg.t_arrive = self.env.now
        msg.dropped, msg.drop_reason = bool(drop_reason), drop_reason
        if transfer.src != transfer.dst:
            self.counters.count(msg)
        self.on_done(msg)
        if transfer.callbacks:
            transfer.succeed(msg)
        else:
            # Nobody waits on it yet: mark it processed here, as SimPy would after a trip
            # through its event queue (most sends are never waited on), so that a later wait
            # resumes at once with msg.
            transfer._ok, transfer._value, transfer.callbacks = True, msg, None
