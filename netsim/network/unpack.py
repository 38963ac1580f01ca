"""Reading a message's msgpack wire bytes with one copy of each tensor's data.

msgpack's own unpacker copies an extension's data into a new bytes object before its hook
sees it, and a writable tensor needs a second copy of that (64 MB of float32 took about
120 ms to decode that way, three copies, on the 2-core test machine). For large frames,
``unpack`` walks the msgpack encoding itself and copies each tensor's or array's data once,
from the received frame into fresh (aligned, writable) memory. Small frames, where copies
cost nothing, go to msgpack's C unpacker; both give the same values (a test compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import torch

TENSOR, ARRAY = 1, 2  # the extension codes (netsim/network/message.py)
WALK_ABOVE = 256 * 1024  # bytes; smaller frames go to msgpack's unpacker


class WireError(ValueError):
    """Bytes that are not a message's wire encoding."""


def unpack(wire) -> Any:
    """The object encoded in wire (bytes, bytearray or memoryview), tensors and arrays
    fresh and writable."""
    if len(wire) <= WALK_ABOVE:
        try:
            return msgpack.unpackb(wire, ext_hook=_from_ext, strict_map_key=False)
        except WireError:
            raise
        except ValueError as err:  # msgpack's: extra data, bad format, incomplete input
            raise WireError(f"not a message's wire bytes: {err}") from None
    view = memoryview(wire).cast("B")
    value, end = _Walk(view).value(0)
    if end != len(view):
        raise WireError(f"not a message's wire bytes: {len(view) - end} bytes after the end")
    return value


def _from_ext(code: int, data) -> torch.Tensor | np.ndarray:
    """The tensor or array in an extension's data: [dtype, shape] packed, then the raw bytes."""
    head = msgpack.Unpacker()
    head.feed(memoryview(data)[:64])  # the header is short: never feed the data itself
    try:
        dtype, shape = head.unpack()
    except msgpack.OutOfData:
        head = msgpack.Unpacker()
        head.feed(data)
        dtype, shape = head.unpack()
    raw = np.frombuffer(memoryview(data)[head.tell() :], dtype=np.uint8)
    if code == ARRAY:
        out = np.empty(shape, dtype=np.dtype(dtype))
        out.reshape(-1).view(np.uint8)[:] = raw
        return out
    torch_dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else None
    if code != TENSOR or not isinstance(torch_dtype, torch.dtype):
        raise WireError(f"unknown extension {code} ({dtype!r}); sender and receiver differ")
    out = torch.empty(shape, dtype=torch_dtype)
    if raw.size:
        out.reshape(-1).view(torch.uint8).numpy()[:] = raw
    return out


_FIXED = {  # format byte: (struct format, size) of a number that follows it
    0xCA: (">f", 4),
    0xCB: (">d", 8),
    0xCC: (">B", 1),
    0xCD: (">H", 2),
    0xCE: (">I", 4),
    0xCF: (">Q", 8),
    0xD0: (">b", 1),
    0xD1: (">h", 2),
    0xD2: (">i", 4),
    0xD3: (">q", 8),
}
_LENGTH = {1: ">B", 2: ">H", 4: ">I"}
# format byte: (kind, bytes of its length field); fixext's length is in the table instead
_SIZED = {
    0xC4: ("bin", 1),
    0xC5: ("bin", 2),
    0xC6: ("bin", 4),
    0xC7: ("ext", 1),
    0xC8: ("ext", 2),
    0xC9: ("ext", 4),
    0xD9: ("str", 1),
    0xDA: ("str", 2),
    0xDB: ("str", 4),
    0xDC: ("array", 2),
    0xDD: ("array", 4),
    0xDE: ("map", 2),
    0xDF: ("map", 4),
}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_CONSTANTS = {0xC0: None, 0xC2: False, 0xC3: True}


class _Walk:
    """A recursive reader over one frame; value(at) returns (value, where the next starts)."""

    def __init__(self, view: memoryview):
        self.view = view

    def _take(self, at: int, n: int) -> memoryview:
        if at + n > len(self.view):
            raise WireError("not a message's wire bytes: they end inside a value")
        return self.view[at : at + n]

    def _number(self, fmt: str, at: int, n: int) -> int | float:
        return struct.unpack(fmt, self._take(at, n))[0]

    def value(self, at: int) -> tuple[Any, int]:
        b = self._take(at, 1)[0]
        at += 1
        if b <= 0x7F or b >= 0xE0:
            return (b if b <= 0x7F else b - 0x100), at
        if b <= 0x8F:
            return self._map(b & 0x0F, at)
        if b <= 0x9F:
            return self._array(b & 0x0F, at)
        if b <= 0xBF:
            return self._str(b & 0x1F, at)
        if b in _CONSTANTS:
            return _CONSTANTS[b], at
        if b in _FIXED:
            fmt, n = _FIXED[b]
            return self._number(fmt, at, n), at + n
        if b in _FIXEXT:
            return self._ext(_FIXEXT[b], at)
        if b not in _SIZED:
            raise WireError(f"not a message's wire bytes: format byte {b:#04x}")
        kind, width = _SIZED[b]
        n = self._number(_LENGTH[width], at, width)
        at += width
        read: Callable[[int, int], tuple[Any, int]] = getattr(self, "_" + kind)
        return read(n, at)

    def _map(self, n: int, at: int) -> tuple[dict, int]:
        out = {}
        for _ in range(n):
            key, at = self.value(at)
            out[key], at = self.value(at)
        return out, at

    def _array(self, n: int, at: int) -> tuple[list, int]:
        out = []
        for _ in range(n):
            item, at = self.value(at)
            out.append(item)
        return out, at

    def _str(self, n: int, at: int) -> tuple[str, int]:
        return str(self._take(at, n), "utf-8"), at + n

    def _bin(self, n: int, at: int) -> tuple[bytes, int]:
        return bytes(self._take(at, n)), at + n

    def _ext(self, n: int, at: int) -> tuple[Any, int]:
        code = struct.unpack(">b", self._take(at, 1))[0]
        return _from_ext(code, self._take(at + 1, n)), at + 1 + n
