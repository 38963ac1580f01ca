"""Who trains on which samples: partitioners that split a training set across nodes, and
the per-node batch walker.

A node's local data is an int64 index array into the shared training tensors; a batch is
gathered by indexing (``x_train[idx]``), so no DataLoader processes are needed. data.py
re-exports everything public here.
"""

from __future__ import annotations

import math

import numpy as np

from netsim.data.files import DataError


def partition(
    labels: np.ndarray, n: int, scheme: str = "iid", *, rng: np.random.Generator, **kwargs
) -> list[np.ndarray]:
    """Split sample indices across ``n`` nodes; returns one sorted int64 index array per node.

    Schemes: "iid" (random equal split), "shards" (McMahan et al. 2017: sort by label, cut
    into ``n * shards_per_node`` shards, deal ``shards_per_node`` to each node), "dirichlet"
    (per class, node proportions ~ Dir(``alpha``); Hsu et al. 2019), "per_user" (whole users,
    as LEAF and decentralizepy do: ``users=dataset.train_users``, dealt by
    ``partition_users``), "data_parallel" (every node gets every index; the arrays are one
    shared read-only array).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"labels must be 1-D, got shape {labels.shape}: pass y_train")
    _check_count("number of nodes n", n)
    if scheme not in _SCHEMES:
        raise DataError(f"unknown partition {scheme!r}: use one of {', '.join(_SCHEMES)}")
    split, allowed = _SCHEMES[scheme]
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no options"
        raise DataError(f"partition={scheme!r} takes {takes}, not {', '.join(unknown)}")
    if scheme != "data_parallel" and n > len(labels):
        raise DataError(
            f"cannot split {len(labels)} samples over {n} nodes with partition={scheme!r}: "
            "use fewer nodes or partition='data_parallel'"
        )
    parts = split(labels, n, rng, **kwargs)
    if scheme == "data_parallel":
        return parts
    return [np.sort(p).astype(np.int64, copy=False) for p in parts]


def partition_users(n_users: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Deal ``n_users`` users to ``n`` nodes: shuffle them with ``rng``, then deal one at a
    time in turn, so node sizes differ by at most one user and every node gets at least one.

    Returns each node's sorted user numbers, so a simulator can also give a node its users'
    test samples (``dataset.test_users``). ``partition(..., "per_user", rng=...)`` with a
    generator in the same state gives node k the training samples of users[k] from here.
    """
    _check_count("number of users", n_users)
    _check_count("number of nodes n", n)
    if n_users < n:
        raise DataError(
            f"cannot deal {n_users} users to {n} nodes: every node needs a user; use fewer nodes"
        )
    order = rng.permutation(n_users)
    return [np.sort(order[k::n]) for k in range(n)]


def _check_count(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def _iid(labels, n, rng):
    return np.array_split(rng.permutation(len(labels)), n)


def _shards(labels, n, rng, shards_per_node=2):
    s = _check_count("shards_per_node", shards_per_node)
    if n * s > len(labels):
        raise DataError(
            f"{n} nodes x {s} shards exceed {len(labels)} samples: lower shards_per_node"
        )
    shards = np.array_split(np.argsort(labels, kind="stable"), n * s)
    return [
        np.concatenate([shards[k] for k in row]) for row in rng.permutation(n * s).reshape(n, s)
    ]


def _dirichlet(labels, n, rng, alpha=None):
    if not isinstance(alpha, (int, float, np.number)) or not 0 < alpha < math.inf:
        raise DataError(f"partition='dirichlet' needs alpha > 0 (e.g. alpha=0.5), got {alpha!r}")
    parts = [[] for _ in range(n)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = (np.cumsum(rng.dirichlet(np.full(n, float(alpha))))[:-1] * len(idx)).astype(int)
        for node, chunk in enumerate(np.split(idx, cuts)):
            parts[node].append(chunk)
    parts = [np.concatenate(p) for p in parts]
    # Small alpha leaves nodes empty; a node without data cannot train, so each empty node
    # takes one sample from the currently largest node (deterministic, keeps the skew).
    for node in range(n):
        if len(parts[node]) == 0:
            donor = int(np.argmax([len(p) for p in parts]))
            parts[node], parts[donor] = parts[donor][-1:], parts[donor][:-1]
    return parts


def _per_user(labels, n, rng, users=None):
    if users is None or len(users) == 0:
        raise DataError(
            "partition='per_user' needs users=dataset.train_users, from a data set with writers "
            "or raters (femnist, celeba, movielens, synthetic_femnist, synthetic_movielens)"
        )
    for mine in users:
        idx = np.asarray(mine)
        if (
            idx.ndim != 1
            or idx.dtype.kind not in "iu"
            or (idx.size and not 0 <= idx.min() <= idx.max() < len(labels))
        ):
            raise DataError(
                f"users must be 1-D integer index arrays into the {len(labels)} training "
                "samples: pass dataset.train_users of the same data set"
            )
    return [
        np.concatenate([users[u] for u in mine]) for mine in partition_users(len(users), n, rng)
    ]


def _data_parallel(labels, n, rng):
    everything = np.arange(len(labels), dtype=np.int64)
    everything.flags.writeable = False
    return [everything] * n


_SCHEMES = {
    "iid": (_iid, frozenset()),
    "shards": (_shards, frozenset({"shards_per_node"})),
    "dirichlet": (_dirichlet, frozenset({"alpha"})),
    "per_user": (_per_user, frozenset({"users"})),
    "data_parallel": (_data_parallel, frozenset()),
}


class LocalData:
    """Walks a node's indices epoch by epoch, reshuffled with ``rng`` at each epoch start.

    A batch never spans two epochs: a tail shorter than ``batch_size`` is dropped, unless the
    node holds fewer than ``batch_size`` samples, in which case every batch is a whole epoch.
    ``epoch`` is the 0-based epoch of the batch last returned.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, rng: np.random.Generator):
        if len(indices) == 0:
            raise DataError("a node has no local samples: use fewer nodes or another partition")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = min(_check_count("batch_size", batch_size), len(self.indices))
        self.rng = rng
        self.epoch = 0
        self._perm = rng.permutation(self.indices)
        self._pos = 0

    def next_batch(self) -> np.ndarray:
        if self._pos + self.batch_size > len(self._perm):
            self.epoch += 1
            self._perm = self.rng.permutation(self.indices)
            self._pos = 0
        batch = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return batch
