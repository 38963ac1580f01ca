"""Checking and normalising mixing matrices: the stochastic properties, user-matrix
validation, and Sinkhorn-Knopp scaling to doubly stochastic. Conventions as in weights.py.
"""

import networkx as nx
import numpy as np

from topologies.checks import TopologyError


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


def is_row_stochastic(W: np.ndarray, atol: float = 1e-12) -> bool:
    """Square, non-negative, and every row sums to 1 (within atol)."""
    return _sums_to_one(W, 1, atol)


def is_column_stochastic(W: np.ndarray, atol: float = 1e-12) -> bool:
    """Square, non-negative, and every column sums to 1 (within atol)."""
    return _sums_to_one(W, 0, atol)


def check(W, name: str = "W") -> np.ndarray:
    """Validate a user-supplied mixing matrix; return it as a new float64 array.

    Checks what every mixing matrix needs (square, finite, non-negative); which sums must
    be 1 depends on the algorithm, so that is left to is_row_stochastic and friends.

    Parameters
    ----------
    W : array_like
        The matrix, n x n with n >= 1.
    name : str
        What to call W in the error message, e.g. "matrix 3".
    """
    try:
        M = np.array(W, dtype=np.float64)
    except (TypeError, ValueError):
        raise TopologyError(
            f"{name} must be a numeric n x n array, got {type(W).__name__}"
        ) from None
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.size == 0:
        raise TopologyError(f"{name} must be an n x n array with n >= 1, got shape {M.shape}")
    if not np.isfinite(M).all():
        raise TopologyError(f"{name} has nan or inf entries; mixing weights must be finite")
    if (M < 0).any():
        i, j = np.argwhere(M < 0)[0]
        raise TopologyError(f"{name}[{i}, {j}] = {M[i, j]:g}; mixing weights must be >= 0")
    return M


def sinkhorn(W, tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """Sinkhorn-Knopp: scale rows and columns of W alternately until it is doubly stochastic.

    The limit D1 W D2 (D1, D2 positive diagonal, same zeros as W) exists exactly when W has
    total support: every positive entry lies on a positive diagonal, a permutation sigma
    with all W[i, sigma(i)] > 0. Without it the iteration creeps towards zeroing entries
    and never converges, so that is checked first and the error names such an entry.

    Parameters
    ----------
    W : array_like
        Square, non-negative matrix with total support.
    tol : float
        Stop when every row sum is within tol of 1 right after the columns were scaled.
    max_iter : int
        Row-and-column scalings to try before giving up.

    References
    ----------
    R. Sinkhorn, P. Knopp, "Concerning Nonnegative Matrices and Doubly Stochastic
    Matrices", Pacific Journal of Mathematics 21(2), 1967.
    """
    W = check(W, "sinkhorn(W): W")
    why = _why_no_total_support(W)
    if why:
        raise TopologyError(
            f"sinkhorn(W): {why}, so W lacks total support and cannot be scaled to doubly "
            f"stochastic; use a strongly connected support with a positive diagonal"
        )
    error = np.inf
    for _ in range(max_iter):
        W = W / W.sum(axis=1, keepdims=True)
        W = W / W.sum(axis=0, keepdims=True)
        error = np.abs(W.sum(axis=1) - 1).max()
        if error <= tol:
            return W
    raise TopologyError(
        f"sinkhorn(W) left row sums {error:.1e} from 1 after max_iter={max_iter} scalings; "
        f"raise max_iter or tol"
    )


def _sums_to_one(W, axis, atol):
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        return False
    return bool((W >= -atol).all() and np.allclose(W.sum(axis=axis), 1, rtol=0, atol=atol))


def _why_no_total_support(W):
    """Why W lacks total support (a positive entry on no positive diagonal), or ''.

    Given one positive diagonal sigma, W[i, sigma(k)] > 0 lies on another exactly when
    rows i and k share a cycle of the graph i -> k ("row i can take row k's column"):
    shifting every row on that cycle to its successor's column is again a diagonal.
    """
    n = len(W)
    positive = [(int(i), int(j)) for i, j in np.argwhere(W > 0)]
    B = nx.Graph()
    B.add_nodes_from(range(2 * n))
    B.add_edges_from((i, n + j) for i, j in positive)
    match = nx.bipartite.hopcroft_karp_matching(B, top_nodes=range(n))
    if len(match) < 2 * n:
        return "W has no positive diagonal at all (e.g. a zero row or column)"
    owner = {match[i] - n: i for i in range(n)}
    D = nx.DiGraph((i, owner[j]) for i, j in positive)
    component = {u: c for c, part in enumerate(nx.strongly_connected_components(D)) for u in part}
    for i, j in positive:
        if component[i] != component[owner[j]]:
            return f"W[{i}, {j}] lies on no positive diagonal"
    return ""
