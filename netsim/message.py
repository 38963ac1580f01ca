"""A message between nodes, its msgpack wire format, and its exact size on the wire.

Wire format: the msgpack map {"src", "dst", "kind", "payload"}; the timing fields are
simulation bookkeeping and never travel. Payload values are msgpack natives (int, float,
bool, str, bytes, None, lists and maps of them; tuples come back as lists; numpy scalars
travel as the Python scalar they hold) plus two extension types:

- torch tensor: ExtType(1, packb([dtype, shape]) + raw), dtype the torch name ("float32");
- numpy array:  ExtType(2, packb([dtype, shape]) + raw), dtype numpy's dtype.str ("<f4");

where raw is the C-contiguous CPU data in native byte order. The data bytes travel inside
the extension, so no user map or string can be mistaken for a tensor.

In simulation nothing is encoded: `Message.size` packs the message with every tensor's raw
bytes left out and adds them back arithmetically, which is exact because only the length
field of an extension header depends on the data length.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, ClassVar

import msgpack
import numpy as np
import torch

_TENSOR, _ARRAY = 1, 2
_FIXEXT_LENGTHS = (1, 2, 4, 8, 16)


class MessageError(ValueError):
    """A payload that cannot be put on the wire."""


@dataclass(eq=False)
class Message:
    """One message; payload entries read as attributes (msg.x, msg.alpha)."""

    src: int
    dst: int
    kind: str
    payload: dict[str, Any]
    t_send: float = math.nan
    t_arrive: float = math.nan
    dropped: bool = False
    drop_reason: str = ""

    def __post_init__(self):
        for name in self.payload:
            if name in _RESERVED:
                raise MessageError(
                    f"payload field {name!r} of a {self.kind!r} message hides Message.{name}; "
                    "rename it"
                )

    def __getattr__(self, name):
        # Read __dict__ directly: copy and pickle probe attributes before payload exists.
        payload = self.__dict__.get("payload", {})
        if name in payload:
            return payload[name]
        kind = self.__dict__.get("kind")
        raise AttributeError(f"{kind!r} message has no field {name!r}; it has {list(payload)}")

    @property
    def size(self) -> int:
        """Bytes on the wire: exactly len(encode(self))."""
        if self._sizes is None:
            self._sizes = self._measure()
        return self._sizes[0]

    @property
    def data_bytes(self) -> int:
        """Raw tensor and array bytes in the payload; the rest of size is metadata."""
        if self._sizes is None:
            self._sizes = self._measure()
        return self._sizes[1]

    # (size, data_bytes) once measured. Not a functools.cached_property, which takes a lock
    # and gives each message a dict of its own: a cost in runs of a million messages.
    _sizes: ClassVar[tuple[int, int] | None] = None

    def _measure(self) -> tuple[int, int]:
        data = extra = 0

        def measure(code: int, head: bytes, value) -> None:
            nonlocal data, extra
            nbytes = _nbytes(value)
            data += nbytes
            # Pack a None (one byte) in its place and add the extension's length.
            extra += _ext_header(len(head) + nbytes) + len(head) + nbytes - 1

        return len(_pack(self, measure)) + extra, data


_RESERVED = frozenset(f.name for f in fields(Message)) | {"size", "data_bytes", "_sizes"}


def encode(msg: Message) -> bytes:
    """The wire bytes of msg; tensors on any device are copied to the CPU."""
    return _pack(msg, lambda code, head, value: msgpack.ExtType(code, head + _raw(value)))


def decode(wire: bytes) -> Message:
    """The Message encoded in wire, with fresh writable tensors and arrays."""
    fields_ = msgpack.unpackb(wire, ext_hook=_from_ext, strict_map_key=False)
    return Message(fields_["src"], fields_["dst"], fields_["kind"], fields_["payload"])


def _pack(msg: Message, ext: Callable[[int, bytes, Any], Any]) -> bytes:
    """Pack msg, turning each tensor or array into ext(code, dtype-and-shape header, value)."""

    def default(value):
        if isinstance(value, torch.Tensor):
            return ext(_TENSOR, _head(_TENSOR, value.dtype, value.shape), value)
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            return ext(_ARRAY, _head(_ARRAY, value.dtype, value.shape), value)
        if isinstance(value, np.generic):
            return value.item()
        raise MessageError(
            f"cannot send a {type(value).__name__} in a {msg.kind!r} message; send tensors, "
            "numpy arrays, numbers, str, bytes, None, or lists and dicts of them"
        )

    wire = {"src": msg.src, "dst": msg.dst, "kind": msg.kind, "payload": msg.payload}
    return msgpack.packb(wire, default=default)


@lru_cache(maxsize=1024)
def _head(code: int, dtype, shape: tuple[int, ...]) -> bytes:
    """The packed [dtype, shape] that starts an extension; a run sends few distinct ones."""
    name = str(dtype).removeprefix("torch.") if code == _TENSOR else dtype.str
    return msgpack.packb([name, list(shape)])


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    return value.nbytes


def _raw(value) -> bytes:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        # Viewing as bytes also covers dtypes numpy lacks (bfloat16).
        return flat.view(torch.uint8).numpy().tobytes()
    return np.ascontiguousarray(value).tobytes()


def _ext_header(length: int) -> int:
    """Bytes of a msgpack extension header (type byte included) for data of this length."""
    if length in _FIXEXT_LENGTHS:
        return 2
    if length < 2**8:
        return 3
    if length < 2**16:
        return 4
    return 6


def _from_ext(code: int, data: bytes):
    unpacker = msgpack.Unpacker()
    unpacker.feed(data)
    dtype, shape = unpacker.unpack()
    raw = memoryview(data)[unpacker.tell() :]
    if code == _ARRAY:
        return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    if code != _TENSOR or not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise MessageError(f"unknown extension {code} ({dtype!r}); sender and receiver differ")
    if not raw:
        return torch.empty(shape, dtype=getattr(torch, dtype))
    # A bytearray copy makes the tensor own writable memory.
    return torch.frombuffer(bytearray(raw), dtype=getattr(torch, dtype)).reshape(shape)
