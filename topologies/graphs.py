"""Communication graphs for decentralized training, one builder per family.

Every graph returned here has nodes 0..n-1, stored in that order, and lists each node's
neighbours in ascending order, so node i of a run is node i of the graph and iterating over
neighbours is deterministic. Random families take a `seed` and, when a draw is disconnected,
draw again with seeds derived from it.
"""

import math
import numbers

import networkx as nx
import numpy as np

from topologies.checks import TopologyError, _canonical, _require_int, check

__all__ = [
    "GRAPHS",
    "TopologyError",
    "build",
    "check",
    "complete",
    "edge_count",
    "erdos_renyi",
    "exponential",
    "hypercube",
    "k_regular",
    "ring",
    "star",
    "torus",
]

MAX_TRIES = 100


def ring(n: int) -> nx.Graph:
    """Cycle: node i talks to i - 1 and i + 1 (mod n); 2-regular.

    Parameters
    ----------
    n : int
        Number of nodes, at least 3 (use `complete` for fewer).

    References
    ----------
    X. Lian et al., "Can Decentralized Algorithms Outperform Centralized Algorithms? A Case
    Study for Decentralized Parallel Stochastic Gradient Descent", NeurIPS 2017.
    """
    _require_int(n, 3, "ring(n): n")
    return _canonical(nx.cycle_graph(n))


def torus(rows: int, cols: int) -> nx.Graph:
    """2-D grid with wraparound; node r * cols + c sits at row r, column c.

    4-regular when rows, cols >= 3; a side of 2 wraps onto the same neighbour (degree 3) and
    a side of 1 leaves a ring.

    Parameters
    ----------
    rows, cols : int
        Grid sides, at least 1 each.

    References
    ----------
    A. Nedic, A. Olshevsky, M. Rabbat, "Network Topology and Communication-Computation
    Tradeoffs in Decentralized Optimization", Proceedings of the IEEE 106(5), 2018.
    """
    _require_int(rows, 1, "torus(rows, cols): rows")
    _require_int(cols, 1, "torus(rows, cols): cols")
    G = nx.empty_graph(rows * cols)
    for r in range(rows):
        for c in range(cols):
            i, right, down = r * cols + c, r * cols + (c + 1) % cols, (r + 1) % rows * cols + c
            # A side of length 1 would wrap a node onto itself.
            G.add_edges_from((i, j) for j in (right, down) if j != i)
    return _canonical(G)


def hypercube(dim: int) -> nx.Graph:
    """Hypercube: 2**dim nodes, i and j adjacent when their binary labels differ in one bit.

    Parameters
    ----------
    dim : int
        Dimension, at least 0; every node has degree `dim`.

    References
    ----------
    A. Nedic, A. Olshevsky, M. Rabbat, "Network Topology and Communication-Computation
    Tradeoffs in Decentralized Optimization", Proceedings of the IEEE 106(5), 2018.
    """
    _require_int(dim, 0, "hypercube(dim): dim")
    G = nx.empty_graph(2**dim)
    G.add_edges_from((i, i ^ (1 << b)) for i in range(2**dim) for b in range(dim))
    return _canonical(G)


def complete(n: int) -> nx.Graph:
    """Every pair of nodes is connected (all-reduce-like averaging in one step).

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.

    References
    ----------
    A. Nedic, A. Olshevsky, M. Rabbat, "Network Topology and Communication-Computation
    Tradeoffs in Decentralized Optimization", Proceedings of the IEEE 106(5), 2018.
    """
    _require_int(n, 1, "complete(n): n")
    return _canonical(nx.complete_graph(n))


def star(n: int) -> nx.Graph:
    """Node 0 is the hub, linked to the n - 1 leaves (a parameter server's traffic pattern).

    Parameters
    ----------
    n : int
        Number of nodes including the hub, at least 1.

    References
    ----------
    A. Nedic, A. Olshevsky, M. Rabbat, "Network Topology and Communication-Computation
    Tradeoffs in Decentralized Optimization", Proceedings of the IEEE 106(5), 2018.
    """
    _require_int(n, 1, "star(n): n")
    return _canonical(nx.star_graph(n - 1))


def k_regular(n: int, k: int, seed: int = 0) -> nx.Graph:
    """Connected random k-regular graph, uniform over k-regular graphs on n nodes.

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.
    k : int
        Degree of every node: 0 <= k < n, n * k even, and k >= 2 when n > 2 (below that
        the graph cannot be connected).
    seed : int
        Seed of the first draw; later draws, if that one is disconnected, derive from it.

    References
    ----------
    A. Steger, N. C. Wormald, "Generating random regular graphs quickly", Combinatorics,
    Probability and Computing 8(4), 1999.
    """
    _require_int(n, 1, "k_regular(n, k): n")
    _require_int(k, 0, "k_regular(n, k): k")
    if k >= n or n * k % 2:
        raise TopologyError(f"k_regular(n={n}, k={k}) is impossible: need k < n and n * k even")
    if k < 2 and n > 2:
        raise TopologyError(f"k_regular(n={n}, k={k}) is never connected; use k >= 2")
    return _connected(lambda s: nx.random_regular_graph(k, n, seed=s), seed, "k_regular")


def erdos_renyi(n: int, p: float, seed: int = 0) -> nx.Graph:
    """Connected G(n, p) random graph: each pair of nodes is linked with probability p.

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.
    p : float
        Edge probability in [0, 1]; above ln(n) / n the graph is connected with high
        probability.
    seed : int
        Seed of the first draw; later draws, if that one is disconnected, derive from it.

    References
    ----------
    P. Erdos, A. Renyi, "On Random Graphs I", Publicationes Mathematicae 6, 1959.
    E. N. Gilbert, "Random Graphs", Annals of Mathematical Statistics 30(4), 1959.
    """
    _require_int(n, 1, "erdos_renyi(n, p): n")
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise TopologyError(f"erdos_renyi(n, p): p must be a probability in [0, 1], got {p!r}")
    return _connected(lambda s: nx.gnp_random_graph(n, p, seed=s), seed, "erdos_renyi")


def exponential(n: int) -> nx.DiGraph:
    """Directed exponential graph: i -> (i + 2**k) mod n for k = 0..floor(log2(n - 1)).

    Every node has out-degree (and in-degree) floor(log2(n - 1)) + 1. SGP cycles through
    these out-neighbours one per iteration; this graph is their union.

    Parameters
    ----------
    n : int
        Number of nodes, at least 2.

    References
    ----------
    M. Assran, N. Loizou, N. Ballas, M. Rabbat, "Stochastic Gradient Push for Distributed
    Deep Learning", ICML 2019.
    """
    _require_int(n, 2, "exponential(n): n")
    # bit_length avoids float rounding in log2 for large n.
    hops = [2**k for k in range((n - 1).bit_length())]
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops)
    return _canonical(G)


GRAPHS = {
    "ring": ring,
    "torus": torus,
    "hypercube": hypercube,
    "complete": complete,
    "star": star,
    "k_regular": k_regular,
    "erdos_renyi": erdos_renyi,
    "exponential": exponential,
}

# Keyword arguments `build` accepts per family beyond the node count.
_OPTIONS = {"k_regular": {"k", "seed"}, "erdos_renyi": {"p", "seed"}}
_REQUIRED = {"k_regular": {"k"}, "erdos_renyi": {"p"}}


def build(name: str, n: int, **kwargs) -> nx.Graph:
    """The graph family `name` on n nodes, e.g. build("k_regular", 16, k=4, seed=1).

    A torus is square (n must be a perfect square) and a hypercube needs n a power of two.
    """
    if name not in GRAPHS:
        raise TopologyError(f"unknown topology {name!r}; use one of: {', '.join(GRAPHS)}")
    _require_int(n, 1, f"build({name!r}, n): n")
    unknown = set(kwargs) - _OPTIONS.get(name, set())
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS.get(name, ()))) or "none"
        raise TopologyError(
            f"topology {name!r} got unknown options {sorted(unknown)}; allowed: {allowed}"
        )
    missing = _REQUIRED.get(name, set()) - set(kwargs)
    if missing:
        raise TopologyError(
            f"topology {name!r} needs {', '.join(sorted(missing))}, e.g. "
            f"build({name!r}, {n}, {sorted(missing)[0]}=...)"
        )
    if name == "torus":
        side = math.isqrt(n)
        if side * side != n:
            raise TopologyError(
                f"build('torus', {n}) needs a perfect square n; "
                f"use torus(rows, cols) for a {n}-node rectangle"
            )
        return torus(side, side)
    if name == "hypercube":
        if n & (n - 1):
            raise TopologyError(
                f"build('hypercube', {n}) needs n a power of two, e.g. "
                f"{1 << (n.bit_length() - 1)} or {1 << n.bit_length()}"
            )
        return hypercube(n.bit_length() - 1)
    return GRAPHS[name](n, **kwargs)


def edge_count(name: str, n: int, **kwargs) -> float:
    """About how many edges build(name, n, **kwargs) makes (an exponential graph's directed
    ones; the expected number for erdos_renyi), without building it: a caller can refuse a
    graph too large for memory before it takes it all."""
    if not isinstance(n, int) or n < 2:
        return 0.0
    log2 = (n - 1).bit_length()
    per_node = {"ring": 1, "torus": 2, "hypercube": log2 / 2, "star": 1, "exponential": log2}
    per_node |= {"complete": (n - 1) / 2, "k_regular": kwargs.get("k", 0) / 2}
    per_node |= {"erdos_renyi": kwargs.get("p", 0) * (n - 1) / 2}
    share = per_node.get(name, 0)
    return n * share if isinstance(share, (int, float)) else 0.0


def _connected(draw, seed, family):
    """First connected graph among draw(seed), draw(derived seed 1), ..., up to MAX_TRIES."""
    _require_int(seed, 0, f"{family}(..., seed): seed")
    for attempt in range(MAX_TRIES):
        # The first draw uses the seed itself, so it matches networkx's own generator.
        derived = np.random.SeedSequence([seed, attempt]).generate_state(1)[0]
        G = draw(seed if attempt == 0 else int(derived))
        if nx.is_connected(G):
            return _canonical(G)
    raise TopologyError(
        f"{family} found no connected graph in {MAX_TRIES} draws from seed "
        f"{seed}; make it denser (raise p or k)"
    )
