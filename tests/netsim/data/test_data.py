import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from netsim.data import DataError, LocalData, load, partition
from netsim.data import sets as data

FMNIST_FILES = {
    "train-images-idx3-ubyte": "x_train",
    "train-labels-idx1-ubyte": "y_train",
    "t10k-images-idx3-ubyte": "x_test",
    "t10k-labels-idx1-ubyte": "y_test",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written independently of the parser: magic, big-endian dims, raw bytes."""
    header = bytes((0, 0, 0x08, array.ndim)) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_fmnist(folder: Path, arrays: dict, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, key in FMNIST_FILES.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, (6, 5, 4), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 9, 3, 3], dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 5, 4), dtype=np.uint8),
        "y_test": np.array([7, 0, 5], dtype=np.uint8),
    }


def check_round_trip(ds, tiny):
    train = tiny["x_train"] / 255
    mean, std = train.mean(), train.std()
    for key in ("x_train", "x_test"):
        got = getattr(ds, key)
        assert got.dtype == torch.float32 and got.shape == (len(tiny[key]), 1, 5, 4)
        want = (tiny[key][:, None] / 255 - mean) / std
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    for key in ("y_train", "y_test"):
        assert getattr(ds, key).dtype == torch.int64
        assert getattr(ds, key).tolist() == tiny[key].tolist()
    assert ds.num_classes == 10 and ds.input_shape == (1, 5, 4)
    assert abs(ds.x_train.mean().item()) < 1e-6
    assert ds.x_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_from_root_round_trips_normalized_pixels(tmp_path, tiny, gz):
    write_fmnist(tmp_path, tiny, gz)
    check_round_trip(load("fashion_mnist", root=str(tmp_path)), tiny)


@pytest.mark.parametrize("subfolder", ["", "fashion-mnist"])
def test_load_from_netsim_data(tmp_path, tiny, monkeypatch, subfolder):
    write_fmnist(tmp_path / subfolder, tiny, gz=True)
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    check_round_trip(load("fashion_mnist"), tiny)


def test_load_is_cached_per_folder(tmp_path, tiny):
    write_fmnist(tmp_path, tiny, gz=False)
    assert load("fashion_mnist", root=str(tmp_path)) is load("fashion_mnist", root=str(tmp_path))


def test_missing_files_give_one_line_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        load("fashion_mnist")
    message = str(err.value)
    assert "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message and "NETSIM_DATA" in message
    assert str(tmp_path) in message and str(tmp_path / "fashion-mnist") in message


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: b"\x00\x00\x09" + raw[3:],  # wrong element type in the magic number
        lambda raw: raw[:-1],  # truncated body
        lambda raw: raw[:6],  # truncated header
    ],
    ids=["magic", "body", "header"],
)
def test_corrupt_idx_names_the_file(tmp_path, tiny, corrupt):
    write_fmnist(tmp_path, tiny, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte") as err:
        load("fashion_mnist", root=str(tmp_path))
    assert "\n" not in str(err.value)


def test_corrupt_gzip_names_the_file(tmp_path, tiny):
    write_fmnist(tmp_path, tiny, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load("fashion_mnist", root=str(tmp_path))


@pytest.mark.parametrize("name", ["synthetic_fmnist", "synthetic_cifar10"])
def test_images_are_held_as_bytes_and_decoded_exactly_where_gathered(name):
    ds = load(name)
    assert ds.raw_train.dtype == torch.uint8 and ds.input_shape == tuple(ds.raw_train.shape[1:])
    idx = torch.tensor([5, 0, 17, 3])
    decoded = ds.decode(ds.raw_train[idx])
    assert decoded.dtype == torch.float32 and torch.equal(decoded, ds.x_train[idx])
    channels = ds.x_train.transpose(0, 1).reshape(ds.input_shape[0], -1).double()
    assert torch.allclose(channels.mean(1), torch.zeros(len(channels)).double(), atol=1e-4)
    assert torch.allclose(
        channels.std(1, unbiased=False), torch.ones(len(channels)).double(), atol=1e-4
    )
    # channel c's bytes go through channel c's table
    pixel = ds.raw_train[0, :, 0, 0].long()
    expected = ds.lut[torch.arange(len(pixel)), pixel]
    assert torch.equal(ds.decode(ds.raw_train[:1])[0, :, 0, 0], expected)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError, match="fashion_mnist, synthetic_fmnist"):
        load("imagenet")


def test_synthetic_is_deterministic_balanced_and_learnable():
    ds = load("synthetic_fmnist")
    assert ds.x_train.shape == (6000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.num_classes == 10 and ds.input_shape == (1, 28, 28)
    assert ds.y_train.bincount().tolist() == [600] * 10
    again = data._synthetic_fmnist()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(ds, key), getattr(again, key))
    # Nearest class mean, fitted on train, classifies test well: the classes are separable.
    x, y = ds.x_train.flatten(1), ds.y_train
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    predicted = torch.cdist(ds.x_test.flatten(1), means).argmin(1)
    assert (predicted == ds.y_test).float().mean() > 0.9


def balanced_labels(classes=10, per_class=60):
    return np.random.default_rng(3).permutation(np.repeat(np.arange(classes), per_class))


@pytest.mark.parametrize(
    "scheme, kwargs",
    [
        ("iid", {}),
        ("shards", {}),
        ("shards", {"shards_per_node": 3}),
        ("dirichlet", {"alpha": 0.3}),
    ],
)
@pytest.mark.parametrize("n", [1, 7, 20])
def test_disjoint_schemes_cover_every_index_once(scheme, kwargs, n):
    labels = balanced_labels()
    parts = partition(labels, n, scheme, rng=np.random.default_rng(0), **kwargs)
    assert len(parts) == n and all(p.dtype == np.int64 and len(p) > 0 for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))


def test_iid_sizes_differ_by_at_most_one():
    sizes = [len(p) for p in partition(np.zeros(103), 10, rng=np.random.default_rng(0))]
    assert sum(sizes) == 103 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("shards_per_node", [1, 2, 3])
def test_shards_give_at_most_shards_per_node_classes(shards_per_node):
    labels = balanced_labels()
    parts = partition(
        labels, 10, "shards", rng=np.random.default_rng(0), shards_per_node=shards_per_node
    )
    assert all(len(np.unique(labels[p])) <= shards_per_node for p in parts)


def class_fractions(labels, parts):
    return np.array([np.bincount(labels[p], minlength=10) / len(p) for p in parts])


def test_dirichlet_large_alpha_is_close_to_iid():
    labels = balanced_labels(per_class=1000)
    parts = partition(labels, 5, "dirichlet", rng=np.random.default_rng(0), alpha=1e4)
    assert np.abs(class_fractions(labels, parts) - 0.1).max() < 0.03


def test_dirichlet_small_alpha_is_skewed_and_leaves_no_node_empty():
    labels = balanced_labels(per_class=100)
    parts = partition(labels, 50, "dirichlet", rng=np.random.default_rng(0), alpha=0.01)
    assert all(len(p) > 0 for p in parts)
    assert class_fractions(labels, parts).max(axis=1).mean() > 0.9


@pytest.mark.parametrize(
    "scheme, kwargs", [("iid", {}), ("shards", {}), ("dirichlet", {"alpha": 1})]
)
def test_same_seed_same_partition(scheme, kwargs):
    labels = balanced_labels()
    a, b = (partition(labels, 7, scheme, rng=np.random.default_rng(5), **kwargs) for _ in "ab")
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_data_parallel_gives_everyone_everything_read_only():
    parts = partition(np.zeros(9), 4, "data_parallel", rng=np.random.default_rng(0))
    assert len(parts) == 4 and all(np.array_equal(p, np.arange(9)) for p in parts)
    assert not parts[0].flags.writeable


@pytest.mark.parametrize(
    "n, scheme, kwargs, match",
    [
        (3, "pathological", {}, "unknown partition 'pathological'"),
        (0, "iid", {}, "n must be an integer >= 1"),
        (3, "dirichlet", {}, "needs alpha > 0"),
        (3, "dirichlet", {"alpha": 0.0}, "needs alpha > 0"),
        (3, "dirichlet", {"alpha": -1}, "needs alpha > 0"),
        (3, "iid", {"alpha": 1}, "takes no options, not alpha"),
        (3, "shards", {"shards_per_node": 0}, "shards_per_node must be"),
        (4, "shards", {"shards_per_node": 3}, "exceed 10 samples"),
        (11, "iid", {}, "over 11 nodes with partition='iid': use fewer nodes or partition="),
    ],
)
def test_bad_partition_requests_raise_one_line(n, scheme, kwargs, match):
    with pytest.raises(DataError, match=match) as err:
        partition(np.arange(10) % 2, n, scheme, rng=np.random.default_rng(0), **kwargs)
    assert "\n" not in str(err.value)


def test_local_data_covers_each_index_once_per_epoch_and_drops_the_tail():
    indices = np.arange(10) * 3
    local = LocalData(indices, 4, np.random.default_rng(0))
    epochs = []
    for epoch in range(3):
        batches = [local.next_batch() for _ in range(2)]
        assert local.epoch == epoch and all(len(b) == 4 for b in batches)
        seen = np.concatenate(batches)
        assert len(np.unique(seen)) == 8 and np.isin(seen, indices).all()
        epochs.append(seen)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled at each epoch start


def test_local_data_exact_division_sees_every_index():
    indices = np.arange(12)
    local = LocalData(indices, 3, np.random.default_rng(0))
    for epoch in range(2):
        seen = np.concatenate([local.next_batch() for _ in range(4)])
        assert local.epoch == epoch and np.array_equal(np.sort(seen), indices)


def test_local_data_smaller_than_batch_gives_whole_epochs():
    local = LocalData(np.array([4, 8, 15]), 5, np.random.default_rng(0))
    for epoch in range(3):
        assert np.array_equal(np.sort(local.next_batch()), [4, 8, 15]) and local.epoch == epoch


def test_local_data_is_deterministic():
    a, b = (LocalData(np.arange(50), 8, np.random.default_rng(9)) for _ in "ab")
    assert all(np.array_equal(a.next_batch(), b.next_batch()) for _ in range(20))


@pytest.mark.parametrize("indices, batch_size", [(np.array([], np.int64), 4), (np.arange(3), 0)])
def test_local_data_rejects_bad_input(indices, batch_size):
    with pytest.raises(DataError):
        LocalData(indices, batch_size, np.random.default_rng(0))


@pytest.mark.skipif(not data.FMNIST_DEFAULT_DIR.is_dir(), reason="dataset-fashion-mnist absent")
def test_installed_fashion_mnist_loads(monkeypatch):
    monkeypatch.delenv("NETSIM_DATA", raising=False)
    ds = load("fashion_mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.bincount().tolist() == [6000] * 10
    assert ds.y_test.bincount().tolist() == [1000] * 10
    assert ds.num_classes == 10 and ds.input_shape == (1, 28, 28)
