"""Mixing matrices W for gossip averaging on a graph, and the numbers that judge them.

Nodes must be labeled 0..n-1 (topologies.graphs.check relabels any graph); row i of W
belongs to node i. A synchronous gossip round is X <- W X with the nodes' parameter
vectors as the rows of X. How fast repeated rounds reach the average is set by the second
largest eigenvalue modulus of W: the smaller, the faster.
"""

import networkx as nx
import numpy as np

from topologies.graphs import TopologyError


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


def is_doubly_stochastic(W: np.ndarray, atol: float = 1e-12) -> bool:
    """Square, non-negative, and every row and column sums to 1 (within atol)."""
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        return False
    ones = np.ones(len(W))
    return bool(
        (W >= -atol).all()
        and np.allclose(W.sum(axis=1), ones, rtol=0, atol=atol)
        and np.allclose(W.sum(axis=0), ones, rtol=0, atol=atol)
    )


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
