import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from netsim.data import DataError, available, load, partition, partition_users
from netsim.data import sets as data
from netsim.data.files import read_movielens
from netsim.data.leaf import read_celeba

# Three writers, deliberately out of order and over two files (and "w9", added below, who
# writes only test samples).
FEMNIST_SIZES = {"train": {"w2": 3, "w0": 2, "w1": 4}, "test": {"w1": 1, "w0": 2, "w2": 1}}


def leaf_file(users: dict) -> dict:
    """LEAF's JSON layout, written independently of the reader."""
    return {
        "users": list(users),
        "num_samples": [len(y) for _, y in users.values()],
        "user_data": {u: {"x": x, "y": y} for u, (x, y) in users.items()},
    }


def write_json(path: Path, users: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(leaf_file(users)))


@pytest.fixture
def femnist(tmp_path):
    """A LEAF FEMNIST folder; returns it and {split: {writer: (levels uint8 (n, 784), y)}}."""
    rng = np.random.default_rng(3)
    truth = {}
    for split, sizes in FEMNIST_SIZES.items():
        truth[split] = {
            u: (rng.integers(0, 256, (n, 784)), rng.integers(0, 62, n)) for u, n in sizes.items()
        }
    truth["test"]["w9"] = (rng.integers(0, 256, (2, 784)), np.array([61, 0]))
    as_json = {
        split: {u: ((x / 255).tolist(), y.tolist()) for u, (x, y) in users.items()}
        for split, users in truth.items()
    }
    folder = tmp_path / "femnist" / "data"
    write_json(folder / "train" / "a.json", {u: as_json["train"][u] for u in ("w2", "w0")})
    write_json(folder / "train" / "b.json", {"w1": as_json["train"]["w1"]})
    write_json(folder / "test" / "all.json", as_json["test"])
    return folder, truth


def test_femnist_loads_writers_in_sorted_order_normalized_with_train_statistics(femnist):
    folder, truth = femnist
    ds = load("femnist", root=str(folder))
    train_levels = np.concatenate([truth["train"][u][0] for u in ("w0", "w1", "w2")]) / 255
    mean, std = train_levels.mean(), train_levels.std()
    assert ds.num_classes == 62 and ds.task == "classify" and ds.input_shape == (1, 28, 28)
    assert ds.x_train.shape == (9, 1, 28, 28) and ds.x_test.shape == (6, 1, 28, 28)
    for split, xs, ys, users in (
        ("train", ds.x_train, ds.y_train, ds.train_users),
        ("test", ds.x_test, ds.y_test, ds.test_users),
    ):
        assert len(users) == 3  # w0, w1, w2: the writers of the training split
        for u, writer in enumerate(("w0", "w1", "w2")):
            levels, labels = truth[split][writer]
            want = (levels.reshape(-1, 1, 28, 28) / 255 - mean) / std
            np.testing.assert_allclose(xs[users[u]].numpy(), want, rtol=1e-5, atol=1e-5)
            assert ys[users[u]].tolist() == labels.tolist()
    # The test-only writer is last in the test set and in no writer's share.
    assert ds.y_test[-2:].tolist() == [61, 0]
    assert sorted(np.concatenate(ds.test_users).tolist()) == [0, 1, 2, 3]
    assert ds.train_users[0].tolist() == [0, 1]


# NETSIM_DATA may be LEAF's femnist/data folder, femnist/ (where LEAF runs), or their parent.
@pytest.mark.parametrize("up", [0, 1, 2])
def test_femnist_is_found_from_netsim_data(femnist, monkeypatch, up):
    folder, _ = femnist
    monkeypatch.setenv("NETSIM_DATA", str([folder, *folder.parents][up]))
    assert load("femnist").x_train.shape == (9, 1, 28, 28)
    assert available("femnist")


def test_missing_leaf_files_give_one_line_hint(tmp_path, monkeypatch):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.json").write_text("{}")  # but no test/
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    for name in ("femnist", "celeba"):
        with pytest.raises(DataError) as err:
            load(name)
        message = str(err.value)
        assert "\n" not in message and "train/*.json and test/*.json" in message
        assert "data_root" in message and "NETSIM_DATA" in message
        assert str(tmp_path / name / "data") in message
        assert not available(name)
    assert "img_align_celeba" in str(err.value)
    monkeypatch.delenv("NETSIM_DATA")
    with pytest.raises(DataError, match=r"FEMNIST not found \(no data_root, no NETSIM_DATA\)"):
        load("femnist")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda f: f.write_text("{not json"), r"cannot read .*a\.json"),
        (lambda f: f.write_text("[1, 2]"), r"a\.json is not a LEAF file"),
        (lambda f: write_json(f, {"w0": ([[0.5] * 783], [1])}), r"a\.json, user 'w0'.*784"),
        (lambda f: write_json(f, {"w0": ([[0.5] * 784], [62])}), r"'w0': y must be .*0\.\.61"),
        (lambda f: write_json(f, {"w0": ([[1.5] * 784], [1])}), r"grey levels in 0\.\.1"),
        (lambda f: write_json(f, {"w0": ([[0.5] * 784], [])}), r"'w0' needs lists 'x' and 'y'"),
        (lambda f: write_json(f, {"w1": ([[0.5] * 784], [1])}), r"'w1' is in both a\.json and b"),
    ],
    ids=["json", "layout", "pixels", "label", "range", "lengths", "duplicate"],
)
def test_bad_leaf_files_name_the_file(femnist, damage, match):
    folder, _ = femnist
    damage(folder / "train" / "a.json")
    with pytest.raises(DataError, match=match) as err:
        load("femnist", root=str(folder))
    assert "\n" not in str(err.value)


def write_photo(path: Path, colour: tuple, size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.mark.parametrize("photos", ["img_align_celeba", "raw/img_align_celeba"])
def test_celeba_resizes_photos_and_normalizes_per_channel(tmp_path, photos):
    # Solid colours stay solid under any resize, so the expected pixels are exact.
    colours = {"a.png": (255, 0, 10), "b.png": (0, 128, 20), "c.png": (51, 204, 30)}
    for name, colour in colours.items():
        write_photo(tmp_path / photos / name, colour)
    # decentralizepy converts LEAF's JPEGs to PNG but keeps the .jpg names in the JSON.
    write_photo(tmp_path / photos / "d.png", (0, 0, 0))
    write_json(tmp_path / "train" / "t.json", {"bob": (["b.png"], [0]), "amy": (["a.png"], [1])})
    write_json(tmp_path / "test" / "t.json", {"amy": (["c.png", "d.jpg"], [1, 0])})
    ds = load("celeba", root=str(tmp_path))
    assert ds.num_classes == 2 and ds.input_shape == (3, 84, 84)
    assert ds.y_train.tolist() == [1, 0] and ds.y_test.tolist() == [1, 0]
    assert [u.tolist() for u in ds.train_users] == [[0], [1]]  # amy, bob
    assert [u.tolist() for u in ds.test_users] == [[0, 1], []]
    train = np.array([colours["a.png"], colours["b.png"]]) / 255
    mean, std = train.mean(0), train.std(0)
    for xs, rgb in (
        (ds.x_train, train),
        (ds.x_test, np.array([colours["c.png"], (0, 0, 0)]) / 255),
    ):
        want = (rgb - mean) / std
        np.testing.assert_allclose(
            xs.numpy(), np.broadcast_to(want[..., None, None], xs.shape), atol=1e-5
        )


def test_celeba_reads_jpeg_and_reports_missing_or_broken_photos(tmp_path):
    write_photo(tmp_path / "img_align_celeba" / "000001.jpg", (200, 100, 50), size=(178, 218))
    write_photo(tmp_path / "img_align_celeba" / "000002.jpg", (10, 220, 250), size=(178, 218))
    write_json(tmp_path / "train" / "t.json", {"7": (["000001.jpg", "000002.jpg"], [1, 0])})
    write_json(tmp_path / "test" / "t.json", {"7": (["000001.jpg"], [1])})
    ds = load("celeba", root=str(tmp_path))
    assert ds.x_train.shape == (2, 3, 84, 84)
    # JPEG is lossy: a solid colour comes back within a few levels of itself.
    assert torch.allclose(ds.x_test, ds.x_train[:1], atol=0.1)
    write_json(tmp_path / "test" / "t.json", {"7": (["000003.jpg"], [1])})
    with pytest.raises(DataError, match=r"t.json, user '7': photo '000003.jpg' is not in .*celeba"):
        read_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"cannot read photo .*000003.jpg"):
        read_celeba(tmp_path)


def write_ratings(path: Path, rows) -> None:
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{m},{r},964982703" for u, m, r in rows]
    path.write_text("\n".join(lines) + "\n")


# Users 10, 3, 7, 5 with 10, 3, 1 and 5 ratings: 70% rounded (halves up) for training.
RATINGS = (
    [(10, 100 + 7 * k, 0.5 * (k % 10 + 1)) for k in range(10)]
    + [(3, 5, 4.0), (3, 100, 3.5), (3, 2000, 1.0), (7, 5, 5.0)]
    + [(5, 100 + 7 * k, 2.5) for k in range(5)]
)


def test_movielens_renumbers_ids_and_splits_70_30_within_each_user(tmp_path):
    write_ratings(tmp_path / "ratings.csv", RATINGS)
    ds = load("movielens", root=str(tmp_path / "ratings.csv"))
    users, movies = [3, 5, 7, 10], sorted({m for _, m, _ in RATINGS})
    assert (ds.task, ds.num_classes, ds.num_users, ds.num_items) == ("regress", 0, 4, len(movies))
    assert ds.x_train.dtype == torch.int64 and ds.y_train.dtype == torch.float32
    assert [len(u) for u in ds.train_users] == [2, 4, 1, 7]
    assert [len(u) for u in ds.test_users] == [1, 1, 0, 3]
    seen = []
    for xs, ys, groups in (
        (ds.x_train, ds.y_train, ds.train_users),
        (ds.x_test, ds.y_test, ds.test_users),
    ):
        for u, rows in enumerate(groups):
            assert (xs[rows, 0] == u).all()
        seen += [
            (users[u], movies[m], r) for (u, m), r in zip(xs.tolist(), ys.tolist(), strict=True)
        ]
    assert sorted(seen) == sorted(RATINGS)


def test_movielens_split_of_a_user_does_not_depend_on_the_others(tmp_path):
    write_ratings(tmp_path / "a.csv", RATINGS)
    write_ratings(tmp_path / "b.csv", [r for r in RATINGS if r[0] in (3, 10)])
    a, b = (load("movielens", root=str(tmp_path / f)) for f in ("a.csv", "b.csv"))
    # User 10 (whose ratings all differ) is number 3 of 4 in a but number 1 of 2 in b.
    assert sorted(a.y_test[a.test_users[3]].tolist()) == sorted(b.y_test[b.test_users[1]].tolist())


@pytest.mark.parametrize(
    "layout", ["ratings.csv", "ml-latest-small/ratings.csv", "movielens/ratings.csv"]
)
def test_movielens_is_found_from_netsim_data(tmp_path, monkeypatch, layout):
    (tmp_path / layout).parent.mkdir(parents=True, exist_ok=True)
    write_ratings(tmp_path / layout, RATINGS)
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    assert available("movielens") and load("movielens").num_users == 4


def test_missing_or_bad_ratings_give_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path))
    with pytest.raises(
        DataError, match="MovieLens not found in .*userId,movieId,rating,timestamp"
    ) as err:
        load("movielens")
    assert "\n" not in str(err.value) and "NETSIM_DATA" in str(err.value)
    path = tmp_path / "ratings.csv"
    for text, match in (
        ("user,item,rating\n1,2,3\n", "not the MovieLens header"),
        ("userId,movieId,rating,timestamp\n1,2,x,4\n", "a line that is not"),
        ("userId,movieId,rating,timestamp\n", "holds no ratings"),
        ("userId,movieId,rating,timestamp\n1.5,2,3,4\n", "not non-negative integers"),
    ):
        path.write_text(text)
        with pytest.raises(DataError, match=match) as err:
            read_movielens(path)
        assert "\n" not in str(err.value) and "ratings.csv" in str(err.value)


def test_unknown_name_lists_the_new_data_sets():
    with pytest.raises(
        DataError, match="femnist, synthetic_femnist, celeba, movielens, synthetic_"
    ):
        load("shakespeare")
    assert available("synthetic_femnist") and available("synthetic_movielens")


def test_synthetic_femnist_is_deterministic_per_writer_and_learnable():
    ds = load("synthetic_femnist", root="/ignored")
    again = data._synthetic_femnist()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(ds, key), getattr(again, key))
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 62
    assert len(ds.x_train) == 8675 and len(ds.x_test) == 963
    assert len(ds.train_users) == len(ds.test_users) == 100
    for users, n in ((ds.train_users, len(ds.x_train)), (ds.test_users, len(ds.x_test))):
        assert np.array_equal(np.concatenate(users), np.arange(n))
    # Labels are skewed per writer: most writers use well under half of the 62 classes.
    classes = [len(np.unique(ds.y_train[u].numpy())) for u in ds.train_users]
    assert np.median(classes) < 31
    # Nearest class mean is far above chance (1/62), so small models can learn it.
    x, y = ds.x_train.flatten(1), ds.y_train
    means = torch.stack([x[y == c].mean(0) for c in range(62)])
    accuracy = (torch.cdist(ds.x_test.flatten(1), means).argmin(1) == ds.y_test).float().mean()
    assert accuracy > 0.8


def test_synthetic_movielens_is_deterministic_and_has_structure():
    ds = load("synthetic_movielens")
    again = data._synthetic_movielens()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(ds, key), getattr(again, key))
    assert (ds.num_users, ds.num_items, len(ds.y_train), len(ds.y_test)) == (300, 465, 4159, 1760)
    assert set(torch.cat([ds.y_train, ds.y_test]).tolist()) == {0.5 * k for k in range(1, 11)}
    assert all(len(u) >= 7 for u in ds.train_users)  # 10-30 ratings a user, 70% for training
    # Each item's mean training rating predicts the test set better than the global mean.
    mu = ds.y_train.mean()
    items = ds.x_train[:, 1]
    sums = torch.zeros(ds.num_items).index_add_(0, items, ds.y_train)
    counts = torch.zeros(ds.num_items).index_add_(0, items, torch.ones(len(items)))
    item_mean = (sums + 5 * mu) / (counts + 5)
    by_item = ((item_mean[ds.x_test[:, 1]] - ds.y_test) ** 2).mean()
    assert by_item < 0.8 * ((mu - ds.y_test) ** 2).mean()


@pytest.mark.parametrize("n", [1, 7, 100])
def test_per_user_partition_deals_whole_users_disjointly(n):
    ds = load("synthetic_femnist")
    parts = partition(
        ds.y_train.numpy(), n, "per_user", rng=np.random.default_rng(5), users=ds.train_users
    )
    mine = partition_users(len(ds.train_users), n, np.random.default_rng(5))
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(ds.y_train)))
    assert np.array_equal(np.sort(np.concatenate(mine)), np.arange(100))
    assert max(map(len, mine)) - min(map(len, mine)) <= 1 and min(map(len, mine)) >= 1
    for part, users in zip(parts, mine, strict=True):
        want = np.sort(np.concatenate([ds.train_users[u] for u in users]))
        assert np.array_equal(part, want) and part.dtype == np.int64


def test_partition_users_is_a_seeded_round_robin_deal():
    order = np.random.default_rng(9).permutation(5)
    got = partition_users(5, 2, np.random.default_rng(9))
    assert [g.tolist() for g in got] == [sorted(order[0::2]), sorted(order[1::2])]


@pytest.mark.parametrize(
    ("kwargs", "n", "match"),
    [
        ({}, 2, "needs users=dataset.train_users"),
        ({"users": (np.arange(3), np.arange(3, 6))}, 3, "cannot deal 2 users to 3 nodes"),
        ({"users": (np.arange(3), np.array([5, 6]))}, 2, "index arrays into the 6 training"),
        ({"users": (np.arange(3),), "alpha": 1}, 1, "takes users, not alpha"),
    ],
)
def test_bad_per_user_requests_raise_one_line(kwargs, n, match):
    with pytest.raises(DataError, match=match):
        partition(np.zeros(6), n, "per_user", rng=np.random.default_rng(0), **kwargs)
