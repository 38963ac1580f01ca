"""A node's links on real TCP: one listening socket, one lazy outgoing connection per peer.

``send`` never blocks the caller. A message first meets the fault plan (outages.py: dropped
at the sender, no bytes on the wire, when its receiver is offline, its link down or a
partition between them, "offline", "link down", "partition"; or lost to its edge's loss or a
loss burst, "loss") and its edge's noise, is encoded once (its frame body is exactly
``Message.size`` bytes; tensors are written from their own memory), then waits in the link
to its destination until its edge's latency has passed (the OS adds nothing on loopback or
in a namespace without netem) and is written.
Frames to one peer keep their order, so the k-th frame a node receives from a peer is the
k-th frame that peer wrote to it: the pair (sender, receiver, k) names a message in both
processes' reports, and the coordinator joins them into messages.csv rows. A peer that
cannot be reached, or whose connection breaks, loses the message, as the network would. A
frame that reaches a node while it is offline is dropped there ("offline").
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import numpy as np

from netsim.network.message import Message, decode, encode_parts
from netsim.network.noise import noisy
from netsim.network.spec import ResolvedNetwork
from netsim.real import frames
from netsim.real.outages import Schedule


class Transport:
    def __init__(
        self,
        me: int,
        network: ResolvedNetwork,
        rng: np.random.Generator,
        now: Callable[[], float],
        deliver: Callable[[Message], None],
        report: Callable[..., None],
    ):
        self.me, self.network, self.rng, self.now = me, network, rng, now
        self.addresses: dict[int, tuple[str, int]] = {}
        self._deliver, self._report = deliver, report
        self._links: dict[int, asyncio.Queue] = {}
        self._pumps: list[asyncio.Task] = []
        self._written: Counter[int] = Counter()  # frames handed to each peer's link
        self._read: Counter[int] = Counter()  # frames received from each peer
        self._server: asyncio.base_events.Server | None = None
        self.faults: Schedule | None = None  # the run's fault plan, set by the node process
        self.offline: Callable[[], bool] = lambda: False  # whether this node is offline now

    async def listen(self, host: str, port: int) -> int:
        """Starts accepting peers' frames; returns the port (chosen by the OS for port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Frames(self._arrived), host, port)
        return self._server.sockets[0].getsockname()[1]

    def _arrived(self, body: bytearray) -> None:
        t_arrive = self.now()  # the last byte is in: decoding is the receiver's work
        msg = decode(body)
        msg.t_arrive = t_arrive
        k = self._read[msg.src]
        self._read[msg.src] += 1
        if self.offline():
            self._report("arrived", msg.src, self.me, k, t_arrive, "offline")
            return
        self._report("arrived", msg.src, self.me, k, t_arrive)
        self._deliver(msg)

    def send(self, msg: Message, fault: str = "") -> asyncio.Future:
        """Starts msg on its way; the future is done, with msg, once it is written or lost
        (then msg.dropped and msg.drop_reason say why). ``fault``: why msg is dropped at its
        sender anyway (e.g. "offline")."""
        done = asyncio.get_running_loop().create_future()
        msg.t_send = self.now()
        edge = self.network.edge(msg.src, msg.dst)
        if reason := self._dropped(msg, edge) if not fault else fault:
            msg.dropped, msg.drop_reason = True, reason
            self._report(
                "sent",
                msg.src,
                msg.dst,
                msg.kind,
                msg.size,
                msg.data_bytes,
                msg.t_send,
                None,
                reason,
            )
            done.set_result(msg)
            return done
        if edge.noise and msg.src != msg.dst:
            msg.payload = noisy(msg.payload, edge.noise, self.rng)
        parts = encode_parts(msg)  # views of the payload's tensors: nothing large is copied
        size = sum(memoryview(part).nbytes for part in parts)
        k = self._written[msg.dst]
        self._written[msg.dst] += 1
        self._report("sent", msg.src, msg.dst, msg.kind, size, msg.data_bytes, msg.t_send, k, "")
        link = self._links.get(msg.dst)
        if link is None:
            link = self._links[msg.dst] = asyncio.Queue()
            self._pumps.append(asyncio.create_task(self._pump(msg.dst, link)))
        due = asyncio.get_running_loop().time() + (0.0 if msg.src == msg.dst else edge.latency)
        link.put_nowait((due, parts, k, msg, done))
        return done

    def _dropped(self, msg: Message, edge) -> str:
        """Why msg is dropped at its sender, or "": as the simulation's fabric decides, the
        edge's loss drawn first, then the faults (a fault's reason before the loss's)."""
        if msg.src == msg.dst:
            return ""
        lost = edge.loss > 0 and self.rng.random() < edge.loss
        if self.faults is None:
            return "loss" if lost else ""
        reason = self.faults.at_send(msg.src, msg.dst, msg.t_send)
        if not reason and (lost or self.faults.lost(msg.t_send)):
            reason = "loss"
        return reason

    async def _pump(self, dst: int, link: asyncio.Queue) -> None:
        """Writes dst's frames in order, each once its latency has passed."""
        loop = asyncio.get_running_loop()
        sock = None
        try:
            while True:
                due, parts, k, msg, done = await link.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                try:
                    if sock is None:
                        sock = await frames.connect(*self.addresses[dst])
                    await frames.send_parts(sock, parts)
                except (OSError, KeyError):  # gone, refused or broken: the message is lost
                    msg.dropped, msg.drop_reason = True, "unreachable"
                    self._report("lost", self.me, dst, k, "unreachable")
                    if sock is not None:
                        sock.close()
                    sock = None
                done.set_result(msg)
        finally:
            if sock is not None:
                sock.close()

    async def close(self) -> None:
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            for frames_in in _Frames.open:
                frames_in.transport.close()


class _Frames(asyncio.BufferedProtocol):
    """Peer frames read straight from the socket into a buffer of each frame's own size: no
    stream buffer in between, and no copy of a large payload before it is decoded."""

    open: set[_Frames] = set()

    def __init__(self, on_frame: Callable[[bytearray], None]):
        self._on_frame = on_frame
        self._head = bytearray(4)
        self._body: bytearray | None = None
        self._filled = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        _Frames.open.add(self)

    def connection_lost(self, exc) -> None:
        _Frames.open.discard(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._head if self._body is None else self._body)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        if self._body is None:
            if self._filled < len(self._head):
                return
            self._body, self._filled = bytearray(int.from_bytes(self._head, "big")), 0
        if self._filled == len(self._body):
            body, self._body, self._filled = self._body, None, 0
            self._on_frame(body)
