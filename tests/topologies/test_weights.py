import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topologies import graphs, weights
from topologies.graphs import TopologyError


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 9), p=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_metropolis_hastings_is_symmetric_and_doubly_stochastic(n, p, seed):
    G = nx.gnp_random_graph(n, p, seed=seed)
    W = weights.metropolis_hastings(G)
    assert np.array_equal(W, W.T)
    assert weights.is_doubly_stochastic(W)
    for i, j in G.edges:
        assert W[i, j] == 1 / (1 + max(G.degree(i), G.degree(j)))
    assert np.count_nonzero(W - np.diag(np.diag(W))) == 2 * G.number_of_edges()


@pytest.mark.parametrize("n", range(5, 13))
def test_ring_second_eigenvalue_is_the_closed_form(n):
    W = weights.metropolis_hastings(graphs.ring(n))
    expected = 1 / 3 + 2 / 3 * math.cos(2 * math.pi / n)
    assert weights.second_eigenvalue(W) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("k", range(3, 7))
def test_torus_second_eigenvalue_is_the_closed_form(k):
    W = weights.metropolis_hastings(graphs.torus(k, k))
    expected = (3 + 2 * math.cos(2 * math.pi / k)) / 5
    assert weights.second_eigenvalue(W) == pytest.approx(expected, abs=1e-12)


def test_complete_graph_mixes_in_one_round():
    W = weights.metropolis_hastings(graphs.complete(6))
    assert np.allclose(W, np.full((6, 6), 1 / 6), rtol=0, atol=1e-15)
    assert weights.second_eigenvalue(W) == pytest.approx(0, abs=1e-12)


def test_second_eigenvalue_of_a_disconnected_graph_is_one():
    W = weights.metropolis_hastings(nx.Graph([(0, 1), (2, 3)]))
    assert weights.second_eigenvalue(W) == pytest.approx(1, abs=1e-12)


def test_second_eigenvalue_of_a_single_node_is_zero():
    assert weights.second_eigenvalue(np.ones((1, 1))) == 0.0


def test_second_eigenvalue_takes_the_modulus_of_complex_eigenvalues():
    # A directed 3-cycle permutation has eigenvalues 1, exp(+-2 pi i / 3): all modulus 1.
    P = np.roll(np.eye(3), 1, axis=1)
    assert weights.second_eigenvalue(0.5 * np.eye(3) + 0.5 * P) == pytest.approx(0.5)


def test_uniform_weights_on_a_star():
    W = weights.uniform(graphs.star(4))
    assert np.allclose(W[0], 1 / 4) and np.allclose(W.sum(axis=1), 1)
    assert W[1, 1] == W[1, 0] == 1 / 2 and W[1, 2] == 0


@pytest.mark.parametrize("n", [8, 16])
def test_uniform_on_exponential_graph_uses_out_neighbours(n):
    G = graphs.exponential(n)
    W = weights.uniform(G)
    share = 1 / (G.out_degree(0) + 1)
    assert set(np.flatnonzero(W[0])) == {0, *G.successors(0)}
    assert np.all(W[W > 0] == share)
    # Every node also has in-degree out_degree, so this W happens to be doubly stochastic.
    assert weights.is_doubly_stochastic(W)


def test_is_doubly_stochastic_rejects_near_misses():
    assert not weights.is_doubly_stochastic(np.array([[0.5, 0.5], [0.6, 0.4]]))
    assert not weights.is_doubly_stochastic(np.array([[1.5, -0.5], [-0.5, 1.5]]))
    assert not weights.is_doubly_stochastic(np.ones((2, 3)) / 3)
    assert weights.is_doubly_stochastic(np.eye(3))


@pytest.mark.parametrize(
    ("func", "graph", "message"),
    [
        (weights.metropolis_hastings, graphs.exponential(4), "needs an undirected graph"),
        (weights.uniform, nx.Graph([("a", "b")]), "labeled 0..n-1.*check"),
        (weights.uniform, nx.Graph([(0, 1), (1, 1)]), "self-loops"),
        (weights.metropolis_hastings, np.eye(2), "expected a networkx Graph"),
    ],
)
def test_bad_graphs_raise_one_line(func, graph, message):
    with pytest.raises(TopologyError, match=message) as error:
        func(graph)
    assert "\n" not in str(error.value)
