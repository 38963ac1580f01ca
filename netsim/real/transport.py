"""A node's links on real TCP: one listening socket, one lazy outgoing connection per peer.

``send`` never blocks the caller. A message first meets its edge's loss (dropped at the
sender, no bytes on the wire) and noise, is encoded once (its frame body is exactly
``Message.size`` bytes; tensors are written from their own memory), then waits in the link
to its destination until its edge's latency has passed (the OS adds nothing on loopback or
in a namespace without netem) and is written.
Frames to one peer keep their order, so the k-th frame a node receives from a peer is the
k-th frame that peer wrote to it: the pair (sender, receiver, k) names a message in both
processes' reports, and the coordinator joins them into messages.csv rows. A peer that
cannot be reached, or whose connection breaks, loses the message, as the network would.
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

_READ_LIMIT = 2**23  # bytes


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

    async def listen(self, host: str, port: int) -> int:
        """Starts accepting peers' frames; returns the port (chosen by the OS for port 0)."""
        # a large read buffer: a frame of many MB arrives without pausing the socket every 128 kB
        self._server = await asyncio.start_server(self._serve, host, port, limit=_READ_LIMIT)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (body := await frames.read(reader)) is not None:
                msg = decode(body)
                msg.t_arrive = self.now()
                k = self._read[msg.src]
                self._read[msg.src] += 1
                self._report("arrived", msg.src, self.me, k, msg.t_arrive)
                self._deliver(msg)
        except asyncio.CancelledError:  # the run is over: the peer's stream is let go
            pass
        finally:
            writer.close()

    def send(self, msg: Message) -> asyncio.Future:
        """Starts msg on its way; the future is done once it is written or lost."""
        done = asyncio.get_running_loop().create_future()
        msg.t_send = self.now()
        edge = self.network.edge(msg.src, msg.dst)
        if msg.src != msg.dst and edge.loss > 0 and self.rng.random() < edge.loss:
            self._report(
                "sent",
                msg.src,
                msg.dst,
                msg.kind,
                msg.size,
                msg.data_bytes,
                msg.t_send,
                None,
                "loss",
            )
            done.set_result(None)
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
        link.put_nowait((due, parts, k, done))
        return done

    async def _pump(self, dst: int, link: asyncio.Queue) -> None:
        """Writes dst's frames in order, each once its latency has passed."""
        loop = asyncio.get_running_loop()
        writer = None
        while True:
            due, parts, k, done = await link.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            try:
                if writer is None:
                    _, writer = await asyncio.open_connection(*self.addresses[dst])
                frames.write_parts(writer, parts)
                await writer.drain()
            except (OSError, KeyError):  # gone, refused or broken: the message is lost
                self._report("lost", self.me, dst, k, "unreachable")
                if writer is not None:
                    writer.close()
                writer = None
            done.set_result(None)

    async def close(self) -> None:
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            self._server.close()
