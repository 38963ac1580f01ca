"""All-reduce schedules, executed on plain tensors without a simulator."""

import pytest
import torch

from netsim.algorithms import collectives
from netsim.algorithms.collectives import SCHEDULES


def execute(plan, vectors):
    """Runs a schedule in lock step: each round's sends read the vectors as the round starts."""
    xs = [v.clone() for v in vectors]
    for t in range(len(plan[0])):
        out = {}
        for i, rounds in enumerate(plan):
            for j, a, b in rounds[t].sends:
                out[(i, j, a, b)] = xs[i][a:b].clone()
        for i, rounds in enumerate(plan):
            for j, a, b in rounds[t].recvs:
                x = out.pop((j, i, a, b))
                xs[i][a:b] = xs[i][a:b] + x if rounds[t].reduce else x
        assert not out, "a slice was sent and never received"
    return xs


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("n", range(1, 10))
@pytest.mark.parametrize("P", [1, 7, 64, 101])
def test_every_node_ends_with_the_exact_sum_and_the_same_bits(name, n, P):
    plan = SCHEDULES[name](n, P)
    assert len({len(rounds) for rounds in plan}) == 1
    integers = [
        torch.randint(-1000, 1000, (P,), generator=torch.Generator().manual_seed(i)).float()
        for i in range(n)
    ]
    assert all(torch.equal(x, sum(integers)) for x in execute(plan, integers))
    floats = [
        torch.randn(P, generator=torch.Generator().manual_seed(i)) * 10.0**i for i in range(n)
    ]
    result = execute(plan, floats)
    assert all(torch.equal(x, result[0]) for x in result)
    torch.testing.assert_close(result[0], torch.stack(floats).double().sum(0).float())


def test_chunks_cut_p_entries_into_n_slices_the_first_ones_longer():
    assert collectives.chunks(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert collectives.chunks(2, 3) == [(0, 1), (1, 2), (2, 2)]


def sent_entries(plan, i):
    return sum(b - a for r in plan[i] for _, a, b in r.sends)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_ring_sends_2_n_minus_1_chunks_of_p_over_n_to_the_next_node(n):
    P = 12 * n
    plan = collectives.ring(n, P)
    assert len(plan[0]) == 2 * (n - 1)
    for i in range(n):
        assert [len(r.sends) for r in plan[i]] == [1] * 2 * (n - 1)
        assert {j for r in plan[i] for j, _, _ in r.sends} == {(i + 1) % n}
        assert sent_entries(plan, i) == 2 * (n - 1) * P // n
    assert [r.reduce for r in plan[0]] == [True] * (n - 1) + [False] * (n - 1)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_halving_doubling_sends_2_n_minus_1_over_n_of_the_vector_in_2_log2_n_rounds(n):
    P = 16 * n
    plan = collectives.halving_doubling(n, P)
    assert len(plan[0]) == 2 * (n.bit_length() - 1)
    for i in range(n):
        assert all(len(r.sends) == len(r.recvs) == 1 for r in plan[i])
        assert sent_entries(plan, i) == 2 * (n - 1) * P // n
    first = [P // 2, P // 4, P // 8, P // 16][: n.bit_length() - 1]
    assert [b - a for r in plan[0] for _, a, b in r.sends] == first + first[::-1]


def test_halving_doubling_folds_the_nodes_past_a_power_of_two_in_and_out():
    plan = collectives.halving_doubling(6, 60)  # p = 4: nodes 0 and 2 hand their vectors over
    assert plan[0][0].sends == [(1, 0, 60)] and plan[2][0].sends == [(3, 0, 60)]
    assert plan[1][-1].sends == [(0, 0, 60)] and plan[3][-1].sends == [(2, 0, 60)]
    assert all(not r.sends and not r.recvs for r in plan[0][1:-1])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_tree_reduces_to_node_0_and_broadcasts_the_whole_vector_in_2_ceil_log2_n_rounds(n):
    plan = collectives.tree(n, 10)
    m = (n - 1).bit_length()
    assert len(plan[0]) == 2 * m
    assert all(r.sends == [] for r in plan[0][:m])  # the root only receives, then only sends
    for i in range(1, n):
        assert sum(len(r.sends) for r in plan[i][:m]) == 1  # each node reduces up once
        assert sum(len(r.recvs) for r in plan[i][m:]) == 1  # and is sent the sum once
    assert all(b - a == 10 for rounds in plan for r in rounds for _, a, b in r.sends)
