"""A message between nodes, its msgpack wire format, and its exact size on the wire.

Wire format: the msgpack map {"src", "dst", "kind", "payload"}; the timing fields are
simulation bookkeeping and never travel. Payload values are msgpack natives (int, float,
bool, str, bytes, None, lists and maps of them; tuples come back as lists; numpy scalars
travel as the Python scalar they hold) plus two extension types:

- torch tensor: ExtType(1, packb([dtype, shape]) + raw), dtype the torch name ("float32");
- numpy array:  ExtType(2, packb([dtype, shape]) + raw), dtype numpy's dtype.str ("<f4");

where raw is the C-contiguous CPU data in native byte order. The data bytes travel inside
the extension, so no user map or string can be mistaken for a tensor.

In simulation nothing is encoded: `Message.size` adds up the msgpack lengths of the fields
in Python, a tensor's from its dtype and shape (cached), which is exact because only the
length field of an extension header depends on the data length. Values of other types than
those of a usual payload (None, bool, int, float, str, dict, list, tuple, tensor) are left to
msgpack: the message is then packed with every raw data block left out and added back.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, ClassVar

import msgpack
import numpy as np
import torch

from netsim.network.unpack import WireError, unpack

_TENSOR, _ARRAY = 1, 2
_MARK = 127  # a placeholder extension, never on the wire (encode_parts)
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
        if _RESERVED.isdisjoint(self.payload):  # one call, not a loop, for every message
            return
        name = next(name for name in self.payload if name in _RESERVED)
        raise MessageError(
            f"payload field {name!r} of a {self.kind!r} message hides Message.{name}; rename it"
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
        data = []
        try:
            size = _FIELD_NAMES + _sized(self.src, data, 0) + _sized(self.dst, data, 0)
            size += _sized(self.kind, data, 0) + _sized(self.payload, data, 0)
        except _Unsized:
            return self._pack_measure()
        return size, sum(data)

    def _pack_measure(self) -> tuple[int, int]:
        data = extra = 0

        def measure(code: int, head: bytes, value) -> None:
            nonlocal data, extra
            nbytes = _nbytes(value)
            data += nbytes
            # Pack a None (one byte) in its place and add the extension's length.
            extra += _ext_header(len(head) + nbytes) + len(head) + nbytes - 1

        return len(_pack(self, measure)) + extra, data


_RESERVED = frozenset(f.name for f in fields(Message)) | {"size", "data_bytes", "_sizes"}


# The map header and the four field names of the wire map, all fixstr.
_FIELD_NAMES = 1 + sum(1 + len(name) for name in ("src", "dst", "kind", "payload"))
_NEST_LIMIT = 32  # containers deeper than this are left to msgpack and its own limit


class _Unsized(Exception):
    """A value _sized leaves to msgpack."""


def _sized(value, data: list[int], depth: int) -> int:
    """Bytes msgpack packs value into, for the types of a usual payload; appends the raw bytes
    of each tensor to data. Raises _Unsized for any other type (numpy values, subclasses of
    dict or int...), for ints and strs msgpack cannot pack, and for deep nesting."""
    # One chain of exact type tests, commonest first: the fastest dispatch in Python.
    kind = type(value)
    if kind is str:
        if value.isascii():
            n = len(value)
        else:
            try:
                n = len(value.encode())
            except UnicodeEncodeError:  # a lone surrogate, which msgpack refuses
                raise _Unsized from None
        if n < 32:
            return 1 + n
        if n < 2**32:
            return n + (2 if n < 2**8 else 3 if n < 2**16 else 5)
        raise _Unsized  # too long for msgpack
    if kind is int:
        # fixint, then the smallest of (u)int 8, 16, 32, 64.
        if -32 <= value < 128:
            return 1
        if -(2**7) <= value < 2**8:
            return 2
        if -(2**15) <= value < 2**16:
            return 3
        if -(2**31) <= value < 2**32:
            return 5
        if -(2**63) <= value < 2**64:
            return 9
        raise _Unsized  # too large for msgpack
    if kind is float:
        return 9  # always a double
    if value is None or kind is bool:
        return 1
    if kind is dict or kind is list or kind is tuple:
        n = len(value)
        if depth == _NEST_LIMIT or n >= 2**32:
            raise _Unsized
        size, depth = (1 if n < 16 else 3 if n < 2**16 else 5), depth + 1
        if kind is dict:
            for key, item in value.items():
                size += _sized(key, data, depth) + _sized(item, data, depth)
        else:
            for item in value:
                size += _sized(item, data, depth)
        return size
    # isinstance on torch.Tensor is slow (a metaclass hook): only for subclasses (Parameter).
    if kind is not torch.Tensor and not isinstance(value, torch.Tensor):
        raise _Unsized
    size, nbytes = _tensor_sizes(value.dtype, value.shape)
    data.append(nbytes)
    return size


@lru_cache(maxsize=1024)
def _tensor_sizes(dtype: torch.dtype, shape: torch.Size) -> tuple[int, int]:
    """Wire bytes of a tensor's extension, and its raw bytes."""
    head = _head(_TENSOR, dtype, shape)
    nbytes = math.prod(shape) * dtype.itemsize
    return _ext_header(len(head) + nbytes) + len(head) + nbytes, nbytes


def encode(msg: Message) -> bytes:
    """The wire bytes of msg; tensors on any device are copied to the CPU."""
    return _pack(msg, lambda code, head, value: msgpack.ExtType(code, head + _raw(value)))


def encode_parts(msg: Message) -> list:
    """encode(msg) as pieces whose concatenation is the wire bytes, with each tensor's and
    array's data a view of its memory rather than a copy (a sender writes the pieces to its
    socket one after another: a large payload is never copied in Python)."""
    marks: dict[bytes, tuple[int, bytes, Any]] = {}

    def mark(code: int, head: bytes, value):
        token = os.urandom(16)  # packs as fixext 16: 0xd8, the type byte, the token
        marks[token] = (code, head, value)
        return msgpack.ExtType(_MARK, token)

    packed = _pack(msg, mark)
    parts, start = [], 0
    for token, (code, head, value) in marks.items():
        at = packed.index(bytes((0xD8, _MARK)) + token, start)
        data = _view(value)
        parts += [packed[start:at], _ext_bytes(code, len(head) + data.nbytes) + head, data]
        start = at + 18
    parts.append(packed[start:])
    return parts


def _view(value) -> memoryview:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        return memoryview(flat.view(torch.uint8).numpy()).cast("B")
    return memoryview(np.ascontiguousarray(value).reshape(-1).view(np.uint8))


def _ext_bytes(code: int, length: int) -> bytes:
    """The msgpack extension header (format, length, type) for data of this length."""
    if length in _FIXEXT_LENGTHS:
        return bytes((0xD4 + _FIXEXT_LENGTHS.index(length), code))
    if length < 2**8:
        return bytes((0xC7, length, code))
    if length < 2**16:
        return bytes((0xC8,)) + length.to_bytes(2, "big") + bytes((code,))
    return bytes((0xC9,)) + length.to_bytes(4, "big") + bytes((code,))


def decode(wire: bytes) -> Message:
    """The Message encoded in wire, with fresh writable tensors and arrays."""
    try:
        fields_ = unpack(wire)
    except WireError as err:
        raise MessageError(str(err)) from None
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
