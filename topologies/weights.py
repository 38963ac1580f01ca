"""Mixing matrices W for gossip averaging on a graph, and the numbers that judge them.

Nodes must be labeled 0..n-1 (topologies.graphs.check relabels any graph); row i of W
belongs to node i. A synchronous gossip round is X <- W X with the nodes' parameter
vectors as the rows of X. How fast repeated rounds reach the average is set by the second
largest eigenvalue modulus of W: the smaller, the faster.

Conventions: W is an (n, n) float64 array and W[i, j] is the weight node i gives to node
j's value, x_i <- sum_j W_ij x_j. Row-stochastic (rows sum to 1) means each node's result is
a weighted average; column-stochastic (columns sum to 1) means each sender hands out exactly
what it had, as in push-sum; doubly stochastic is both, and keeps the plain average. The
support says who talks to whom: W[i, j] > 0 with i != j means i receives from j (edge
j -> i). Where a function takes a `support` graph, its edge j -> i (either direction on an
undirected Graph) opens the entry W[i, j].
"""

import networkx as nx
import numpy as np

from topologies.checks import TopologyError, _require_int
from topologies.matrices import (
    check,
    is_column_stochastic,
    is_doubly_stochastic,
    is_row_stochastic,
    sinkhorn,
)

__all__ = [
    "check",
    "column_stochastic",
    "is_column_stochastic",
    "is_doubly_stochastic",
    "is_row_stochastic",
    "metropolis_hastings",
    "random_doubly_stochastic",
    "random_row_stochastic",
    "second_eigenvalue",
    "sinkhorn",
    "uniform",
    "uniform_doubly_stochastic",
]


def metropolis_hastings(G: nx.Graph) -> np.ndarray:
    """Metropolis-Hastings weights: w_ij = 1 / (1 + max(d_i, d_j)) on edges, w_ii = 1 - sum.

    Symmetric and doubly stochastic on any undirected graph, using only the degrees of the
    two ends of each edge, so every node can compute its row from its neighbours alone.

    References
    ----------
    L. Xiao, S. Boyd, S. Lall, "A Scheme for Robust Distributed Sensor Fusion Based on
    Average Consensus", IPSN 2005.
    """
    if isinstance(G, nx.DiGraph):
        raise TopologyError(
            "metropolis_hastings needs an undirected graph; "
            "use uniform(G) for a DiGraph, or G.to_undirected()"
        )
    A = _adjacency(G)
    d = A.sum(axis=1)
    W = A / (1 + np.maximum(d[:, None], d[None, :]))
    np.fill_diagonal(W, 1 - W.sum(axis=1))
    return W


def uniform(G: nx.Graph) -> np.ndarray:
    """Equal weights over the closed neighbourhood: w_ij = 1 / (d_i + 1) for j = i or i -> j.

    Row-stochastic. On a DiGraph, d_i is the out-degree and row i is the share node i pushes
    to itself and each out-neighbour, as in push-sum (receivers mix with W.T).

    References
    ----------
    M. Assran, N. Loizou, N. Ballas, M. Rabbat, "Stochastic Gradient Push for Distributed
    Deep Learning", ICML 2019.
    """
    A = _adjacency(G)
    return (A + np.eye(len(A))) / (A.sum(axis=1) + 1)[:, None]


def second_eigenvalue(W: np.ndarray) -> float:
    """Second largest eigenvalue modulus of W (1 - spectral gap); 0.0 for a single node."""
    W = np.asarray(W, dtype=float)
    # eigvalsh is exact to rounding on symmetric matrices, where eigvals may drift by 1e-15i.
    eigenvalues = np.linalg.eigvalsh(W) if np.array_equal(W, W.T) else np.linalg.eigvals(W)
    moduli = np.sort(np.abs(eigenvalues))[::-1]
    return float(moduli[1]) if len(moduli) > 1 else 0.0


def column_stochastic(G: nx.Graph) -> np.ndarray:
    """Push-sum weights: node j splits its value equally over itself and its out-neighbours.

    W[i, j] = 1 / (d_j + 1) for i = j or j -> i, with d_j the out-degree of j (the degree
    on an undirected Graph). Column-stochastic, and only node j's own out-degree sets its
    column, so every sender can compute its shares alone. Equal to uniform(G).T.

    Parameters
    ----------
    G : nx.Graph or nx.DiGraph
        Who sends to whom, nodes labeled 0..n-1, no self-loops.

    References
    ----------
    D. Kempe, A. Dobra, J. Gehrke, "Gossip-Based Computation of Aggregate Information",
    FOCS 2003.
    M. Assran, N. Loizou, N. Ballas, M. Rabbat, "Stochastic Gradient Push for Distributed
    Deep Learning", ICML 2019.
    """
    A = _adjacency(G)
    return (A.T + np.eye(len(A))) / (A.sum(axis=1) + 1)[None, :]


def uniform_doubly_stochastic(n: int) -> np.ndarray:
    """Every entry 1/n: one round replaces every x_i by the exact average.

    The fixed doubly stochastic "all 1/M" matrix of the GoSGD matrix experiments; the
    fastest possible mixing (second eigenvalue 0), at the price of all-to-all traffic.

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.

    References
    ----------
    L. Xiao, S. Boyd, "Fast Linear Iterations for Distributed Averaging", Systems & Control
    Letters 53(1), 2004.
    """
    _require_int(n, 1, "uniform_doubly_stochastic(n): n")
    return np.full((n, n), 1.0 / n)


def random_row_stochastic(n: int, seed: int = 0, support: nx.Graph | None = None) -> np.ndarray:
    """Random positive weights on the support, each row scaled to sum 1.

    Mirzaei's fixed random row-stochastic matrix: repeated rounds reach consensus on a
    weighted (not the plain) average, weighted by W's left Perron vector.

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.
    seed : int
        Seed of the weights; the same seed gives the same W.
    support : nx.Graph or nx.DiGraph, optional
        Edge j -> i opens W[i, j]; the diagonal is always positive. Default: the complete
        graph, every entry positive.

    References
    ----------
    M. H. DeGroot, "Reaching a Consensus", Journal of the American Statistical
    Association 69(345), 1974.
    """
    W = _random_positive(n, seed, support, "random_row_stochastic")
    return W / W.sum(axis=1, keepdims=True)


def random_doubly_stochastic(n: int, seed: int = 0, support: nx.Graph | None = None) -> np.ndarray:
    """Random positive weights on the support, scaled by sinkhorn to doubly stochastic.

    Ghaemi's constant doubly stochastic matrix: repeated rounds reach the plain average.
    With the self-loops added here, W has the total support sinkhorn needs exactly when
    every edge of the support lies on a directed cycle (any Graph or strongly connected one).

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.
    seed : int
        Seed of the weights; the same seed gives the same W.
    support : nx.Graph or nx.DiGraph, optional
        Edge j -> i opens W[i, j]; the diagonal is always positive. Default: the complete
        graph, every entry positive.

    References
    ----------
    R. Sinkhorn, "A Relationship Between Arbitrary Positive Matrices and Doubly Stochastic
    Matrices", Annals of Mathematical Statistics 35(2), 1964.
    """
    return sinkhorn(_random_positive(n, seed, support, "random_doubly_stochastic"))


def _adjacency(G):
    """0/1 adjacency matrix, A[i, j] = 1 for an edge i -> j, after checking G's labels."""
    if not isinstance(G, nx.Graph) or G.is_multigraph():
        raise TopologyError(f"expected a networkx Graph or DiGraph, got {type(G).__name__}")
    n = G.number_of_nodes()
    if set(G) != set(range(n)):
        raise TopologyError(
            "graph nodes must be labeled 0..n-1; relabel with topologies.graphs.check(G)"
        )
    if nx.number_of_selfloops(G):
        raise TopologyError(
            "graph has self-loops; the weights put them on the diagonal, "
            "remove them with G.remove_edges_from(nx.selfloop_edges(G))"
        )
    return nx.to_numpy_array(G, nodelist=range(n), weight=None)


def _random_positive(n, seed, support, caller):
    """Weights in (0, 1] on the support plus the diagonal, zero elsewhere."""
    _require_int(n, 1, f"{caller}(n): n")
    _require_int(seed, 0, f"{caller}(n, seed): seed")
    if support is None:
        mask = np.ones((n, n))
    else:
        A = _adjacency(support)
        if len(A) != n:
            raise TopologyError(
                f"{caller}(n={n}, support=...): support has {len(A)} nodes; "
                f"pass n={len(A)} or a support on {n} nodes"
            )
        mask = A.T + np.eye(n)
    # 1 - U[0, 1) lies in (0, 1], so no entry of the support comes out zero.
    return mask * (1.0 - np.random.default_rng(seed).random((n, n)))
