"""The real data sets on disk: where their files are looked for, and readers for their
standard formats, LeCun's IDX files (Fashion-MNIST), the pickled batches of the
"CIFAR-10 python version" and MovieLens's ratings.csv. LEAF's JSON (FEMNIST, CelebA) is
read in leaf.py.

A finder returns the folder holding every file (for MovieLens, the file) or raises a
one-line DataError listing the places searched. An image reader returns ``(x_train,
y_train, x_test, y_test)`` as numpy arrays, images uint8 (N, C, H, W); the ratings reader
returns ``(user_ids, movie_ids, ratings)``. Readers turn every defect of a file into a
one-line DataError naming that file; data.py normalizes and splits.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import warnings
import zlib
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad data set or partition request; the message says what is wrong and how to fix it."""


FMNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist
FMNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR10_DIR = "cifar-10-batches-py"  # the folder the official archive unpacks to
# batches.meta holds only the class names, which netsim never shows, so it is not required.
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
MOVIELENS_HEADER = ["userId", "movieId", "rating"]  # then timestamp, which is not needed


def find_fmnist(root: str | None) -> Path:
    if root is not None:
        places = [Path(root)]
    elif os.environ.get("NETSIM_DATA"):
        env = Path(os.environ["NETSIM_DATA"])
        places = [env, env / "fashion-mnist"]
    else:
        places = [FMNIST_DEFAULT_DIR]
    for folder in places:
        if _has_fmnist(folder):
            return folder
    searched = ", ".join(str(p) for p in places)
    raise DataError(
        f"Fashion-MNIST not found in {searched}: install it with "
        "'apt-get install dataset-fashion-mnist' or set NETSIM_DATA=/path/to/idx/files"
    )


def find_cifar10(root: str | None) -> Path:
    if root is not None:
        bases = [Path(root)]
    elif os.environ.get("NETSIM_DATA"):
        env = Path(os.environ["NETSIM_DATA"])
        bases = [env, env / "cifar10"]
    else:
        bases = []  # no distribution packages CIFAR-10, so there is no system default
    places = [folder for base in bases for folder in (base, base / CIFAR10_DIR)]
    for folder in places:
        if _has_cifar10(folder):
            return folder
    where = (
        f"in {', '.join(str(p) for p in places)}" if places else "(no data_root, no NETSIM_DATA)"
    )
    raise DataError(
        f"CIFAR-10 not found {where}: download the 'CIFAR-10 python version' and pass "
        f"data_root=/path/to/{CIFAR10_DIR} or set NETSIM_DATA"
    )


def find_movielens(root: str | None) -> Path:
    if root is not None:
        bases = [Path(root)]
    elif os.environ.get("NETSIM_DATA"):
        env = Path(os.environ["NETSIM_DATA"])
        bases = [env, env / "movielens"]
    else:
        bases = []  # no distribution packages MovieLens
    # The file itself, or the folder holding it, or the folder the official zip unpacks into.
    places = [
        path
        for base in bases
        for path in (base, base / "ratings.csv", base / "ml-latest-small" / "ratings.csv")
    ]
    for path in places:
        if path.is_file():
            return path
    where = (
        f"in {', '.join(str(p) for p in places)}" if places else "(no data_root, no NETSIM_DATA)"
    )
    raise DataError(
        f"MovieLens not found {where}: it needs ratings.csv with the header "
        "userId,movieId,rating,timestamp (e.g. ml-latest-small); pass data_root=/path/to/it "
        "(the file or its folder) or set NETSIM_DATA"
    )


def _has_fmnist(folder: Path) -> bool:
    return all(_idx_path(folder, stem) is not None for stem in FMNIST_FILES)


def _has_cifar10(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CIFAR10_FILES)


def read_fmnist(folder: Path):
    x_train, y_train, x_test, y_test = (
        _read_idx(_idx_path(folder, stem), ndim=3 if "images" in stem else 1)
        for stem in FMNIST_FILES
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
    return x_train[:, None], y_train, x_test[:, None], y_test


def _idx_path(folder: Path, stem: str) -> Path | None:
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


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


def read_cifar10(folder: Path):
    train = [_read_cifar_batch(folder / name) for name in CIFAR10_FILES[:-1]]
    x_test, y_test = _read_cifar_batch(folder / CIFAR10_FILES[-1])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: a dict whose b"data" is uint8 (N, 3072), each row the R, G and B
    32x32 planes in turn, row-major, and whose b"labels" are N ints in 0..9."""
    try:
        with path.open("rb") as f:
            # Unpickling can run code: only the standard batch files, by name, from the
            # folder the user pointed at, are ever read here.
            batch = pickle.load(f, encoding="bytes")
    except Exception as err:  # a damaged pickle can raise almost any exception type
        raise DataError(
            f"cannot read {path} ({type(err).__name__}: {err}): replace the corrupt file"
        ) from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        raise DataError(
            f"{path} is not a CIFAR-10 batch (a dict with b'data' and b'labels'): replace the file"
        )
    x = batch[b"data"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(
            f"{path} holds b'data' of {got}, not uint8 rows of 3x32x32 = 3072 pixels: "
            "replace the file"
        )
    y = _labels(batch[b"labels"])
    if y is None or y.shape != (len(x),) or (y.size and not 0 <= y.min() <= y.max() <= 9):
        raise DataError(
            f"{path} does not hold one label in 0..9 for each of its {len(x)} images: "
            "replace the file"
        )
    return x.reshape(-1, 3, 32, 32), y


def _labels(value) -> np.ndarray | None:
    try:
        y = np.asarray(value)
    except ValueError:  # ragged nested lists
        return None
    return y if y.dtype.kind in "iu" else None


def read_movielens(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MovieLens ratings.csv: one rating a line, ``userId,movieId,rating,timestamp``."""
    try:
        with path.open(encoding="utf-8") as f:
            header = f.readline().strip().split(",")
            if header[:3] != MOVIELENS_HEADER:
                raise DataError(
                    f"{path} starts with {','.join(header)!r}, not the MovieLens header "
                    "userId,movieId,rating,timestamp: point data_root at a ratings.csv"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an empty table is reported below instead
                table = np.loadtxt(f, delimiter=",", usecols=(0, 1, 2), ndmin=2)
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path} ({err}): replace the corrupt file") from None
    except DataError:
        raise
    except ValueError as err:  # a malformed row
        raise DataError(
            f"{path} has a line that is not userId,movieId,rating,timestamp ({err}): "
            "replace the file"
        ) from None
    if len(table) == 0:
        raise DataError(f"{path} holds no ratings: replace the file")
    ids = table[:, :2]
    if not (np.isfinite(table).all() and (ids == np.rint(ids)).all() and (ids >= 0).all()):
        raise DataError(
            f"{path} holds ids that are not non-negative integers or ratings that are not "
            "finite: replace the file"
        )
    return ids[:, 0].astype(np.int64), ids[:, 1].astype(np.int64), table[:, 2].astype(np.float32)
