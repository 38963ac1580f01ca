"""Time-varying mixing: a periodic sequence of matrices W_0, W_1, ..., one per round.

Conventions as in topologies.weights: W_t is an (n, n) float64 array and round t mixes
x_i <- sum_j W_t[i, j] x_j, so W_t[i, j] > 0 with i != j means node i receives from node j
in round t (edge j -> i). Row-stochastic W_t (each node's weights sum to 1) keep every x_i a
weighted average; column-stochastic W_t (what each sender hands out sums to 1) conserve the
total, as push-sum needs.

A sequence can reach consensus although no single W_t connects the nodes: it suffices that
the union of the supports over every `period` consecutive rounds is strongly connected.
`periodic` checks exactly that for one period, which covers every window of a periodic
sequence.
"""

import operator

import networkx as nx
import numpy as np

from topologies import weights
from topologies.checks import TopologyError, _require_int

# Row or column sums may miss 1 by rounding; a user's typo misses by far more.
ATOL = 1e-9

# The axis whose sums must be 1, and how a user would make them so.
_SUMS = {"row": (1, "W / W.sum(axis=1, keepdims=True)"), "column": (0, "W / W.sum(axis=0)")}


class Schedule:
    """The periodic sequence W_t = matrices[t % period] for rounds t = 0, 1, 2, ...

    Holds its own copies and hands out copies, so neither the arrays it was built from nor
    a matrix a caller changes in place can alter the schedule.

    Parameters
    ----------
    matrices : sequence of array_like
        One period of n x n non-negative matrices, all with the same n. Which sums must be
        1 is checked by `periodic`, not here.
    """

    def __init__(self, matrices):
        self._matrices = tuple(weights.check(W, f"matrix {t}") for t, W in enumerate(matrices))
        if not self._matrices:
            raise TopologyError("a Schedule needs at least one matrix, e.g. Schedule([W])")
        for t, W in enumerate(self._matrices):
            if len(W) != self.n:
                raise TopologyError(
                    f"matrix {t} is {len(W)} x {len(W)} but matrix 0 is {self.n} x {self.n}; "
                    f"every matrix of a schedule must have the same n"
                )

    @property
    def period(self) -> int:
        return len(self._matrices)

    @property
    def n(self) -> int:
        return len(self._matrices[0])

    def __len__(self) -> int:
        return self.period

    def __getitem__(self, t: int) -> np.ndarray:
        return self._matrices[operator.index(t) % self.period].copy()

    def __iter__(self):
        # One period: without this, iteration would fall back to __getitem__ and never end.
        return (self[t] for t in range(self.period))

    def __repr__(self) -> str:
        return f"Schedule(n={self.n}, period={self.period})"

    def union_graph(self) -> nx.DiGraph:
        """Edge j -> i when some W_t[i, j] > 0 (i != j): who reaches whom within a period."""
        return _graph(np.any([W > 0 for W in self._matrices], axis=0))


def periodic(
    matrices, *, stochastic: str = "row", require_each_disconnected: bool = True
) -> Schedule:
    """A validated Schedule whose union over one period is strongly connected.

    Parameters
    ----------
    matrices : sequence of array_like
        One period of n x n non-negative matrices with the same n.
    stochastic : {"row", "column"}
        Which sums must be 1: "row" for averaging (x_i <- sum_j W_ij x_j), "column" for
        push-sum, where each sender's shares sum to 1.
    require_each_disconnected : bool
        Also require that no matrix is strongly connected on its own, which is what makes
        the sequence only periodically strongly connected.

    Returns
    -------
    Schedule

    References
    ----------
    A. Nedic, A. Ozdaglar, "Distributed Subgradient Methods for Multi-Agent Optimization",
    IEEE Transactions on Automatic Control 54(1), 2009.
    A. Nedic, A. Olshevsky, "Distributed Optimization Over Time-Varying Directed Graphs",
    IEEE Transactions on Automatic Control 60(3), 2015.
    """
    if stochastic not in _SUMS:
        raise TopologyError(f"stochastic must be 'row' or 'column', got {stochastic!r}")
    schedule = Schedule(matrices)
    axis, fix = _SUMS[stochastic]
    for t, W in enumerate(schedule):
        sums = W.sum(axis=axis)
        bad = np.flatnonzero(np.abs(sums - 1) > ATOL)
        if bad.size:
            raise TopologyError(
                f"matrix {t} is not {stochastic}-stochastic: {stochastic} {bad[0]} sums to "
                f"{sums[bad[0]]:.12g}; normalise it, e.g. {fix}"
            )
    union = schedule.union_graph()
    if not nx.is_strongly_connected(union):
        raise TopologyError(
            f"the union of the {schedule.period} matrices over one period is not strongly "
            f"connected ({nx.number_strongly_connected_components(union)} components); add "
            f"entries so every node's value reaches every other node"
        )
    if require_each_disconnected:
        for t, W in enumerate(schedule):
            if nx.is_strongly_connected(_graph(W > 0)):
                raise TopologyError(
                    f"matrix {t} is strongly connected on its own, so the sequence is not "
                    f"merely periodically strongly connected; remove some of its entries or "
                    f"pass require_each_disconnected=False"
                )
    return schedule


def periodic_strongly_connected(n: int, period: int = 5, seed: int = 0) -> Schedule:
    """Random row-stochastic W_0..W_{period-1}, none strongly connected, their union is.

    Each W_t pairs the nodes up (a random near-perfect matching, both directions), so every
    node has a partner in every round (one sits out when n is odd), yet with n >= 3 no single
    matrix is strongly connected. The edges of a random Hamiltonian path are dealt round-robin
    to the matrices first (consecutive path edges land in different matrices, so each stays a
    matching), which makes the union over one period strongly connected. Each W_t puts random
    positive weights on its edges and its diagonal (weights.random_row_stochastic). For n = 2
    the one pair talks in one direction per matrix. The defaults give Ghaemi's setting: a
    periodically strongly connected sequence of 5 matrices.

    Parameters
    ----------
    n : int
        Number of nodes, at least 2.
    period : int
        Number of matrices, at least 2 (a single one would have to connect the nodes).
    seed : int
        Seed of the graph and the weights; the same seed gives the same schedule.

    References
    ----------
    A. Nedic, A. Olshevsky, "Distributed Optimization Over Time-Varying Directed Graphs",
    IEEE Transactions on Automatic Control 60(3), 2015.
    """
    _require_int(n, 2, "periodic_strongly_connected(n): n")
    _require_int(period, 2, "periodic_strongly_connected(n, period): period")
    _require_int(seed, 0, "periodic_strongly_connected(n, period, seed): seed")
    rng = np.random.default_rng(seed)
    order = [int(u) for u in rng.permutation(n)]
    pairs: list[list[tuple[int, int]]] = [[] for _ in range(period)]
    for k in range(n - 1):
        pairs[k % period].append((order[k], order[k + 1]))
    matrices = []
    for t in range(period):
        G = nx.DiGraph()
        G.add_nodes_from(range(n))
        if n == 2:
            G.add_edge(*((0, 1) if t % 2 == 0 else (1, 0)))
        else:
            matched = {u for pair in pairs[t] for u in pair}
            free = [int(u) for u in rng.permutation(n) if u not in matched]
            pairs[t] += list(zip(free[0::2], free[1::2], strict=False))  # odd n: one sits out
            G.add_edges_from(pairs[t])
            G.add_edges_from((v, u) for u, v in pairs[t])
        matrices.append(weights.random_row_stochastic(n, seed=int(rng.integers(2**32)), support=G))
    return periodic(matrices)


def one_peer_exponential(n: int) -> Schedule:
    """SGP's time-varying exponential graph: in round t node i pushes half to one peer.

    Round t uses hop 2**k with k = t mod period, period = floor(log2(n - 1)) + 1: node i
    keeps half its value and sends half to (i + 2**k) mod n, so W_t[i, i] = 1/2 and
    W_t[(i + 2**k) % n, i] = 1/2. Each node also receives exactly one message, so every
    W_t is doubly stochastic; when n is a power of two, one period averages exactly
    (the product of the W_t is 11^T / n).

    Parameters
    ----------
    n : int
        Number of nodes, at least 2.

    References
    ----------
    M. Assran, N. Loizou, N. Ballas, M. Rabbat, "Stochastic Gradient Push for Distributed
    Deep Learning", ICML 2019.
    """
    _require_int(n, 2, "one_peer_exponential(n): n")
    identity = np.eye(n)
    # Rolling the rows of I by h puts a 1 at [(i + h) % n, i]: node i's value moves to i + h.
    matrices = [
        (identity + np.roll(identity, 2**k, axis=0)) / 2 for k in range((n - 1).bit_length())
    ]
    return periodic(matrices, stochastic="column", require_each_disconnected=False)


def schedule_of(obj) -> Schedule:
    """obj itself if it is a Schedule, else the constant schedule W_t = obj (period 1)."""
    if isinstance(obj, Schedule):
        return obj
    return Schedule([weights.check(obj)])


def _graph(mask):
    """DiGraph on 0..n-1 with edge j -> i for every off-diagonal mask[i, j], in sorted order."""
    G = nx.DiGraph()
    G.add_nodes_from(range(len(mask)))
    G.add_edges_from((int(j), int(i)) for j, i in np.argwhere(mask.T) if i != j)
    return G
