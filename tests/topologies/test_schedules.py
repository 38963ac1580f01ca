import functools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topologies import graphs, schedules, weights
from topologies.graphs import TopologyError


def product(schedule):
    """W_{period-1} ... W_1 W_0: the map one whole period applies to X."""
    return functools.reduce(lambda P, W: W @ P, schedule, np.eye(schedule.n))


def strongly_connected(W):
    G = nx.from_numpy_array(np.asarray(W).T > 0, create_using=nx.DiGraph)
    G.remove_edges_from(nx.selfloop_edges(G))
    return nx.is_strongly_connected(G)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 16])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_periodic_strongly_connected_is_only_connected_over_a_period(n, seed):
    S = schedules.periodic_strongly_connected(n, 5, seed)
    assert (S.n, S.period, len(S)) == (n, 5, 5)
    for W in S:
        assert weights.is_row_stochastic(W)
        assert (np.diag(W) > 0).all()
        assert not strongly_connected(W)
    assert nx.is_strongly_connected(S.union_graph())


@pytest.mark.parametrize(("n", "period"), [(2, 2), (3, 2), (6, 3), (9, 2)])
def test_periodic_strongly_connected_with_other_periods(n, period):
    S = schedules.periodic_strongly_connected(n, period, seed=3)
    assert S.period == period
    assert not any(strongly_connected(W) for W in S)
    assert nx.is_strongly_connected(S.union_graph())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 12), period=st.integers(2, 7), seed=st.integers(0, 2**16))
def test_periodic_strongly_connected_passes_its_own_checks_for_any_draw(n, period, seed):
    S = schedules.periodic_strongly_connected(n, period, seed)
    assert S.period == period and all(weights.is_row_stochastic(W) for W in S)
    assert not any(strongly_connected(W) for W in S)
    assert nx.is_strongly_connected(S.union_graph())


def test_periodic_strongly_connected_is_reproducible_by_seed():
    a, b, c = (schedules.periodic_strongly_connected(6, 5, s) for s in (4, 4, 5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("n", [3, 5, 8])
def test_periodic_strongly_connected_reaches_consensus(n):
    # Row-stochastic products over a periodically connected sequence tend to rank one.
    P = np.linalg.matrix_power(product(schedules.periodic_strongly_connected(n, 5, 2)), 2000)
    assert np.allclose(P, P[0], rtol=0, atol=1e-9)


def test_periodic_rejects_a_union_that_is_not_strongly_connected():
    # Two 2-node blocks that never talk to each other.
    W = np.kron(np.eye(2), np.full((2, 2), 0.5))
    with pytest.raises(TopologyError, match="union of the 2 matrices .* not strongly connected"):
        schedules.periodic([W, np.eye(4)], require_each_disconnected=False)


def test_periodic_names_a_matrix_that_is_not_row_stochastic():
    S = schedules.periodic_strongly_connected(4, 3, seed=0)
    matrices = list(S)
    matrices[1][2] *= 0.5
    with pytest.raises(TopologyError, match="matrix 1 is not row-stochastic: row 2 sums to"):
        schedules.periodic(matrices)


def test_periodic_names_a_matrix_that_is_strongly_connected_alone():
    matrices = list(schedules.periodic_strongly_connected(4, 3, seed=0))
    matrices[2] = weights.uniform_doubly_stochastic(4)
    with pytest.raises(TopologyError, match="matrix 2 is strongly connected on its own"):
        schedules.periodic(matrices)
    assert schedules.periodic(matrices, require_each_disconnected=False).period == 3


def test_periodic_checks_columns_for_push_sum():
    W = weights.column_stochastic(graphs.exponential(5))
    assert schedules.periodic([W], stochastic="column", require_each_disconnected=False).period == 1
    with pytest.raises(TopologyError, match="matrix 0 is not row-stochastic"):
        schedules.periodic([weights.column_stochastic(graphs.star(4))])
    with pytest.raises(TopologyError, match="matrix 0 is not column-stochastic: column"):
        schedules.periodic([weights.uniform(graphs.star(4))], stochastic="column")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: schedules.periodic([]), "at least one matrix"),
        (lambda: schedules.periodic([np.eye(2), np.eye(3)]), "matrix 1 is 3 x 3 but matrix 0"),
        (lambda: schedules.periodic([np.ones((2, 3))]), "matrix 0 must be an n x n array"),
        (lambda: schedules.periodic([[[1, 0], [-1, 2]]]), r"matrix 0\[1, 0\] = -1"),
        (lambda: schedules.periodic([np.eye(2)], stochastic="both"), "'row' or 'column'"),
        (lambda: schedules.periodic_strongly_connected(1), "n must be an integer >= 2"),
        (lambda: schedules.periodic_strongly_connected(4, 1), "period must be an integer >= 2"),
        (lambda: schedules.one_peer_exponential(1), "n must be an integer >= 2"),
        (lambda: schedules.schedule_of(np.ones((2, 2, 2))), "W must be an n x n array"),
    ],
)
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(TopologyError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("n", range(2, 20))
def test_one_peer_exponential_sends_to_exactly_one_peer(n):
    S = schedules.one_peer_exponential(n)
    assert S.period == len({2**k % n for k in range(S.period)}) == int(np.log2(n - 1)) + 1
    for k, W in enumerate(S):
        assert weights.is_column_stochastic(W) and weights.is_doubly_stochastic(W)
        for i in range(n):
            assert W[i, i] == 0.5
            assert set(np.flatnonzero(W[:, i])) - {i} == {(i + 2**k) % n}
    assert nx.utils.graphs_equal(S.union_graph(), graphs.exponential(n))


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_one_peer_exponential_averages_exactly_in_one_period(n):
    assert np.allclose(product(schedules.one_peer_exponential(n)), 1 / n, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [3, 5, 6, 12])
def test_one_peer_exponential_is_inexact_off_powers_of_two(n):
    assert not np.allclose(product(schedules.one_peer_exponential(n)), 1 / n, rtol=0, atol=1e-3)


def test_schedule_cycles_through_its_period():
    matrices = [np.eye(2), np.full((2, 2), 0.5), np.array([[0.0, 1.0], [1.0, 0.0]])]
    S = schedules.Schedule(matrices)
    for t in range(10):
        assert np.array_equal(S[t], matrices[t % 3])
    assert len(list(S)) == len(S) == S.period == 3
    assert repr(S) == "Schedule(n=2, period=3)"


def test_schedule_cannot_be_changed_from_outside():
    source = np.eye(3)
    S = schedules.Schedule([source])
    source[0, 0] = 7.0
    S[0][1, 1] = 7.0
    assert np.array_equal(S[0], np.eye(3))


def test_union_graph_has_an_edge_from_sender_to_receiver():
    W0 = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1]])  # 1 receives from 0
    W1 = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0.5, 0.5]])  # 2 receives from 1
    G = schedules.Schedule([W0, W1]).union_graph()
    assert sorted(G) == [0, 1, 2] and sorted(G.edges) == [(0, 1), (1, 2)]


def test_schedule_of_wraps_a_matrix_and_passes_schedules_through():
    S = schedules.one_peer_exponential(8)
    assert schedules.schedule_of(S) is S
    W = weights.random_row_stochastic(4, seed=1)
    constant = schedules.schedule_of(W)
    assert constant.period == 1 and np.array_equal(constant[41], W)
