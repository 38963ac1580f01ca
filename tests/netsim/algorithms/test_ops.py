"""Pure algorithm helpers, checked without a simulator."""

import math

import networkx as nx
import pytest
import torch

from netsim.algorithms import ops


def test_mean_threshold_keeps_entries_at_or_above_each_layers_mean_magnitude():
    v = torch.tensor([1.0, -3.0, 2.0, 0.5, 0.5, -10.0])
    idx, values = ops.mean_threshold(v, [(0, 3), (3, 6)])
    # layer 1: mean |v| = 2 -> keeps -3 and 2; layer 2: mean = 11/3 -> keeps -10
    assert idx.dtype == torch.int32
    assert idx.tolist() == [1, 2, 5]
    assert values.tolist() == [-3.0, 2.0, -10.0]


def test_mean_threshold_of_a_constant_layer_keeps_it_all():
    idx, _ = ops.mean_threshold(torch.full((4,), 0.1), [(0, 4)])
    assert idx.tolist() == [0, 1, 2, 3]


def test_with_server_adds_one_hub_linked_to_every_worker():
    graph, roles = ops.with_server(nx.cycle_graph(4))
    assert roles == [("worker",)] * 4 + [("server",)]
    assert sorted(graph.edges()) == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_global_models():
    X = torch.arange(12.0).reshape(3, 4)
    assert torch.equal(ops.worker_mean(X, ["worker", "worker", "server"]), X[:2].mean(0))
    assert torch.equal(ops.worker_mean(X, ["worker"] * 3), X.mean(0))
    assert torch.equal(ops.server_row(X, ["worker", "worker", "server"]), X[2])


def test_adpsgd_split_keeps_a_bipartite_graph_whole_and_halves_a_complete_one():
    torus, _ = ops.active_passive(nx.grid_2d_graph(4, 4, periodic=True))
    assert torus.number_of_edges() == 32
    complete, roles = ops.active_passive(nx.complete_graph(8))
    assert roles == [("worker", "serve")] * 8
    assert sorted(v for v in complete if complete.out_degree(v)) == [0, 1, 2, 3]
    assert complete.number_of_edges() == 16
    for graph in (nx.cycle_graph(7), nx.random_regular_graph(3, 10, seed=2), nx.petersen_graph()):
        split, _ = ops.active_passive(graph)
        assert nx.is_connected(split.to_undirected())
        assert not any(split.in_degree(v) and split.out_degree(v) for v in split)


def test_gossip_merge_weighs_by_the_ratio_of_weights_far_below_the_smallest_float():
    x = torch.tensor([0.0, 4.0])
    # weights 1e-400 and 3e-400 (not floats): x <- (1 x + 3 x_j) / 4
    log_total = ops.gossip_merge(
        x, -400 * math.log(10), torch.tensor([4.0, 0.0]), math.log(3) - 400 * math.log(10)
    )
    assert torch.allclose(x, torch.tensor([3.0, 1.0]))
    assert log_total == pytest.approx(math.log(4) - 400 * math.log(10))


def test_gossip_merge_of_two_weightless_models_keeps_x():
    x = torch.tensor([1.0, 2.0])
    assert ops.gossip_merge(x, -math.inf, torch.zeros(2), -math.inf) == -math.inf
    assert x.tolist() == [1.0, 2.0]
