import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topologies import graphs, weights
from topologies.graphs import TopologyError

sizes = st.integers(1, 8)
seeds = st.integers(0, 2**16)


def support_mask(G):
    """W[i, j] may be positive exactly for j -> i in G, or i = j."""
    A = nx.to_numpy_array(G, nodelist=range(len(G)), weight=None)
    return (A.T + np.eye(len(A))) > 0


def random_support(n, seed):
    return nx.gnp_random_graph(n, 0.4, seed=seed, directed=True)


def has_total_support(M):
    """Brute force: every positive entry lies on some permutation of positive entries."""
    n = len(M)
    diagonals = [
        p for p in itertools.permutations(range(n)) if all(M[i, p[i]] > 0 for i in range(n))
    ]
    on_some = {(i, p[i]) for p in diagonals for i in range(n)}
    return bool(diagonals) and all((int(i), int(j)) in on_some for i, j in np.argwhere(M > 0))


@settings(max_examples=60, deadline=None)
@given(n=sizes, seed=seeds)
def test_random_row_stochastic_is_positive_and_reproducible(n, seed):
    W = weights.random_row_stochastic(n, seed)
    assert weights.is_row_stochastic(W) and (W > 0).all()
    assert np.array_equal(W, weights.random_row_stochastic(n, seed))


@settings(max_examples=60, deadline=None)
@given(n=sizes, seed=seeds)
def test_random_row_stochastic_respects_the_support(n, seed):
    G = random_support(n, seed)
    W = weights.random_row_stochastic(n, seed, support=G)
    assert weights.is_row_stochastic(W)
    assert np.array_equal(W > 0, support_mask(G))


def test_random_row_stochastic_seeds_differ():
    assert not np.array_equal(
        weights.random_row_stochastic(4, 0), weights.random_row_stochastic(4, 1)
    )


@settings(max_examples=60, deadline=None)
@given(n=sizes, seed=seeds)
def test_random_doubly_stochastic_is_positive_and_reproducible(n, seed):
    W = weights.random_doubly_stochastic(n, seed)
    assert weights.is_doubly_stochastic(W, atol=1e-10) and (W > 0).all()
    assert np.array_equal(W, weights.random_doubly_stochastic(n, seed))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 8), seed=seeds)
def test_random_doubly_stochastic_respects_an_undirected_support(n, seed):
    # Every edge of an undirected graph is a 2-cycle, so the support has total support.
    G = nx.gnp_random_graph(n, 0.4, seed=seed)
    W = weights.random_doubly_stochastic(n, seed, support=G)
    assert weights.is_doubly_stochastic(W, atol=1e-10)
    assert np.array_equal(W > 0, support_mask(G))


def test_random_doubly_stochastic_on_a_directed_cycle():
    G = nx.cycle_graph(5, create_using=nx.DiGraph)
    W = weights.random_doubly_stochastic(5, 3, support=G)
    assert weights.is_doubly_stochastic(W, atol=1e-10)
    assert np.array_equal(W > 0, support_mask(G))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
def test_uniform_doubly_stochastic_averages_in_one_round(n):
    W = weights.uniform_doubly_stochastic(n)
    assert np.all(W == 1 / n) and weights.is_doubly_stochastic(W)
    x = np.arange(n, dtype=float)
    assert np.allclose(W @ x, x.mean(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "G",
    [
        graphs.exponential(8),
        graphs.exponential(6),
        graphs.star(5),
        nx.DiGraph([(0, 1), (0, 2), (2, 1)]),
    ],
)
def test_column_stochastic_splits_each_senders_value(G):
    W = weights.column_stochastic(G)
    assert weights.is_column_stochastic(W)
    for j in G:
        d = G.out_degree(j) if G.is_directed() else G.degree(j)
        assert set(np.flatnonzero(W[:, j])) == {j, *G.neighbors(j)}
        assert np.all(W[W[:, j] > 0, j] == 1 / (d + 1))
    assert np.array_equal(W, weights.uniform(G).T)
    x = np.random.default_rng(0).random(len(G))
    assert (W @ x).sum() == pytest.approx(x.sum(), abs=1e-12)


def test_column_stochastic_is_not_row_stochastic_off_regular_graphs():
    W = weights.column_stochastic(nx.DiGraph([(0, 1), (0, 2), (2, 1)]))
    assert not weights.is_row_stochastic(W)


@settings(max_examples=60, deadline=None)
@given(n=sizes, seed=seeds)
def test_sinkhorn_scales_positive_matrices_to_doubly_stochastic(n, seed):
    M = np.random.default_rng(seed).uniform(0.01, 10, (n, n))
    W = weights.sinkhorn(M)
    assert weights.is_doubly_stochastic(W, atol=1e-10)
    # W = D1 M D2: the entrywise ratio is an outer product, so it has rank one.
    R = W / M
    assert np.allclose(R, np.outer(R[:, 0], R[0]) / R[0, 0], rtol=1e-9, atol=0)


@pytest.mark.parametrize("W", [np.eye(3), np.roll(np.eye(4), 1, axis=0), np.full((5, 5), 0.2)])
def test_sinkhorn_keeps_doubly_stochastic_matrices(W):
    assert np.allclose(weights.sinkhorn(W), W, rtol=0, atol=1e-15)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 4), bits=st.integers(0, 2**16 - 1))
def test_sinkhorn_fails_exactly_without_total_support(n, bits):
    M = np.array([(bits >> k) & 1 for k in range(n * n)], dtype=float).reshape(n, n)
    if has_total_support(M):
        W = weights.sinkhorn(M)
        assert weights.is_doubly_stochastic(W, atol=1e-10)
        assert np.array_equal(W > 0, M > 0)
    else:
        with pytest.raises(TopologyError, match="lacks total support"):
            weights.sinkhorn(M)


@pytest.mark.parametrize(
    ("M", "message"),
    [
        ([[1, 1], [0, 1]], r"W\[0, 1\] lies on no positive diagonal"),
        # No zero row or column, yet row 2 alone reaches column 2, so W[2, 0] must vanish.
        ([[1, 1, 0], [1, 1, 0], [1, 1, 1]], r"W\[2, 0\] lies on no positive diagonal"),
        ([[1, 1], [0, 0]], "no positive diagonal at all"),
        ([[1, 2, 3]], "must be an n x n array"),
        ([[1, -1], [0, 1]], r"W\[0, 1\] = -1; mixing weights must be >= 0"),
    ],
)
def test_sinkhorn_rejects_bad_matrices_in_one_line(M, message):
    with pytest.raises(TopologyError, match=message) as error:
        weights.sinkhorn(M)
    assert "\n" not in str(error.value)


def test_sinkhorn_says_when_it_runs_out_of_iterations():
    M = np.random.default_rng(0).random((4, 4)) + 0.1
    with pytest.raises(TopologyError, match="after max_iter=1 scalings; raise max_iter"):
        weights.sinkhorn(M, tol=0, max_iter=1)


def test_stochastic_predicates_reject_near_misses():
    W = np.array([[0.5, 0.5], [0.7, 0.3]])
    assert weights.is_row_stochastic(W) and not weights.is_column_stochastic(W)
    assert weights.is_column_stochastic(W.T) and not weights.is_row_stochastic(W.T)
    assert not weights.is_row_stochastic(np.array([[1.5, -0.5], [0.5, 0.5]]))
    assert not weights.is_column_stochastic(np.ones((2, 3)) / 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: weights.random_row_stochastic(0), r"random_row_stochastic\(n\): n must be"),
        (lambda: weights.random_doubly_stochastic(3, seed=-1), "seed must be an integer >= 0"),
        (lambda: weights.uniform_doubly_stochastic(2.5), "n must be an integer >= 1"),
        (lambda: weights.random_row_stochastic(4, support=graphs.ring(5)), "support has 5 nodes"),
        (
            lambda: weights.random_row_stochastic(1, support=nx.Graph([("a", "b")])),
            "labeled 0..n-1",
        ),
        (lambda: weights.column_stochastic(np.eye(2)), "expected a networkx Graph"),
        (lambda: weights.check([[np.nan]]), "nan or inf"),
        (lambda: weights.check("abc"), "must be a numeric n x n array"),
        (lambda: weights.check(np.zeros((0, 0))), "n >= 1"),
    ],
)
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(TopologyError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_check_returns_a_float_copy():
    M = [[1, 0], [0, 1]]
    W = weights.check(M)
    assert W.dtype == np.float64 and np.array_equal(W, np.eye(2))
    A = np.eye(2)
    assert weights.check(A) is not A
