"""LEAF's federated data sets on disk, FEMNIST and CelebA, as decentralizepy reads them.

Reference: S. Caldas et al., "LEAF: A Benchmark for Federated Settings", 2018,
https://github.com/TalwalkarLab/leaf. Its scripts leave each split as JSON files in
``train/`` and ``test/`` (under ``leaf/data/<name>/data``), each file
``{"users": [...], "num_samples": [...], "user_data": {user: {"x": [...], "y": [...]}}}``.
FEMNIST's x are 784 grey levels in 0..1, a 28x28 image row by row, each an 8-bit level
divided by 255; y is one of 62 classes (digits, upper and lower case letters). CelebA's x are
file names of celebrity photos in ``img_align_celeba/`` (beside train/ and test/, or in raw/,
where LEAF puts it); y is 1 when the celebrity smiles. A user is a writer or a celebrity.

A finder returns the folder holding train/ and test/ or raises a one-line DataError listing
the places searched. A reader returns ``(x_train, y_train, x_test, y_test, train_counts,
test_counts)``: images uint8 (N, C, H, W), grouped by user in sorted user order, with each
user's number of samples in that split, so data.py can tell whose sample is whose. The users
are those of the training split; a user seen only in test/ (LEAF's split by user) is put
last in the test set, counted in no user's share, since no node trains on its data.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from netsim.data.files import DataError

FEMNIST_CLASSES = 62
CELEBA_SIZE = 84  # LEAF's CelebA model input: every photo resized to 84x84


def find_femnist(root: str | None) -> Path:
    return _find("FEMNIST", "femnist", root, images=False)


def find_celeba(root: str | None) -> Path:
    return _find("CelebA", "celeba", root, images=True)


def read_femnist(folder: Path):
    return _read(folder, _femnist_pixels, FEMNIST_CLASSES)


def read_celeba(folder: Path):
    return _read(folder, functools.partial(_celeba_photos, _photo_dir(folder)), 2)


def _find(title: str, subfolder: str, root: str | None, images: bool) -> Path:
    if root is not None:
        bases = [Path(root)]
    elif os.environ.get("NETSIM_DATA"):
        env = Path(os.environ["NETSIM_DATA"])
        bases = [env, env / subfolder]
    else:
        bases = []  # no distribution packages LEAF's data sets
    # base/data too, so pointing at leaf/data/<name>, where LEAF's scripts run, also works.
    places = [folder for base in bases for folder in (base, base / "data")]
    for folder in places:
        splits = all(any((folder / split).glob("*.json")) for split in ("train", "test"))
        if splits and (not images or _photo_dir(folder) is not None):
            return folder
    where = (
        f"in {', '.join(str(p) for p in places)}" if places else "(no data_root, no NETSIM_DATA)"
    )
    needs = "train/*.json and test/*.json"
    if images:
        needs += " and the photos in img_align_celeba/ or raw/img_align_celeba/"
    raise DataError(
        f"{title} not found {where}: it needs LEAF's JSON files, {needs}; pass "
        f"data_root=/path/to/leaf/data/{subfolder}/data or set NETSIM_DATA"
    )


def _photo_dir(folder: Path) -> Path | None:
    for photos in (folder / "img_align_celeba", folder / "raw" / "img_align_celeba"):
        if photos.is_dir():
            return photos
    return None


def _read(folder: Path, pixels, num_classes: int):
    train = _read_split(folder / "train", pixels, num_classes)
    test = _read_split(folder / "test", pixels, num_classes)
    users = sorted(train)
    x_train, y_train, train_counts = _stack(train, users)
    x_test, y_test, test_counts = _stack(test, users + sorted(set(test) - set(train)))
    return x_train, y_train, x_test, y_test, train_counts, test_counts[: len(users)]


def _stack(split: dict, users: list[str]):
    present = [split[u] for u in users if u in split]
    counts = [len(split[u][1]) if u in split else 0 for u in users]
    x = np.concatenate([x for x, _ in present])
    y = np.concatenate([y for _, y in present])
    return x, y, counts


def _read_split(folder: Path, pixels, num_classes: int) -> dict:
    """{user: (images, labels)} over every JSON file of one split."""
    split, source = {}, {}
    for path in sorted(folder.glob("*.json")):
        raw = _read_json(path)
        if not (
            isinstance(raw, dict)
            and isinstance(raw.get("users"), list)
            and all(isinstance(u, str) for u in raw["users"])
            and isinstance(raw.get("user_data"), dict)
        ):
            raise DataError(
                f"{path} is not a LEAF file (a dict with a list of user names 'users' and a "
                "dict 'user_data'): replace the file"
            )
        for user in raw["users"]:
            if user in source:
                raise DataError(
                    f"user {user!r} is in both {source[user].name} and {path.name} in {folder}: "
                    "keep one"
                )
            data = raw["user_data"].get(user)
            if not (
                isinstance(data, dict)
                and isinstance(data.get("x"), list)
                and isinstance(data.get("y"), list)
                and len(data["x"]) == len(data["y"])
            ):
                raise DataError(
                    f"{path}: user {user!r} needs lists 'x' and 'y' of equal length in "
                    "'user_data': replace the file"
                )
            where = f"{path}, user {user!r}"
            split[user] = (pixels(data["x"], where), _labels(data["y"], num_classes, where))
            source[user] = path
    if not any(len(y) for _, y in split.values()):
        raise DataError(f"{folder} holds no samples: rerun LEAF's preprocessing")
    return split


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError included
        raise DataError(f"cannot read {path} ({err}): replace the corrupt file") from None


def _labels(y: list, num_classes: int, where: str) -> np.ndarray:
    try:
        labels = np.asarray(y) if y else np.empty(0, np.int64)
    except ValueError:  # ragged nested lists
        labels = None
    if (
        labels is None
        or labels.ndim != 1
        or labels.dtype.kind not in "biu"
        or (labels.size and not 0 <= labels.min() <= labels.max() < num_classes)
    ):
        raise DataError(f"{where}: y must be integers in 0..{num_classes - 1}: replace the file")
    return labels.astype(np.int64)


def _femnist_pixels(x: list, where: str) -> np.ndarray:
    if not x:
        return np.empty((0, 1, 28, 28), np.uint8)
    try:
        grey = np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError):  # ragged rows or text
        grey = None
    if grey is None or grey.shape[1:] != (784,) or not 0 <= grey.min() <= grey.max() <= 1:
        raise DataError(f"{where}: each x must be 784 grey levels in 0..1: replace the file")
    # The levels are bytes divided by 255, so this recovers them exactly and the images can
    # share the byte-image normalization of data.py.
    return np.rint(grey * 255).astype(np.uint8).reshape(-1, 1, 28, 28)


def _celeba_photos(photos: Path, names: list, where: str) -> np.ndarray:
    out = np.empty((len(names), 3, CELEBA_SIZE, CELEBA_SIZE), np.uint8)
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: x must be photo file names, got {name!r}: replace the file")
        path = photos / name
        if not path.is_file():
            path = path.with_suffix(".png")  # decentralizepy converts the JPEGs to PNG
        try:
            with Image.open(path) as photo:
                # As LEAF: resize, then RGB. Bicubic is Pillow's default, named so it stays.
                small = photo.resize((CELEBA_SIZE, CELEBA_SIZE), Image.Resampling.BICUBIC)
                out[k] = np.asarray(small.convert("RGB")).transpose(2, 0, 1)
        except FileNotFoundError:
            raise DataError(
                f"{where}: photo {name!r} is not in {photos}: put the img_align_celeba photos there"
            ) from None
        except (OSError, ValueError) as err:  # includes PIL's UnidentifiedImageError
            raise DataError(f"cannot read photo {path} ({err}): replace the file") from None
    return out
