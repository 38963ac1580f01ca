import math

import networkx as nx
import pytest

from topologies import graphs
from topologies.graphs import TopologyError


def degrees(G):
    return sorted({d for _, d in G.degree()})


def assert_labeled_in_order(G):
    assert list(G) == list(range(G.number_of_nodes()))
    for u in G:
        assert list(G.adj[u]) == sorted(G.adj[u])


@pytest.mark.parametrize("n", [3, 5, 12])
def test_ring_is_2_regular_with_n_edges(n):
    G = graphs.ring(n)
    assert (G.number_of_nodes(), G.number_of_edges(), degrees(G)) == (n, n, [2])
    assert all(G.has_edge(i, (i + 1) % n) for i in range(n))


@pytest.mark.parametrize(("rows", "cols"), [(3, 3), (3, 5), (4, 4)])
def test_torus_is_4_regular_with_wraparound(rows, cols):
    G = graphs.torus(rows, cols)
    assert (G.number_of_nodes(), G.number_of_edges(), degrees(G)) == (
        rows * cols,
        2 * rows * cols,
        [4],
    )
    assert G.has_edge(0, cols - 1) and G.has_edge(0, (rows - 1) * cols)


def test_thin_tori_drop_duplicate_and_self_edges():
    assert nx.utils.graphs_equal(graphs.torus(1, 5), graphs.ring(5))
    assert degrees(graphs.torus(2, 4)) == [3]


@pytest.mark.parametrize("dim", [0, 1, 3, 4])
def test_hypercube_is_dim_regular_on_integer_labels(dim):
    G = graphs.hypercube(dim)
    assert G.number_of_nodes() == 2**dim
    assert G.number_of_edges() == dim * 2**dim // 2
    assert all(d == dim for _, d in G.degree())
    assert all(bin(u ^ v).count("1") == 1 for u, v in G.edges)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_complete(n):
    G = graphs.complete(n)
    assert (G.number_of_nodes(), G.number_of_edges()) == (n, n * (n - 1) // 2)


@pytest.mark.parametrize("n", [2, 6])
def test_star_has_hub_0_and_n_nodes(n):
    G = graphs.star(n)
    assert (G.number_of_nodes(), G.number_of_edges(), G.degree(0)) == (n, n - 1, n - 1)
    assert all(G.degree(i) == 1 for i in range(1, n))


@pytest.mark.parametrize(("n", "out_degree"), [(8, 3), (16, 4), (9, 4), (2, 1)])
def test_exponential_out_degree_is_floor_log2_plus_one(n, out_degree):
    G = graphs.exponential(n)
    assert G.is_directed() and G.number_of_nodes() == n
    assert out_degree == math.floor(math.log2(n - 1)) + 1
    assert all(G.out_degree(i) == G.in_degree(i) == out_degree for i in range(n))
    assert set(G.successors(n - 1)) == {(n - 1 + 2**k) % n for k in range(out_degree)}
    assert nx.is_strongly_connected(G)


def test_k_regular_degrees_and_seeds():
    G = graphs.k_regular(20, 3, seed=1)
    assert degrees(G) == [3] and G.number_of_nodes() == 20 and nx.is_connected(G)
    assert list(G.edges) == list(graphs.k_regular(20, 3, seed=1).edges)
    assert set(G.edges) != set(graphs.k_regular(20, 3, seed=2).edges)


def test_k_regular_retries_until_connected():
    # A random 2-regular graph is a union of cycles; on 30 nodes most draws split.
    draws = [nx.random_regular_graph(2, 30, seed=s) for s in range(10)]
    first_disconnected = next(s for s, G in enumerate(draws) if not nx.is_connected(G))
    G = graphs.k_regular(30, 2, seed=first_disconnected)
    assert nx.is_connected(G) and degrees(G) == [2]


def test_erdos_renyi_retries_until_connected_and_reproduces():
    G = graphs.erdos_renyi(20, 0.15, seed=3)
    assert G.number_of_nodes() == 20 and nx.is_connected(G)
    assert list(G.edges) == list(graphs.erdos_renyi(20, 0.15, seed=3).edges)


def test_erdos_renyi_gives_up_with_a_clear_error():
    with pytest.raises(TopologyError, match="no connected graph in 100 draws.*raise p"):
        graphs.erdos_renyi(10, 0.0)


@pytest.mark.parametrize(
    "G",
    [
        graphs.ring(6),
        graphs.torus(3, 4),
        graphs.hypercube(3),
        graphs.star(5),
        graphs.k_regular(10, 4, seed=5),
        graphs.erdos_renyi(12, 0.3, seed=5),
        graphs.exponential(10),
    ],
)
def test_builders_label_nodes_and_neighbours_in_order(G):
    assert_labeled_in_order(G)


@pytest.mark.parametrize(
    ("name", "n", "kwargs", "expected"),
    [
        ("ring", 7, {}, graphs.ring(7)),
        ("torus", 16, {}, graphs.torus(4, 4)),
        ("hypercube", 8, {}, graphs.hypercube(3)),
        ("complete", 4, {}, graphs.complete(4)),
        ("star", 5, {}, graphs.star(5)),
        ("k_regular", 10, {"k": 3, "seed": 4}, graphs.k_regular(10, 3, seed=4)),
        ("erdos_renyi", 10, {"p": 0.4}, graphs.erdos_renyi(10, 0.4)),
        ("exponential", 8, {}, graphs.exponential(8)),
    ],
)
def test_build_by_name_matches_the_builder(name, n, kwargs, expected):
    assert nx.utils.graphs_equal(graphs.build(name, n, **kwargs), expected)


@pytest.mark.parametrize(
    ("name", "n", "kwargs", "message"),
    [
        ("mesh", 4, {}, "unknown topology 'mesh'; use one of: ring, torus"),
        ("torus", 12, {}, "perfect square"),
        ("hypercube", 6, {}, "power of two, e.g. 4 or 8"),
        ("k_regular", 8, {}, "needs k"),
        ("erdos_renyi", 8, {}, "needs p"),
        ("ring", 8, {"k": 2}, "unknown options \\['k'\\]; allowed: none"),
        ("ring", 2, {}, "ring\\(n\\): n must be an integer >= 3, got 2"),
        ("k_regular", 5, {"k": 3}, "impossible"),
        ("k_regular", 6, {"k": 1}, "never connected"),
        ("erdos_renyi", 5, {"p": 1.5}, "probability"),
        ("erdos_renyi", 5, {"p": 0.5, "seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_build_rejects_bad_input_in_one_line(name, n, kwargs, message):
    with pytest.raises(TopologyError, match=message) as error:
        graphs.build(name, n, **kwargs)
    assert "\n" not in str(error.value)


def test_check_relabels_in_sorted_label_order_and_keeps_attributes():
    G = nx.Graph()
    G.add_edge("c", "a", latency=0.005)
    G.add_edge("b", "c")
    G.nodes["b"]["speed"] = 2.0
    H = graphs.check(G, require_connected=True)
    assert_labeled_in_order(H)
    assert set(H.edges) == {(0, 2), (1, 2)}
    assert H.edges[0, 2]["latency"] == 0.005 and H.nodes[1]["speed"] == 2.0


def test_check_keeps_direction():
    H = graphs.check(nx.DiGraph([(10, 20), (20, 30), (30, 10)]), require_connected=True)
    assert H.is_directed() and set(H.edges) == {(0, 1), (1, 2), (2, 0)}


def test_check_rejects_disconnected_graphs_with_one_line():
    G = nx.Graph([(0, 1), (2, 3)])
    G.add_node(4)
    assert graphs.check(G).number_of_nodes() == 5
    with pytest.raises(TopologyError) as error:
        graphs.check(G, require_connected=True)
    assert str(error.value) == (
        "topology is not connected: it has 3 components; add edges or use topologies.graphs.ring(5)"
    )


def test_check_requires_strong_connectivity_of_digraphs():
    with pytest.raises(TopologyError, match="not strongly connected: it has 3 components"):
        graphs.check(nx.DiGraph([(0, 1), (1, 2)]), require_connected=True)


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ([(0, 1)], "must be a networkx Graph or DiGraph, got list"),
        (nx.MultiGraph([(0, 1), (0, 1)]), "parallel edges"),
        (nx.Graph(), "no nodes"),
        (nx.Graph([(0, 1), (1, 1)]), "1 self-loop\\(s\\), e.g. at node 1"),
        (nx.Graph([(0, "a")]), "labels cannot be sorted"),
    ],
)
def test_check_rejects_malformed_graphs(graph, message):
    with pytest.raises(TopologyError, match=message) as error:
        graphs.check(graph)
    assert "\n" not in str(error.value)
