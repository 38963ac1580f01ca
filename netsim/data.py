"""Data sets as in-memory tensors, partitioners that split them across nodes, and the
per-node batch walker.

A node's local data is an int64 index array into the shared training tensors; a batch is
gathered by indexing (``x_train[idx]``), so no DataLoader processes are needed and a data
set is held once per process, whatever the number of nodes.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    """Bad data set or partition request; the message says what is wrong and how to fix it."""


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


FMNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist
_FMNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_SYNTHETIC_SEED = 20170217  # fixed: the synthetic set is the same everywhere


def load(name: str, root: str | None = None) -> Dataset:
    """Load data set ``name`` ("fashion_mnist" or "synthetic_fmnist"), once per process.

    Fashion-MNIST is read from ``root`` if given, else from ``$NETSIM_DATA`` (the IDX folder
    itself or a folder holding ``fashion-mnist/``), else from /usr/share/datasets/fashion-mnist.
    ``root`` is ignored by the synthetic set.
    """
    if name == "synthetic_fmnist":
        return _load_cached(name, None)
    if name == "fashion_mnist":
        return _load_cached(name, _find_fmnist(root))
    raise DataError(f"unknown data set {name!r}: use one of fashion_mnist, synthetic_fmnist")


@functools.cache
def _load_cached(name: str, folder: Path | None) -> Dataset:
    # Keyed by the folder actually found, so pointing NETSIM_DATA elsewhere loads anew.
    if name == "synthetic_fmnist":
        return _synthetic_fmnist()
    return _read_fmnist(folder)


def _find_fmnist(root: str | None) -> Path:
    if root is not None:
        places = [Path(root)]
    elif os.environ.get("NETSIM_DATA"):
        env = Path(os.environ["NETSIM_DATA"])
        places = [env, env / "fashion-mnist"]
    else:
        places = [FMNIST_DEFAULT_DIR]
    for folder in places:
        if all(_idx_path(folder, f) is not None for f in _FMNIST_FILES):
            return folder
    searched = ", ".join(str(p) for p in places)
    raise DataError(
        f"Fashion-MNIST not found in {searched}: install it with "
        "'apt-get install dataset-fashion-mnist' or set NETSIM_DATA=/path/to/idx/files"
    )


def _idx_path(folder: Path, stem: str) -> Path | None:
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _read_fmnist(folder: Path) -> Dataset:
    x_train, y_train, x_test, y_test = (
        _read_idx(_idx_path(folder, stem), ndim=3 if "images" in stem else 1)
        for stem in _FMNIST_FILES
    )
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if len(x) != len(y):
            raise DataError(
                f"{split} files in {folder} disagree: {len(x)} images but {len(y)} labels; "
                "reinstall the data set"
            )
        if y.size and y.max() >= 10:
            raise DataError(f"{split} labels in {folder} exceed 9; reinstall the data set")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"train and t10k images in {folder} differ in size ({x_train.shape[1:]} vs "
            f"{x_test.shape[1:]}); reinstall the data set"
        )
    return _dataset("fashion_mnist", x_train[:, None], y_train, x_test[:, None], y_test, 10)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (LeCun's MNIST format), plain or gzipped."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path} ({err}): replace the corrupt file") from None
    header = 4 + 4 * ndim
    # Magic number: two zero bytes, type 0x08 (unsigned byte), then the number of dimensions.
    if len(raw) < header or raw[:4] != bytes((0, 0, 0x08, ndim)):
        raise DataError(
            f"{path} is not an IDX file of {ndim}-D unsigned bytes (bad magic number): "
            "replace the corrupt file"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    if len(raw) - header != math.prod(dims):
        raise DataError(
            f"{path} is truncated or corrupt: its header promises {math.prod(dims)} bytes of "
            f"shape {dims} but it holds {len(raw) - header}; replace the file"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


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
