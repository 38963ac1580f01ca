"""Frames: a 4-byte big-endian length, then the body.

Peer frames carry a message's msgpack wire encoding (netsim/network/message.py), so the body
is exactly ``Message.size`` bytes, the size the simulation charges. Control frames between a
node process and the coordinator carry pickled tuples ``(op, *args)``: they hold the run's
settings (algorithm objects included), so the control port must only be reachable by the
hosts of the run (docs/real.md).
"""

from __future__ import annotations

import asyncio
import pickle
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


MAX_FRAME = 2**32 - 1


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


def write_parts(writer: asyncio.StreamWriter, parts: list) -> int:
    """One frame whose body is the pieces one after another (no copy of large pieces here);
    returns the body's length."""
    length = sum(memoryview(part).nbytes for part in parts)
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes exceeds the 4 GiB frame limit")
    writer.writelines([_LENGTH.pack(length), *parts])
    return length


async def receive(reader: asyncio.StreamReader) -> tuple | None:
    """The next control message, or None at the end of the stream."""
    body = await read(reader)
    return None if body is None else pickle.loads(body)


def send(writer: asyncio.StreamWriter, *message) -> None:
    write(writer, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
