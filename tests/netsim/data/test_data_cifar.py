import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from netsim.data import DataError, available, load
from netsim.data import sets as data

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
PIXEL = (1, 2, 3)  # (channel, row, column) of a pixel pinned in the first training image


def write_cifar(folder: Path, per_batch: int = 20) -> dict:
    """The standard python-version layout, written independently of the reader: one pickled
    dict per batch, rows of 3072 bytes holding the R, G and B 32x32 planes in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    arrays = {}
    for name in BATCHES:
        # Channels with different ranges, so per-channel normalization is visible.
        rows = np.concatenate(
            [
                rng.integers(0, 100, (per_batch, 1024)),
                rng.integers(50, 200, (per_batch, 1024)),
                rng.integers(150, 256, (per_batch, 1024)),
            ],
            axis=1,
        ).astype(np.uint8)
        if name == BATCHES[0]:
            c, y, x = PIXEL
            rows[0, c * 1024 + y * 32 + x] = 123
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        arrays[name] = (rows, labels)
        batch = {
            b"batch_label": name.encode(),
            b"data": rows,
            b"labels": labels,
            b"filenames": [b"img%d.png" % i for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return arrays


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """(parent folder, arrays) with the batches in parent/cifar-10-batches-py."""
    monkeypatch.delenv("NETSIM_DATA", raising=False)
    return tmp_path, write_cifar(tmp_path / "cifar-10-batches-py")


def check_round_trip(ds, arrays):
    train = np.concatenate([arrays[name][0] for name in BATCHES[:5]]).reshape(-1, 3, 32, 32)
    test = arrays["test_batch"][0].reshape(-1, 3, 32, 32)
    scaled = train / 255
    mean, std = scaled.mean(axis=(0, 2, 3)), scaled.std(axis=(0, 2, 3))
    for got, want in ((ds.x_train, train), (ds.x_test, test)):
        assert got.dtype == torch.float32 and got.shape == (len(want), 3, 32, 32)
        expected = (want / 255 - mean[:, None, None]) / std[:, None, None]
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    c, y, x = PIXEL
    assert ds.x_train[0, c, y, x].item() == pytest.approx((123 / 255 - mean[c]) / std[c], 1e-5)
    want_train = sum((arrays[name][1] for name in BATCHES[:5]), [])
    assert ds.y_train.dtype == torch.int64 and ds.y_train.tolist() == want_train
    assert ds.y_test.tolist() == arrays["test_batch"][1]
    assert ds.num_classes == 10 and ds.input_shape == (3, 32, 32)
    per_channel = ds.x_train.transpose(0, 1).flatten(1)
    np.testing.assert_allclose(per_channel.mean(1).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(1, unbiased=False).numpy(), 1, atol=1e-5)


@pytest.mark.parametrize("folder", ["cifar-10-batches-py", ""], ids=["folder", "parent"])
def test_load_from_root_round_trips_channel_major_pixels(cifar, folder):
    parent, arrays = cifar
    check_round_trip(load("cifar10", root=str(parent / folder)), arrays)


@pytest.mark.parametrize(
    "subfolder", ["", "cifar-10-batches-py", "cifar10", "cifar10/cifar-10-batches-py"]
)
def test_load_from_netsim_data(tmp_path, monkeypatch, subfolder):
    arrays = write_cifar(tmp_path / subfolder)
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    assert available("cifar10")
    check_round_trip(load("cifar10"), arrays)


def test_root_wins_over_netsim_data_and_loads_are_cached(cifar, monkeypatch, tmp_path_factory):
    parent, _ = cifar
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path_factory.mktemp("empty")))
    first = load("cifar10", root=str(parent))
    assert load("cifar10", root=str(parent / "cifar-10-batches-py")) is first


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_files_give_one_line_download_hint(tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        load("cifar10")
    message = one_line(err)
    assert message.startswith("CIFAR-10 not found in ")
    assert "'CIFAR-10 python version'" in message and "NETSIM_DATA" in message
    assert "data_root=/path/to/cifar-10-batches-py" in message
    for place in ("", "cifar-10-batches-py", "cifar10", "cifar10/cifar-10-batches-py"):
        assert str(tmp_path / place) in message


def test_without_root_or_netsim_data_there_is_no_default(monkeypatch):
    monkeypatch.delenv("NETSIM_DATA", raising=False)
    with pytest.raises(DataError, match="no data_root, no NETSIM_DATA.*python version") as err:
        load("cifar10")
    one_line(err)
    assert not available("cifar10")


def rewrite(path: Path, key: bytes, value) -> None:
    """Re-pickle the batch at ``path`` with ``key`` set to ``value`` (None: removed)."""
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    batch[key] = value
    path.write_bytes(pickle.dumps({k: v for k, v in batch.items() if v is not None}))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:-50]),
        lambda p: p.write_bytes(b"not a pickle at all"),
        lambda p: p.write_bytes(pickle.dumps([1, 2, 3])),
        lambda p: rewrite(p, b"labels", None),
        lambda p: rewrite(p, b"data", np.zeros((20, 3071), np.uint8)),
        lambda p: rewrite(p, b"data", np.zeros((20, 3072), np.float32)),
        lambda p: rewrite(p, b"data", [[0] * 3072] * 20),
        lambda p: rewrite(p, b"labels", [0] * 19),
        lambda p: rewrite(p, b"labels", [10] * 20),
        lambda p: rewrite(p, b"labels", ["cat"] * 20),
    ],
    ids=[
        "truncated",
        "garbage",
        "not-a-dict",
        "no-labels",
        "row-length",
        "float-data",
        "list-data",
        "label-count",
        "label-range",
        "label-type",
    ],
)
def test_corrupt_batch_names_the_file(cifar, damage):
    parent, _ = cifar
    path = parent / "cifar-10-batches-py" / "data_batch_3"
    damage(path)
    assert available("cifar10", root=str(parent))  # presence only; load reports the damage
    with pytest.raises(DataError, match="data_batch_3") as err:
        load("cifar10", root=str(parent))
    one_line(err)


def test_available_never_raises(cifar):
    parent, _ = cifar
    assert available("cifar10", root=str(parent))
    assert not available("cifar10", root=str(parent / "elsewhere"))
    assert not available("cifar10", root=123)
    assert not available("imagenet")
    assert available("synthetic_cifar10") and available("synthetic_fmnist")


def test_unknown_name_lists_every_data_set():
    with pytest.raises(DataError, match="fashion_mnist, synthetic_fmnist, cifar10, synthetic_"):
        load("imagenet")


def nearest_class_mean_accuracy(ds) -> float:
    x, y = ds.x_train.flatten(1), ds.y_train
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    return (torch.cdist(ds.x_test.flatten(1), means).argmin(1) == ds.y_test).float().mean().item()


def test_synthetic_cifar10_is_deterministic_balanced_and_not_trivial():
    ds = load("synthetic_cifar10", root="/ignored")
    assert ds.x_train.shape == (5000, 3, 32, 32) and ds.x_test.shape == (1000, 3, 32, 32)
    assert ds.num_classes == 10 and ds.input_shape == (3, 32, 32) and ds.name == "synthetic_cifar10"
    assert ds.y_train.bincount().tolist() == [500] * 10
    assert ds.y_test.bincount().tolist() == [100] * 10
    again = data._synthetic_cifar10()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(ds, key), getattr(again, key))
    # Far above chance (10%) but far from solved by a template match.
    assert 0.4 < nearest_class_mean_accuracy(ds) < 0.75


@pytest.mark.slow
def test_synthetic_cifar10_is_learnable_by_a_small_cnn():
    ds = load("synthetic_cifar10")
    torch.manual_seed(0)
    model = models.build("small_cnn", in_channels=3, image_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    order = torch.randint(0, len(ds.y_train), (400, 32), generator=torch.Generator().manual_seed(0))
    for idx in order:
        loss = torch.nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
    assert 0.6 < accuracy < 0.95
