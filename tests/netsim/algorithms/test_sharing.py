"""Sharing methods on plain tensors: payload bytes, TopK selection, seeds, reconstruction."""

import msgpack
import numpy as np
import pytest
import torch

from netsim.algorithms import sharing
from netsim.algorithms.ops import AlgorithmError
from netsim.network.message import Message, encode


def T(*values):
    return torch.tensor(values, dtype=torch.float32)


def message(payload):
    return Message(0, 1, "model", payload)


def test_full_payload_is_the_plain_model_message():
    x = torch.randn(50)
    payload = sharing.Full().encode(x, {}, np.random.default_rng(0))
    assert list(payload) == ["x"]
    assert message(payload).size == message({"x": x}).size
    y, mask = sharing.Full().decode(payload, torch.zeros(50))
    assert torch.equal(y, x) and mask is None


@pytest.mark.parametrize("P, alpha", [(1000, 0.1), (1001, 0.25), (7, 0.5), (300, 1.0)])
def test_partial_sends_round_alpha_p_values_and_int32_indices(P, alpha):
    k = round(alpha * P)
    payload = sharing.Partial(alpha).encode(torch.randn(P), {}, np.random.default_rng(0))
    assert payload["x"].dtype == torch.float32 and payload["x"].shape == (k,)
    assert payload["idx"].dtype == torch.int32 and payload["idx"].shape == (k,)
    msg = message(payload)
    assert msg.size == len(encode(msg))
    assert msg.data_bytes == 8 * k


def test_partial_picks_the_largest_change_since_the_last_round():
    share, state, rng = sharing.Partial(0.4), {}, np.random.default_rng(0)
    share.after_averaging(T(1, 2, 3, 4, 5), state)
    payload = share.encode(T(1.5, 2, 0, 4.25, 5), state, rng)  # change .5, 0, -3, .25, 0
    assert payload["idx"].tolist() == [0, 2]
    assert payload["x"].tolist() == [1.5, 0.0]
    assert state["ref"].tolist() == [1.5, 2, 0, 4.25, 5]
    share.after_averaging(T(1.5, 2, 0, 4, 5), state)
    assert state["ref"].tolist() == [1.5, 2, 0, 4, 5]
    payload = share.encode(T(1.5, 3, 0, 4, 5.5), state, rng)  # change 0, 1, 0, 0, .5
    assert payload["idx"].tolist() == [1, 4]


def test_partial_without_a_reference_measures_change_from_zero():
    payload = sharing.Partial(0.5).encode(T(0.5, -4, 1, 3), {}, np.random.default_rng(0))
    assert payload["idx"].tolist() == [1, 3]


# Three rounds on 4 parameters, one sent per round. Averaging moves entry 3 by 5 in round 1.
ROUNDS = [  # (x after training, x after averaging)
    (T(3, 2, 0, 0), T(3, 2, 0, 5)),
    (T(3, 2, 1.5, 5), T(3, 2, 1.5, 5)),
    (T(4, 2, 2.75, 5), T(4, 2, 2.75, 5)),
]


@pytest.mark.parametrize(
    "options, sent, acc",
    [
        # change since the last round: 3,2,0,0 / 0,0,1.5,0 / 1,0,1.25,0
        ({}, [0, 2, 2], None),
        # training change since last sent: acc 3,2,0,0 -> 0,2,1.5,0 -> 1,0,2.75,0; averaging ignored
        ({"accumulation": True}, [0, 1, 2], [1, 0, 0, 0]),
        # legacy: scores 3,2,0,0 / 3,2,1.5,5 / 4,2,2.75,0; acc keeps this round's change
        (
            {"accumulation": True, "accumulate_averaging_changes": True},
            [0, 3, 0],
            [1, 2, 2.75, 0],
        ),
    ],
)
def test_partial_accumulation_on_a_hand_example(options, sent, acc):
    share, state, rng = sharing.Partial(0.25, **options), {}, np.random.default_rng(0)
    share.after_averaging(torch.zeros(4), state)
    for (x, averaged), i in zip(ROUNDS, sent, strict=True):
        payload = share.encode(x, state, rng)
        assert payload["idx"].tolist() == [i]
        assert payload["x"].tolist() == [x[i].item()]
        share.after_averaging(averaged, state)
    if acc is None:
        assert "acc" not in state
    else:
        assert state["acc"].tolist() == acc


def test_subsampling_receiver_rebuilds_the_senders_mask_from_the_seed():
    P, alpha = 1000, 0.3
    k = round(alpha * P)
    x, base = torch.randn(P), torch.randn(P)
    payload = sharing.SubSampling(alpha).encode(x, {}, np.random.default_rng(0))
    assert sorted(payload) == ["seed", "x"]
    y, mask = sharing.SubSampling(alpha).decode(payload, base)
    assert int(mask.sum()) == k
    # distinct random values: the sent values sit exactly where the receiver's mask says
    assert torch.equal(x[mask], payload["x"])
    assert torch.equal(y, torch.where(mask, x, base))
    msg = message(payload)
    assert msg.size == len(encode(msg))
    assert msg.data_bytes == 4 * k
    metadata = len(msgpack.packb("seed")) + len(msgpack.packb(payload["seed"]))
    assert msg.size == message({"x": payload["x"]}).size + metadata


def test_subsampling_draws_a_new_mask_each_time():
    share, rng, x = sharing.SubSampling(0.5), np.random.default_rng(0), torch.randn(100)
    masks = [share.decode(share.encode(x, {}, rng), x)[1] for _ in range(2)]
    assert not torch.equal(*masks)


def test_random_alpha_follows_the_seeded_draws_and_sends_full_above_the_cap():
    alpha_list, P = (0.1, 0.2, 0.3, 0.4, 0.5, 1.0), 200
    share, x = sharing.RandomAlpha(alpha_list, metadata_cap=0.5), torch.randn(P)
    payloads = [
        [share.encode(x, {}, rng) for _ in range(20)] for rng in map(np.random.default_rng, [3, 3])
    ]
    rng = np.random.default_rng(3)
    draws = [rng.choice(alpha_list) for _ in range(20)]
    for a, b, alpha in zip(*payloads, draws, strict=True):
        assert len(a["x"]) == (P if alpha > 0.5 else round(alpha * P))
        assert sorted(a) == (["x"] if alpha > 0.5 else ["idx", "x"])
        assert all(torch.equal(a[key], b[key]) for key in a)
    full = sharing.RandomAlpha((1.0,)).encode(x, {}, np.random.default_rng(0))
    assert list(full) == ["x"] and torch.equal(full["x"], x)
    assert sharing.RandomAlpha((1.0,)).decode(full, torch.zeros(P))[1] is None


def test_decode_keeps_the_receivers_values_where_nothing_arrived():
    payload = {"x": T(9, 8), "idx": torch.tensor([1, 3], dtype=torch.int32)}
    y, mask = sharing.Partial(0.4).decode(payload, T(0, 1, 2, 3, 4))
    assert y.tolist() == [0, 9, 2, 8, 4]
    assert mask.tolist() == [False, True, False, True, False]


def test_masked_average_counts_missing_coordinates_as_the_receivers_own():
    received = [
        (T(10, 20, 30), torch.tensor([True, False, True]), 0.25),
        (T(100, 200, 300), None, 0.25),
    ]
    x = sharing.masked_average(T(1, 2, 3), 0.5, received)
    # coordinate 1 from the first neighbour is missing: 0.5*2 + 0.25*2 + 0.25*200
    assert x.tolist() == [28.0, 51.5, 84.0]


def test_masked_average_with_full_masks_is_the_weighted_average():
    X, w = torch.randn(4, 10), [0.4, 0.3, 0.2, 0.1]
    full = torch.ones(10, dtype=torch.bool)
    received = [(X[j], full if j % 2 else None, w[j]) for j in range(1, 4)]
    expected = sum(w[j] * X[j] for j in range(4))
    assert torch.allclose(sharing.masked_average(X[0], w[0], received), expected)


def test_build_by_name_and_bad_settings():
    assert sharing.build("full") == sharing.Full()
    assert sharing.build("partial", alpha=0.1, accumulation=True) == sharing.Partial(0.1, True)
    assert sharing.build("random_alpha").name == "random_alpha"
    assert sharing.build("subsampling", alpha=0.2) == sharing.SubSampling(0.2)
    with pytest.raises(AlgorithmError, match="known: full, partial, random_alpha, subsampling"):
        sharing.build("topk")
    with pytest.raises(AlgorithmError, match="no setting 'alfa'"):
        sharing.build("partial", alfa=0.1)
    with pytest.raises(AlgorithmError, match="alpha must be in"):
        sharing.Partial(0.0)
    with pytest.raises(AlgorithmError, match="needs accumulation=True"):
        sharing.Partial(0.5, accumulate_averaging_changes=True)
