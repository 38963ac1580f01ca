"""Pure helpers shared by the algorithms: layouts, global models and compression.

Nothing here touches the simulator, so each function is tested on plain tensors.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch


class AlgorithmError(ValueError):
    """A hyper-parameter that does not fit the run (one line: what and how to fix it)."""


def check_peers(name: str, workers: int) -> None:
    """An algorithm that averages with peers has nobody to average with alone."""
    if workers < 2:
        raise AlgorithmError(
            f"{name} averages with peers: it needs workers >= 2, got workers={workers} (the "
            "single-machine baseline is SGD())"
        )


def check_matrix(name: str, W, workers: int) -> None:
    """A mixing matrix or schedule must have one row and column per worker, of finite
    weights >= 0."""
    if not hasattr(W, "period"):
        try:
            M = np.asarray(W, dtype=float)
        except (TypeError, ValueError):
            M = np.zeros(0)
        if M.ndim != 2 or M.shape[0] != M.shape[1] or not (np.isfinite(M) & (M >= 0)).all():
            raise AlgorithmError(f"{name} is a square matrix of weights >= 0, got {W!r}")
    n = W.n if hasattr(W, "period") else M.shape[0]
    if n != workers:
        raise AlgorithmError(
            f"{name} is {n} x {n} but the run has {workers} workers: build it for {workers} "
            "nodes or set workers to match"
        )


def peers(graph: nx.Graph) -> tuple[nx.Graph, list[tuple[str, ...]]]:
    """Every node of the graph is a worker that also answers its peers' requests."""
    return graph, [("worker", "serve")] * graph.number_of_nodes()


def solo(graph: nx.Graph) -> tuple[nx.Graph, list[tuple[str, ...]]]:
    """Every node trains alone (a single-machine baseline when the graph has one node)."""
    return graph, [("worker",)] * graph.number_of_nodes()


def with_server(graph: nx.Graph) -> tuple[nx.Graph, list[tuple[str, ...]]]:
    """Adds one server node (id n) linked to every worker; the workers' own edges are unused."""
    n = graph.number_of_nodes()
    star = nx.Graph()
    star.add_nodes_from(range(n + 1))
    star.add_edges_from((i, n) for i in range(n))
    return star, [("worker",)] * n + [("server",)]


def worker_mean(X: torch.Tensor, roles: list[str]) -> torch.Tensor:
    """The average of the workers' parameter rows."""
    rows = [i for i, role in enumerate(roles) if role == "worker"]
    return X[rows].mean(0) if len(rows) < len(roles) else X.mean(0)


def server_row(X: torch.Tensor, roles: list[str]) -> torch.Tensor:
    return X[roles.index("server")]


def mean_threshold(v: torch.Tensor, segments: list[tuple[int, int]]):
    """Per-layer sparsification: keep entries with |v| >= the mean |v| of their layer.

    Returns int32 indices and the kept values; sends about half of each layer or less.
    """
    lengths = torch.tensor([end - start for start, end in segments], device=v.device)
    means = torch.stack([v[start:end].abs().mean() for start, end in segments])
    keep = v.abs() >= torch.repeat_interleave(means, lengths)
    idx = keep.nonzero().squeeze(1)
    return idx.to(torch.int32), v[idx]


def gossip_merge(x: torch.Tensor, log_alpha: float, x_j: torch.Tensor, log_alpha_j: float) -> float:
    """GoSGD's merge, in place: x <- (alpha x + alpha_j x_j) / (alpha + alpha_j); returns
    log(alpha + alpha_j). Weights are logarithms so that they never underflow (gosgd.py)."""
    total = float(np.logaddexp(log_alpha, log_alpha_j))
    if total == -math.inf:  # both weightless: nothing to weigh x_j against
        return total
    x.mul_(math.exp(log_alpha - total)).add_(x_j, alpha=math.exp(log_alpha_j - total))
    return total


def active_passive(graph: nx.Graph) -> tuple[nx.DiGraph, list[tuple[str, ...]]]:
    """AD-PSGD's split of the workers into active and passive ones: the graph returned keeps
    only the edges between the two sides, directed active -> passive, so an active node's
    out-neighbours are the passive ones it may average with. Every node trains and answers.

    The sides start as the parity of each node's hop distance from the lowest node of its
    component, which for a bipartite graph is its bipartition and keeps every edge. Then,
    node by node in id order until none moves, a node with more neighbours on its own side
    than across changes sides (each move cuts more edges, so this ends): a complete graph
    splits in halves, not one node against the rest. Should that leave the sides unable to
    reach each other, the parity split is kept: its breadth-first tree edges always cross.
    """
    g = graph.to_undirected(as_view=True) if graph.is_directed() else graph
    parity = {}
    for component in nx.connected_components(g):
        parity |= {v: d % 2 for v, d in nx.shortest_path_length(g, min(component)).items()}
    side, moved = dict(parity), True
    while moved:
        moved = False
        for v in sorted(g):
            if 2 * sum(side[u] == side[v] for u in g[v]) > len(g[v]):
                side[v], moved = 1 - side[v], True

    def directed(side: dict) -> nx.DiGraph:
        out = nx.DiGraph()
        out.add_nodes_from(graph.nodes)
        out.add_edges_from(
            (u, v) if side[u] == 0 else (v, u) for u, v in g.edges if side[u] != side[v]
        )
        return out

    split = directed(side)
    if nx.number_connected_components(split.to_undirected()) > nx.number_connected_components(g):
        split = directed(parity)
    return split, [("worker", "serve")] * graph.number_of_nodes()
