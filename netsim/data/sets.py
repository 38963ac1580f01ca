"""Data sets as in-memory tensors, held once per process whatever the number of nodes.

The real data sets' files are found and parsed in files.py and leaf.py; who trains on
which samples (partitioners and the per-node batch walker) is partition.py, re-exported here.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netsim.data import synthetic
from netsim.data.files import FMNIST_DEFAULT_DIR as FMNIST_DEFAULT_DIR
from netsim.data.files import (
    DataError,
    find_cifar10,
    find_fmnist,
    find_movielens,
    read_cifar10,
    read_fmnist,
    read_movielens,
)
from netsim.data.leaf import find_celeba, find_femnist, read_celeba, read_femnist
from netsim.data.partition import LocalData as LocalData
from netsim.data.partition import partition as partition
from netsim.data.partition import partition_users as partition_users


@dataclass(frozen=True)
class Dataset:
    """Images normalized per channel with the training set's mean and (population) std, or
    (user, item) pairs with their ratings (``task == "regress"``).

    Images are held as their bytes (``raw_train``, ``raw_test``: uint8, a quarter of float32's
    memory) and normalized where they are gathered, through a 256-entry table per channel
    (``decode``), which gives exactly the floats a normalized copy would hold. ``x_train`` and
    ``x_test`` are such a normalized copy, made on first use, for code that wants the floats.

    Data sets with users (LEAF's writers, MovieLens's raters) say which samples are whose:
    ``train_users[u]`` and ``test_users[u]`` index user u's samples, users in a fixed order,
    for ``partition(..., "per_user", users=train_users)`` and per-node evaluation. The
    tensors and index arrays are shared by every caller of ``load``: never modify them.
    """

    name: str
    raw_train: torch.Tensor  # uint8 (N, C, H, W) pixels, or int64 (N, 2) of (user, item)
    y_train: torch.Tensor  # int64 (N,) classes, or float32 (N,) ratings
    raw_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int  # 0 for ratings
    task: str = "classify"
    train_users: tuple[np.ndarray, ...] | None = None
    test_users: tuple[np.ndarray, ...] | None = None
    num_users: int = 0  # the embedding sizes of a ratings model
    num_items: int = 0
    lut: torch.Tensor | None = None  # float32 (C, 256): a pixel byte's normalized value

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.raw_train.shape[1:])

    @functools.cached_property
    def x_train(self) -> torch.Tensor:
        """The training inputs as the model takes them (float32 images), all at once."""
        return self._decoded(self.raw_train)

    @functools.cached_property
    def x_test(self) -> torch.Tensor:
        return self._decoded(self.raw_test)

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Model inputs from stored rows (on the rows' device)."""
        return decode(raw, self.lut)

    def _decoded(self, raw: torch.Tensor) -> torch.Tensor:
        if self.lut is None:
            return raw
        out = torch.empty(raw.shape, dtype=torch.float32)
        for i in range(0, len(raw), _CHUNK):  # chunks bound the index temporaries' memory
            out[i : i + _CHUNK] = self.decode(raw[i : i + _CHUNK])
        return out


def decode(raw: torch.Tensor, lut: torch.Tensor | None) -> torch.Tensor:
    """Rows (..., C, H, W) of pixel bytes as float32 through lut (C, 256); other rows as they
    are (lut None)."""
    if lut is None:
        return raw
    lut = lut.to(raw.device)
    index = raw.to(torch.int32)  # index_select on int32: 2.5 x faster than int64 indexing
    if lut.shape[0] > 1:  # channel c reads entries 256 c .. 256 c + 255
        index += torch.arange(0, 256 * lut.shape[0], 256, device=raw.device).view(-1, 1, 1)
    return lut.view(-1).index_select(0, index.reshape(-1)).view(raw.shape)


_SPLIT_SEED = 20220603  # fixed: MovieLens's per-user train/test split is the same everywhere


def load(name: str, root: str | None = None) -> Dataset:
    """Load data set ``name`` once per process: "fashion_mnist", "cifar10", "femnist",
    "celeba", "movielens", or their seeded stand-ins "synthetic_fmnist", "synthetic_cifar10",
    "synthetic_femnist" and "synthetic_movielens", used only when asked for by name.

    Fashion-MNIST is read from ``root`` if given, else from ``$NETSIM_DATA`` (the IDX folder
    itself or a folder holding ``fashion-mnist/``), else from /usr/share/datasets/fashion-mnist.
    The others have no system default: they are read from ``root`` if given, else from
    ``$NETSIM_DATA`` or its ``cifar10/``, ``femnist/``, ``celeba/`` or ``movielens/``.
    CIFAR-10 is the ``cifar-10-batches-py`` folder or its parent; FEMNIST and CelebA are
    LEAF's ``data`` folder (train/, test/ and, for CelebA, the photos) or its parent;
    MovieLens is ``ratings.csv``, its folder, or the parent of ``ml-latest-small/``, split
    70:30 within each user. ``root`` is ignored by the synthetic sets.
    """
    if name in _SYNTHETIC:
        return _load_cached(name, None)
    if name in _FILES:
        return _load_cached(name, _FILES[name][0](root))
    raise DataError(f"unknown data set {name!r}: use one of {', '.join(_NAMES)}")


def available(name: str, root: str | None = None) -> bool:
    """Whether ``load(name, root)`` would find its files (a synthetic set always does); never
    raises. Only presence is checked: a corrupt file still counts, and ``load`` reports it."""
    try:
        if name not in _FILES:
            return name in _SYNTHETIC
        _FILES[name][0](root)
    except (TypeError, OSError, ValueError):  # DataError (not found) is a ValueError
        return False
    return True


@functools.cache
def _load_cached(name: str, folder: Path | None) -> Dataset:
    # Keyed by the folder actually found, so pointing NETSIM_DATA elsewhere loads anew.
    if name in _SYNTHETIC:
        return _SYNTHETIC[name]()
    _, read, num_classes = _FILES[name]
    if num_classes == 0:
        return _ratings(name, *read(folder))
    return _dataset(name, num_classes, *read(folder))


def _synthetic_fmnist() -> Dataset:
    return _dataset("synthetic_fmnist", 10, *synthetic.fmnist())


def _synthetic_cifar10() -> Dataset:
    return _dataset("synthetic_cifar10", 10, *synthetic.cifar10())


def _synthetic_femnist() -> Dataset:
    return _dataset("synthetic_femnist", 62, *synthetic.femnist())


def _synthetic_movielens() -> Dataset:
    return _ratings("synthetic_movielens", *synthetic.movielens())


_CHUNK = 4096  # images per slice when normalizing (bincount widens bytes to 8-byte ints)


def _dataset(
    name, num_classes, x_train, y_train, x_test, y_test, train_counts=None, test_counts=None
) -> Dataset:
    """uint8 (N, C, H, W) images with the tables that normalize them by the train set's
    statistics.

    With counts, the samples are grouped by user: the first ``train_counts[0]`` are user 0's,
    and so on (a test set may hold more samples after the last user's).
    """
    if len(x_train) == 0:
        raise DataError(f"the {name} training set is empty: reinstall the data set")
    luts = []
    for c in range(x_train.shape[1]):
        # Pixels are bytes, so a histogram gives the exact mean/std and a 256-entry lookup
        # table normalizes the whole set in one gather.
        counts = sum(
            np.bincount(x_train[i : i + _CHUNK, c].ravel(), minlength=256)
            for i in range(0, len(x_train), _CHUNK)
        )
        v = np.arange(256) / 255
        mean = counts @ v / counts.sum()
        std = math.sqrt(counts @ (v - mean) ** 2 / counts.sum())
        if std == 0:
            raise DataError(f"the {name} training images are constant: reinstall the data set")
        luts.append(((v - mean) / std).astype(np.float32))

    def as_labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    def as_bytes(x: np.ndarray) -> torch.Tensor:
        x = np.ascontiguousarray(x, np.uint8)
        return torch.from_numpy(x if x.flags.writeable else x.copy())  # torch wants writable

    return Dataset(
        name,
        as_bytes(x_train),
        as_labels(y_train),
        as_bytes(x_test),
        as_labels(y_test),
        num_classes,
        train_users=None if train_counts is None else _groups(train_counts),
        test_users=None if test_counts is None else _groups(test_counts),
        lut=torch.from_numpy(np.stack(luts)),
    )


def _groups(counts) -> tuple[np.ndarray, ...]:
    """Index ranges of consecutive groups of ``counts[k]`` samples each."""
    ends = np.cumsum(counts, dtype=np.int64)
    return tuple(np.arange(end - count, end) for count, end in zip(counts, ends, strict=True))


def _ratings(name, user_ids, item_ids, ratings) -> Dataset:
    """Users and items renumbered 0..U-1 and 0..I-1 in sorted id order; each user's ratings
    shuffled with a generator seeded by the user's id, the first 70% (rounded, halves up) for
    training and the rest for testing, so a user's split never depends on the other users."""
    user_ids, users = np.unique(user_ids, return_inverse=True)
    item_ids, items = np.unique(item_ids, return_inverse=True)
    by_user = np.split(np.argsort(users, kind="stable"), np.cumsum(np.bincount(users))[:-1])
    train, test = [], []
    for user_id, rows in zip(user_ids, by_user, strict=True):
        rows = np.random.default_rng([_SPLIT_SEED, int(user_id)]).permutation(rows)
        cut = (7 * len(rows) + 5) // 10
        train.append(np.sort(rows[:cut]))
        test.append(np.sort(rows[cut:]))
    pairs = np.stack([users, items], axis=1).astype(np.int64)
    train_rows, test_rows = np.concatenate(train), np.concatenate(test)
    return Dataset(
        name,
        torch.from_numpy(pairs[train_rows]),
        torch.from_numpy(ratings[train_rows]),
        torch.from_numpy(pairs[test_rows]),
        torch.from_numpy(ratings[test_rows]),
        num_classes=0,
        task="regress",
        train_users=_groups([len(rows) for rows in train]),
        test_users=_groups([len(rows) for rows in test]),
        num_users=len(user_ids),
        num_items=len(item_ids),
    )


_FILES = {  # name: (finder, reader, number of classes, 0 for ratings)
    "fashion_mnist": (find_fmnist, read_fmnist, 10),
    "cifar10": (find_cifar10, read_cifar10, 10),
    "femnist": (find_femnist, read_femnist, 62),
    "celeba": (find_celeba, read_celeba, 2),
    "movielens": (find_movielens, read_movielens, 0),
}
_SYNTHETIC = {
    "synthetic_fmnist": _synthetic_fmnist,
    "synthetic_cifar10": _synthetic_cifar10,
    "synthetic_femnist": _synthetic_femnist,
    "synthetic_movielens": _synthetic_movielens,
}
_NAMES = (  # each real set, then its stand-in
    "fashion_mnist",
    "synthetic_fmnist",
    "cifar10",
    "synthetic_cifar10",
    "femnist",
    "synthetic_femnist",
    "celeba",
    "movielens",
    "synthetic_movielens",
)
