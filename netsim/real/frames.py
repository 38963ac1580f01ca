"""Frames: a 4-byte big-endian length, then the body.

Peer frames carry a message's msgpack wire encoding (netsim/network/message.py), so the body
is exactly ``Message.size`` bytes, the size the simulation charges. Control frames between a
node process and the coordinator carry pickled tuples ``(op, *args)``: they hold the run's
settings (algorithm objects included), so the control port must only be reachable by the
hosts of the run (docs/real.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import pickle
import socket
import struct
import time

_LENGTH = struct.Struct("!I")


class Clock:
    """Seconds since a common t0: t0 is a wall-clock instant (comparable across hosts), and
    intervals are measured on the monotonic clock (never stepped by NTP)."""

    def __init__(self, t0: float):
        self.t0 = t0
        self._offset = time.time() - time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() + self._offset - self.t0


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_HEAP_UP_TO = 2**30  # bytes


def reuse_large_buffers() -> bool:
    """Has glibc's malloc take blocks up to 1 GiB from the heap and keep what is freed there,
    so that a message's receive buffer and send snapshot reuse the memory of the ones before.
    Otherwise glibc maps every block over 32 MB afresh, and the first write to each of its
    pages faults: among four node processes on two cores an 80 MB message then moved at
    0.85-0.89 of a 1 Gbit/s NIC's rate, and at 0.93-0.95 with this (TCP's framing allows 0.956;
    docs/fidelity.md). A node process keeps its peak memory. False where the C library is not
    glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _HEAP_UP_TO) and mallopt(_M_TRIM_THRESHOLD, _HEAP_UP_TO))


MAX_FRAME = 2**32 - 1
_JOIN_BELOW = 64 * 1024  # bytes: pieces smaller than this are joined before a write


async def read(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame's body, or None when the other side has closed the stream."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        return await reader.readexactly(_LENGTH.unpack(head)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def write(writer: asyncio.StreamWriter, body: bytes) -> None:
    if len(body) > MAX_FRAME:
        raise ValueError(f"a frame of {len(body)} bytes exceeds the 4 GiB frame limit")
    writer.write(_LENGTH.pack(len(body)) + body)


async def connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to (host, port), Nagle off (as asyncio's streams).
    A numeric address is used as it is: a name lookup runs on a thread (milliseconds)."""
    loop = asyncio.get_running_loop()
    try:
        ip = ipaddress.ip_address(host)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        found = [(family, socket.SOCK_STREAM, 0, "", (host, port))]
    except ValueError:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"cannot resolve {host}")
    for family, kind, proto, _, address in found:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as err:
            sock.close()
            error = err
    raise error


async def send_parts(sock: socket.socket, parts: list) -> int:
    """Writes one frame whose body is the pieces one after another; returns the body's length.

    Large pieces go to the socket from their own memory, never copied in Python (asyncio's
    stream writer of Python 3.11 joins what it is given, then copies what the socket does not
    take at once: two copies of every payload); small ones are joined, so that a frame's
    headers do not leave as packets of their own."""
    length = sum(memoryview(part).nbytes for part in parts)
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes exceeds the 4 GiB frame limit")
    loop = asyncio.get_running_loop()
    small: list = [_LENGTH.pack(length)]
    for part in parts:
        if memoryview(part).nbytes < _JOIN_BELOW:
            small.append(part)
            continue
        if small:
            await loop.sock_sendall(sock, b"".join(small))
            small = []
        await loop.sock_sendall(sock, part)
    if small:
        await loop.sock_sendall(sock, b"".join(small))
    return length


async def receive(reader: asyncio.StreamReader) -> tuple | None:
    """The next control message, or None at the end of the stream."""
    body = await read(reader)
    return None if body is None else pickle.loads(body)


def send(writer: asyncio.StreamWriter, *message) -> None:
    write(writer, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


async def finish(writer: asyncio.StreamWriter) -> None:
    """Sends what is still buffered on writer, then closes it. ``drain`` alone waits only
    until the buffer is under its high-water mark (64 kB), and the event loop that a process
    ends with asyncio.run() closes without sending the rest: a node's last report, its model
    (80 MB at VGG-19's size), lost its tail now and then, and the coordinator waited for it
    in vain ("exited with status 0 without reporting"). Waiting for the connection to close
    waits until every byte is with the kernel."""
    try:
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass  # the coordinator went away: there is no one to tell
