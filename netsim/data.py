"""Data sets as in-memory tensors, partitioners that split them across nodes, and the
per-node batch walker.

A node's local data is an int64 index array into the shared training tensors; a batch is
gathered by indexing (``x_train[idx]``), so no DataLoader processes are needed and a data
set is held once per process, whatever the number of nodes. The real data sets' files are
found and parsed in datafiles.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netsim.datafiles import FMNIST_DEFAULT_DIR as FMNIST_DEFAULT_DIR
from netsim.datafiles import DataError, find_cifar10, find_fmnist, read_cifar10, read_fmnist


@dataclass(frozen=True)
class Dataset:
    """Images normalized per channel with the training set's mean and (population) std.

    The tensors are shared by every caller of ``load``: index them, never modify them.
    """

    name: str
    x_train: torch.Tensor  # float32 (N, C, H, W)
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


_SYNTHETIC_SEED = 20170217  # fixed: the synthetic sets are the same everywhere


def load(name: str, root: str | None = None) -> Dataset:
    """Load data set ``name`` once per process: "fashion_mnist", "cifar10", or their seeded
    stand-ins "synthetic_fmnist" and "synthetic_cifar10", used only when asked for by name.

    Fashion-MNIST is read from ``root`` if given, else from ``$NETSIM_DATA`` (the IDX folder
    itself or a folder holding ``fashion-mnist/``), else from /usr/share/datasets/fashion-mnist.
    CIFAR-10 is read from ``root`` if given, else from ``$NETSIM_DATA`` or its ``cifar10/``,
    each either the ``cifar-10-batches-py`` folder itself or its parent; it has no system
    default. ``root`` is ignored by the synthetic sets.
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
    return _dataset(name, *_FILES[name][1](folder), 10)


def _synthetic_fmnist() -> Dataset:
    """6000/1000 balanced 1x28x28 images in 10 classes: a random template per class plus
    Gaussian noise, so a small model learns it in a few steps."""
    rng = np.random.default_rng(_SYNTHETIC_SEED)
    templates = rng.random((10, 1, 28, 28))

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(count) % 10)
        x = templates[y] + rng.normal(0.0, 0.5, (count, 1, 28, 28))
        return np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8), y

    x_train, y_train = draw(6000)
    x_test, y_test = draw(1000)
    return _dataset("synthetic_fmnist", x_train, y_train, x_test, y_test, 10)


def _synthetic_cifar10() -> Dataset:
    """5000/1000 balanced 3x32x32 images in 10 classes, learnable but not trivially so.

    Each class has a smooth colour pattern: per channel, a sum of four cosines of low integer
    frequency (so a cyclic shift is seamless). An image is its class's pattern shifted by up
    to 6 pixels, plus another class's pattern shifted anywhere, plus Gaussian noise. Nearest
    class mean gets 57% of the test set right; SmallCNN or CifarCNN (batch 32, plain SGD with
    lr 0.05) about 75-80% after 400 steps.
    """
    rng = np.random.default_rng(_SYNTHETIC_SEED)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    freq = rng.integers(-3, 4, (10, 3, 4, 2))
    phase = rng.uniform(0, 2 * np.pi, (10, 3, 4))
    angle = freq[..., 0, None, None] * yy + freq[..., 1, None, None] * xx
    patterns = (np.cos(2 * np.pi * angle + phase[..., None, None]).sum(axis=2) / 2).astype(
        np.float32
    )

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(count) % 10)
        clutter = (y + rng.integers(1, 10, count)) % 10  # any class but y
        x = _shifted(patterns, y, rng.integers(-6, 7, (count, 2)))
        x += _shifted(patterns, clutter, rng.integers(0, 32, (count, 2)))
        x += 1.6 * rng.standard_normal(x.shape, dtype=np.float32)
        return np.rint(np.clip(0.5 + 0.25 * x, 0.0, 1.0) * 255).astype(np.uint8), y

    x_train, y_train = draw(5000)
    x_test, y_test = draw(1000)
    return _dataset("synthetic_cifar10", x_train, y_train, x_test, y_test, 10)


def _shifted(patterns: np.ndarray, which: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """(N, C, H, W): ``patterns[which[n]]`` rolled cyclically down by ``shifts[n, 0]`` and
    right by ``shifts[n, 1]`` pixels, gathered in one indexing step."""
    _, c, h, w = patterns.shape
    rows = (np.arange(h) - shifts[:, :1]) % h
    cols = (np.arange(w) - shifts[:, 1:]) % w
    return patterns[
        which[:, None, None, None],
        np.arange(c)[:, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def _dataset(name, x_train, y_train, x_test, y_test, num_classes) -> Dataset:
    """Normalize uint8 (N, C, H, W) images to float32 with the train set's statistics."""
    if len(x_train) == 0:
        raise DataError(f"the {name} training set is empty: reinstall the data set")
    luts = []
    for c in range(x_train.shape[1]):
        # Pixels are bytes, so a histogram gives the exact mean/std and a 256-entry lookup
        # table normalizes the whole set in one gather.
        counts = np.bincount(x_train[:, c].ravel(), minlength=256)
        v = np.arange(256) / 255
        mean = counts @ v / counts.sum()
        std = math.sqrt(counts @ (v - mean) ** 2 / counts.sum())
        if std == 0:
            raise DataError(f"the {name} training images are constant: reinstall the data set")
        luts.append(((v - mean) / std).astype(np.float32))

    def normalize(x: np.ndarray) -> torch.Tensor:
        out = np.empty(x.shape, np.float32)
        for c, lut in enumerate(luts):
            out[:, c] = lut[x[:, c]]
        return torch.from_numpy(out)

    def as_labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return Dataset(
        name,
        normalize(x_train),
        as_labels(y_train),
        normalize(x_test),
        as_labels(y_test),
        num_classes,
    )


_FILES = {"fashion_mnist": (find_fmnist, read_fmnist), "cifar10": (find_cifar10, read_cifar10)}
_SYNTHETIC = {"synthetic_fmnist": _synthetic_fmnist, "synthetic_cifar10": _synthetic_cifar10}
_NAMES = ("fashion_mnist", "synthetic_fmnist", "cifar10", "synthetic_cifar10")  # real, stand-in


def partition(
    labels: np.ndarray, n: int, scheme: str = "iid", *, rng: np.random.Generator, **kwargs
) -> list[np.ndarray]:
    """Split sample indices across ``n`` nodes; returns one sorted int64 index array per node.

    Schemes: "iid" (random equal split), "shards" (McMahan et al. 2017: sort by label, cut
    into ``n * shards_per_node`` shards, deal ``shards_per_node`` to each node), "dirichlet"
    (per class, node proportions ~ Dir(``alpha``); Hsu et al. 2019), "data_parallel" (every
    node gets every index; the arrays are one shared read-only array).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"labels must be 1-D, got shape {labels.shape}: pass y_train")
    _check_count("number of nodes n", n)
    if scheme not in _SCHEMES:
        raise DataError(f"unknown partition scheme {scheme!r}: use one of {', '.join(_SCHEMES)}")
    split, allowed = _SCHEMES[scheme]
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no options"
        raise DataError(f"partition scheme {scheme!r} takes {takes}, not {', '.join(unknown)}")
    if scheme != "data_parallel" and n > len(labels):
        raise DataError(
            f"cannot split {len(labels)} samples over {n} nodes with {scheme!r}: "
            "use fewer nodes or scheme='data_parallel'"
        )
    parts = split(labels, n, rng, **kwargs)
    if scheme == "data_parallel":
        return parts
    return [np.sort(p).astype(np.int64, copy=False) for p in parts]


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
        raise DataError(f"scheme 'dirichlet' needs alpha > 0 (e.g. alpha=0.5), got {alpha!r}")
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


def _data_parallel(labels, n, rng):
    everything = np.arange(len(labels), dtype=np.int64)
    everything.flags.writeable = False
    return [everything] * n


_SCHEMES = {
    "iid": (_iid, frozenset()),
    "shards": (_shards, frozenset({"shards_per_node"})),
    "dirichlet": (_dirichlet, frozenset({"alpha"})),
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
