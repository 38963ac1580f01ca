import collections
import copy
import enum
import functools
import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.network.message import Message, MessageError, decode, encode, encode_parts

DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.uint8]
DTYPES += [torch.bool]
RESERVED = {"src", "dst", "kind", "payload", "t_send", "t_arrive", "dropped", "drop_reason"}
RESERVED |= {"size", "data_bytes"}


def make_tensor(dtype: torch.dtype, shape: list[int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    low = 0 if dtype == torch.uint8 else -1000
    return torch.randint(low, 256 if dtype == torch.uint8 else 1000, shape, generator=generator).to(
        dtype
    )


shapes = st.lists(st.integers(0, 6), max_size=3)
# uint8 vectors whose extension length crosses the 8-bit and 16-bit length fields.
boundary_lengths = st.integers(230, 262) | st.integers(65510, 65542)
tensors = st.builds(make_tensor, st.sampled_from(DTYPES), shapes, st.integers(0, 2**31))
tensors |= st.builds(
    lambda n, seed: make_tensor(torch.uint8, [n], seed), boundary_lengths, st.integers(0, 99)
)
arrays = st.builds(
    lambda t, dtype: t.numpy().astype(dtype), tensors, st.sampled_from(["<f4", "<i8", "u1", "?"])
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=300)
    | st.binary(max_size=300)
    | tensors
    | arrays
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=8,
)
names = st.from_regex(r"[a-z_]{1,8}", fullmatch=True).filter(lambda name: name not in RESERVED)
payloads = st.dictionaries(names, values, max_size=5)


def same(sent, received) -> bool:
    """Equal after a round trip: tuples come back as lists, numpy scalars as Python ones."""
    if isinstance(sent, torch.Tensor):
        return (
            isinstance(received, torch.Tensor)
            and (received.dtype, received.shape) == (sent.dtype, sent.shape)
            and torch.equal(received, sent.detach().cpu())
        )
    if isinstance(sent, np.ndarray):
        return (
            isinstance(received, np.ndarray)
            and (received.dtype, received.shape) == (sent.dtype, sent.shape)
            and np.array_equal(received, sent)
        )
    if isinstance(sent, (list, tuple)):
        return (
            type(received) is list and len(received) == len(sent) and all(map(same, sent, received))
        )
    if isinstance(sent, dict):
        return list(received) == list(sent) and all(same(sent[k], received[k]) for k in sent)
    if isinstance(sent, np.generic):
        return type(received) is type(sent.item()) and received == sent.item()
    return type(received) is type(sent) and received == sent


def raw_bytes(value) -> int:
    if isinstance(value, torch.Tensor | np.ndarray):
        return value.nbytes
    if isinstance(value, list | tuple):
        return sum(map(raw_bytes, value))
    if isinstance(value, dict):
        return sum(map(raw_bytes, value.values()))
    return 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads, st.integers(0, 2**20), st.integers(0, 2**20), st.text(max_size=40))
def test_size_is_the_encoded_length_and_round_trip_is_exact(payload, src, dst, kind):
    msg = Message(src, dst, kind, payload)
    wire = encode(msg)
    assert msg.size == len(wire)
    assert msg.data_bytes == raw_bytes(payload)
    back = decode(wire)
    assert (back.src, back.dst, back.kind) == (src, dst, kind)
    assert same(payload, back.payload)


@pytest.mark.parametrize("n", [*range(0, 24), *range(240, 262), *range(65515, 65540)])
def test_size_across_every_extension_header_length(n):
    for value in [torch.zeros(n, dtype=torch.uint8), np.zeros(n, dtype=np.uint8)]:
        msg = Message(0, 1, "x", {"x": value})
        assert msg.size == len(encode(msg))


class Code(enum.IntEnum):
    BIG = 300


# Values at each msgpack length boundary, a tensor subclass, and values Message.size leaves to
# msgpack to size.
INTS = [
    sign * 2**bits + d for bits in (5, 7, 8, 15, 16, 31, 32) for sign in (1, -1) for d in (-1, 0, 1)
]
STRS = ["a" * n for n in (31, 32, 255, 256, 65535, 65536)] + ["é" * 16, "€" * 11]
CONTAINERS = [list(range(15)), list(range(16)), tuple(range(65536)), {str(i): i for i in range(16)}]
LEFT_TO_MSGPACK = [np.float64(1.5), collections.OrderedDict(a=1), Code.BIG, bytearray(b"ab"), b"xy"]
LEFT_TO_MSGPACK += [functools.reduce(lambda inner, _: [inner], range(40), 0)]  # 40 lists deep


@pytest.mark.parametrize(
    "value",
    [*INTS, -(2**63), 2**63, 2**64 - 1, *STRS, *CONTAINERS, torch.nn.Parameter(torch.ones(3))]
    + LEFT_TO_MSGPACK,
)
def test_size_at_every_length_boundary_and_for_values_left_to_msgpack(value):
    msg = Message(0, 1, "x", {"v": value, "w": [value]})
    assert msg.size == len(encode(msg))


def test_size_does_not_serialise_tensor_bytes(monkeypatch):
    msg = Message(3, 4, "gossip", {"x": torch.randn(1000)})
    monkeypatch.setattr(torch.Tensor, "numpy", lambda self: pytest.fail("tensor was copied"))
    assert msg.size > msg.data_bytes == 4000


@pytest.mark.parametrize(
    "tensor",
    [
        torch.tensor(2.5),
        torch.tensor(True),
        torch.ones(3, 0),
        torch.arange(12.0).reshape(3, 4).t(),
        torch.arange(10.0)[2:7],
        torch.randn(4, requires_grad=True),
        torch.randn(5).to(torch.bfloat16),
    ],
)
def test_odd_tensors_round_trip_as_writable_copies(tensor):
    msg = Message(0, 1, "x", {"x": tensor})
    wire = encode(msg)
    assert msg.size == len(wire)
    received = decode(wire).x
    assert same(tensor, received)
    received.zero_()
    assert same(tensor, decode(wire).x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensor_travels_like_its_cpu_copy():
    x = torch.randn(100)
    on_gpu, on_cpu = Message(0, 1, "x", {"x": x.cuda()}), Message(0, 1, "x", {"x": x})
    assert encode(on_gpu) == encode(on_cpu) and on_gpu.size == on_cpu.size


def test_numpy_scalars_and_tuples():
    payload = {"w": np.float32(0.25), "i": np.int64(7), "b": np.bool_(True), "t": (1, (2, 3))}
    msg = Message(0, 1, "x", payload)
    back = decode(encode(msg)).payload
    assert back == {"w": 0.25, "i": 7, "b": True, "t": [1, [2, 3]]}
    assert msg.size == len(encode(msg)) and msg.data_bytes == 0


def test_payload_fields_read_as_attributes():
    msg = Message(0, 1, "push", {"x": torch.ones(2), "alpha": 0.5})
    assert msg.alpha == 0.5 and torch.equal(msg.x, torch.ones(2))
    with pytest.raises(AttributeError, match="'push' message has no field 'w'"):
        _ = msg.w
    assert copy.copy(msg).alpha == 0.5 and pickle.loads(pickle.dumps(msg)).alpha == 0.5


def test_wire_excludes_timing_and_decode_starts_fresh():
    msg = Message(0, 1, "x", {"a": 1}, t_send=1.0, t_arrive=2.0, dropped=True, drop_reason="loss")
    back = decode(encode(msg))
    assert encode(back) == encode(msg)
    assert math.isnan(back.t_send) and math.isnan(back.t_arrive) and not back.dropped


@pytest.mark.parametrize("name", ["size", "src", "dropped"])
def test_payload_field_that_hides_a_message_field_is_refused(name):
    with pytest.raises(MessageError, match=f"payload field '{name}'"):
        Message(0, 1, "x", {name: 1})


@pytest.mark.parametrize(
    "value", [object(), {1, 2}, np.array([object()]), 1 + 2j, 2**64, -(2**63) - 1]
)
def test_unsendable_value_raises_one_line(value):
    msg = Message(0, 1, "x", {"v": value})
    for measure in (lambda: msg.size, lambda: encode(msg)):
        with pytest.raises(MessageError) as error:
            measure()
        assert "\n" not in str(error.value) and "cannot send" in str(error.value)


def test_a_str_msgpack_refuses_fails_alike_when_sized_and_encoded():
    msg = Message(0, 1, "x", {"v": "\ud800"})  # a lone surrogate
    for measure in (lambda: msg.size, lambda: encode(msg)):
        with pytest.raises(UnicodeEncodeError):
            measure()


@settings(max_examples=200, deadline=None)
@given(payloads)
def test_encode_parts_concatenate_to_the_wire_bytes(payload):
    msg = Message(3, 7, "k", payload)
    parts = encode_parts(msg)
    assert b"".join(bytes(part) for part in parts) == encode(msg)
    assert sum(memoryview(part).nbytes for part in parts) == msg.size
