"""Fabric: the network of one simulation, carrying messages on the SimPy clock.

See network.py for the model (SimGrid-style flows, max-min or fifo sharing) and its settings;
this module is the runtime: a message's way through latency, queues and links, loss and noise.
Max-min sharing is maxmin.py; byte counts are kept by counters.py.

A message is not a SimPy process but a few callbacks on plain events, since the fabric of a
large run carries hundreds of thousands of them: its latency is one timeout; under fifo each
NIC direction is a flag (held or not) and a queue of the messages waiting for it, and the
transfer is one timeout; under maxmin the transfer is a flow, whose end maxmin.py schedules.
"""

import math
from collections import deque
from collections.abc import Callable
from functools import partial

import numpy as np
import simpy
import torch

from netsim.counters import Counters
from netsim.maxmin import NO_LINK, MaxMin
from netsim.message import Message
from netsim.network import Edge, Network


class _Transfer(simpy.Event):
    """A message on its way, with what was settled at send (its size, edge and fate), and
    the event of its end: it succeeds with the message, after on_done(message) ran."""

    def __init__(self, env: simpy.Environment, msg: Message, size: int, edge: Edge, lost: bool):
        super().__init__(env)
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
    ):
        self.env, self.rng, self.on_done = env, rng, on_done
        self.net = network.resolve(roles)
        self.counters = Counters(len(roles))
        n = len(roles)
        self._edges = {
            uv: edge for (u, v), edge in self.net.edges.items() for uv in ((u, v), (v, u))
        }
        self._queued_up = [0] * n  # bytes held against each NIC direction's queue
        self._queued_down = [0] * n
        if self.net.sharing == "fifo":
            # Callbacks bound once, not once per message (an object more in flight for each).
            self._arrive, self._sent = self._fifo_arrive, self._fifo_sent
            # Each NIC direction: whether a message holds it, and the messages waiting for it.
            self._up_busy, self._down_busy = [False] * n, [False] * n
            self._up_wait = [deque() for _ in roles]
            self._down_wait = [deque() for _ in roles]
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
        self._links = MaxMin(env, capacities, width=3 if self._edge_link else 2)

    def transmit(self, msg: Message) -> simpy.Event:
        """Start carrying msg; the returned event succeeds with msg, after on_done(msg) ran."""
        env = self.env
        msg.t_send = env.now
        src, dst = msg.src, msg.dst
        edge = self._edges.get((src, dst), self.net.default)
        lost = src != dst and edge.loss > 0 and self.rng.random() < edge.loss
        # msg.size here, so that a payload that cannot be sent fails at the sender.
        transfer = _Transfer(env, msg, msg.size, edge, lost)
        if src == dst:
            env.timeout(0).callbacks.append(lambda _: self._finish(transfer))
        elif not self._enter(self._queued_up, src, transfer.size):
            now = env.event()
            now.callbacks.append(lambda _: self._finish(transfer, "queue"))
            now.succeed()
        else:
            env.timeout(edge.latency, transfer).callbacks.append(self._arrive)
        return transfer

    def _enter(self, queued: list[int], node: int, size: int) -> bool:
        """Hold size bytes against node's queue, or say False when they would overflow it."""
        limit = self.net.nics[node].queue
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
        links = (1 + src, 1 + len(self._queued_up) + dst)
        if self._links.width == 3:
            links += (self._edge_link.get((src, dst), NO_LINK),)
        self._links.start(links, 8.0 * transfer.size, partial(self._moved, transfer))

    def _moved(self, transfer: _Transfer):
        self._queued_up[transfer.src] -= transfer.size
        self._queued_down[transfer.dst] -= transfer.size
        self._delivered(transfer)

    def _fifo_arrive(self, latency: simpy.Timeout):
        """fifo, after latency: wait for the uplink in turn."""
        transfer = latency.value
        self._up_wait[transfer.src].append(transfer)
        if not self._up_busy[transfer.src]:
            self._fifo_next_up(transfer.src)

    def _fifo_next_up(self, src: int):
        """Hand src's uplink to the next message waiting, past those that find their
        downlink's queue full (dropped as they get the uplink)."""
        wait = self._up_wait[src]
        while wait:
            transfer = wait.popleft()
            dst = transfer.dst
            if self._enter(self._queued_down, dst, transfer.size):
                self._up_busy[src] = True
                # Deadlock-free: whoever holds a downlink already holds its uplink and sends.
                self._down_wait[dst].append(transfer)
                if not self._down_busy[dst]:
                    self._fifo_next_down(dst)
                return
            self._queued_up[src] -= transfer.size
            self._finish(transfer, "queue")
        self._up_busy[src] = False

    def _fifo_next_down(self, dst: int):
        """Hand dst's downlink to the next message waiting, which then sends all of itself
        at the smallest capacity on its path."""
        wait = self._down_wait[dst]
        self._down_busy[dst] = bool(wait)
        if wait:
            transfer = wait.popleft()
            nics = self.net.nics
            rate = min(nics[transfer.src].up, nics[dst].down, transfer.edge.bandwidth or math.inf)
            self.env.timeout(8 * transfer.size / rate, transfer).callbacks.append(self._sent)

    def _fifo_sent(self, sent: simpy.Timeout):
        transfer = sent.value
        src, dst = transfer.src, transfer.dst
        self._queued_up[src] -= transfer.size
        self._queued_down[dst] -= transfer.size
        self._fifo_next_down(dst)
        self._fifo_next_up(src)
        self._delivered(transfer)

    def _delivered(self, transfer: _Transfer):
        """The last bit is through: lose it, or add noise to it."""
        if transfer.lost:
            return self._finish(transfer, "loss")
        if transfer.edge.noise:
            msg = transfer.msg
            msg.payload = self._noisy(msg.payload, transfer.edge.noise)
        self._finish(transfer)

    def _finish(self, transfer: _Transfer, drop_reason: str = ""):
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

    def _noisy(self, value, sigma: float):
        """value with N(0, sigma^2) added to every floating tensor in it, out of place.

        One snapshot can ride in several messages (a send burst shares it), so noise on one
        edge must never reach the copy another recipient gets.
        """
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            seed = int(self.rng.integers(2**63))
            generator = torch.Generator(device=value.device).manual_seed(seed)
            noise = torch.randn(
                value.shape, generator=generator, dtype=value.dtype, device=value.device
            )
            return value.add(noise, alpha=sigma)
        if isinstance(value, dict):
            return {key: self._noisy(item, sigma) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._noisy(item, sigma) for item in value)
        return value
