"""The real runtime's reader of wire bytes: the same values as msgpack's unpacker, with each
tensor copied once into its own writable memory."""

import msgpack
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.network import unpack as unpack_module
from netsim.network.message import Message, MessageError, decode, encode, encode_parts
from netsim.network.unpack import WireError, _Walk, unpack
from tests.netsim.network.test_message import payloads, same


def walk(wire):
    view = memoryview(wire)
    value, end = _Walk(view).value(0)
    assert end == len(view)
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads, st.text(max_size=40))
def test_walk_reads_what_msgpack_reads(payload, kind):
    wire = encode(Message(3, 70000, kind, payload))
    by_msgpack = msgpack.unpackb(wire, ext_hook=unpack_module._from_ext, strict_map_key=False)
    by_walk = walk(wire)
    assert same(by_msgpack["payload"], by_walk["payload"])
    assert same(payload, by_walk["payload"])
    assert (by_walk["src"], by_walk["dst"], by_walk["kind"]) == (3, 70000, kind)


@pytest.mark.parametrize(
    "value",
    [
        0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
        -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
        0.5, -1e300, float("inf"), True, False, None,
        "", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "é" * 40000, "e" * 70000,
        b"", b"x" * 255, b"y" * 256, b"z" * 70000,
        list(range(16)), list(range(70000)), {i: str(i) for i in range(16)},
        {str(i): i for i in range(70000)}, [[[]], {}, [{}]], {1: [2.5, None], "k": {"n": []}},
    ],
)  # fmt: skip
def test_every_msgpack_format_reads_back(value):
    wire = msgpack.packb(value)
    assert walk(wire) == msgpack.unpackb(wire, strict_map_key=False) == value


def test_a_float32_on_the_wire_reads_as_msgpack_reads_it():
    wire = msgpack.packb(0.1, use_single_float=True)
    assert walk(wire) == msgpack.unpackb(wire) != 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool])
def test_large_frame_is_walked_and_its_tensors_are_fresh_aligned_and_writable(dtype):
    x = torch.arange(300_000).to(dtype)  # over WALK_ABOVE for every dtype here
    a = np.arange(1000, dtype="<i8").reshape(10, 100)
    body = bytearray(b"".join(encode_parts(Message(0, 1, "x", {"x": x, "a": a, "w": 0.25}))))
    assert len(body) > unpack_module.WALK_ABOVE
    back = decode(body)
    assert back.w == 0.25 and torch.equal(back.x, x) and np.array_equal(back.a, a)
    assert back.x.data_ptr() % 64 == 0 and back.a.flags.writeable
    body[:] = bytes(len(body))  # the frame's buffer is reused: nothing may point into it
    assert torch.equal(back.x, x) and np.array_equal(back.a, a)
    back.x.zero_()
    assert not back.x.any()


def test_large_frame_reads_the_same_by_both_paths(monkeypatch):
    payload = {"x": torch.randn(100_000), "parts": [torch.ones(3), {"n": 7}], "s": "k"}
    wire = encode(Message(1, 2, "push", payload))
    walked = decode(wire)
    monkeypatch.setattr(unpack_module, "WALK_ABOVE", len(wire))
    assert same(payload, walked.payload) and same(payload, decode(wire).payload)


def test_a_large_frame_never_goes_through_msgpack_whole(monkeypatch):
    fed = []

    class Unpacker(msgpack.Unpacker):
        def feed(self, data):
            fed.append(len(data))
            super().feed(data)

    def unpackb(*args, **kwargs):
        raise AssertionError("msgpack.unpackb would copy the tensor's data")

    monkeypatch.setattr(msgpack, "Unpacker", Unpacker)
    monkeypatch.setattr(msgpack, "unpackb", unpackb)
    back = decode(encode(Message(0, 1, "x", {"x": torch.ones(200_000)})))
    assert back.x.sum() == 200_000 and fed == [64]  # the [dtype, shape] header only


@pytest.mark.parametrize("big", [False, True])
def test_truncated_or_padded_bytes_are_one_clear_error(big):
    wire = encode(Message(0, 1, "x", {"x": torch.zeros(100_000 if big else 10)}))
    for bad in (wire[:-1], wire[: len(wire) // 2], wire + b"\x00"):
        with pytest.raises(MessageError, match="not a message's wire bytes"):
            decode(bad)


def test_unknown_extension_and_format_byte_are_refused():
    big = b"\x00" * (unpack_module.WALK_ABOVE + 1)
    odd = msgpack.packb({"x": msgpack.ExtType(9, msgpack.packb(["float32", [1]]) + big)})
    with pytest.raises(WireError, match="unknown extension 9"):
        unpack(odd)
    with pytest.raises(WireError, match="format byte 0xc1"):
        walk(b"\xc1")
