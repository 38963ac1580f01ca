"""Seeded stand-ins for the real data sets, in the shapes their readers return (see
files.py): used only when asked for by name, and the same on every machine.

They exist so experiments and tests run where the real files are absent; none claims to be
the real thing, and each docstring says how learnable it is.
"""

from __future__ import annotations

import numpy as np

SEED = 20170217  # fixed: the synthetic sets are the same everywhere


def fmnist():
    """6000/1000 balanced 1x28x28 images in 10 classes: a random template per class plus
    Gaussian noise, so a small model learns it in a few steps."""
    rng = np.random.default_rng(SEED)
    templates = rng.random((10, 1, 28, 28))

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(count) % 10)
        x = templates[y] + rng.normal(0.0, 0.5, (count, 1, 28, 28))
        return np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8), y

    x_train, y_train = draw(6000)
    x_test, y_test = draw(1000)
    return x_train, y_train, x_test, y_test


def cifar10():
    """5000/1000 balanced 3x32x32 images in 10 classes, learnable but not trivially so.

    Each class has a smooth colour pattern: per channel, a sum of four cosines of low integer
    frequency (so a cyclic shift is seamless). An image is its class's pattern shifted by up
    to 6 pixels, plus another class's pattern shifted anywhere, plus Gaussian noise. Nearest
    class mean gets 57% of the test set right; SmallCNN or CifarCNN (batch 32, plain SGD with
    lr 0.05) about 75-80% after 400 steps.
    """
    rng = np.random.default_rng(SEED)
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
    return x_train, y_train, x_test, y_test


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


def femnist():
    """8,675/963 1x28x28 images in 62 classes by 100 writers, split 90:10 within each
    writer as LEAF splits FEMNIST by sample, with each writer's sample counts. Plainly not
    handwriting, but skewed per writer in style and labels as FEMNIST is.

    Each class is a blocky template (7x7 random levels blown up 4x). A writer draws 50-150
    samples with its own class frequencies ~ Dir(0.5), shifts every template by the same 0-2
    pixels, scales its contrast and adds an ink offset; each pixel then gets Gaussian noise.
    Nearest class mean gets 87% of the test set right.
    """
    rng = np.random.default_rng(SEED)
    templates = np.kron(rng.random((62, 7, 7)), np.ones((4, 4)))
    train, test = ([], [], []), ([], [], [])  # images, labels, counts
    for _ in range(100):
        count = int(rng.integers(50, 151))
        y = rng.choice(62, count, p=rng.dirichlet(np.full(62, 0.5)))
        x = np.roll(templates[y], tuple(rng.integers(-2, 3, 2)), axis=(1, 2))
        x = x * rng.uniform(0.6, 1.0) + rng.uniform(-0.15, 0.15) + rng.normal(0, 0.3, x.shape)
        x = np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)[:, None]
        cut = (9 * count + 5) // 10
        for (xs, ys, counts), part in ((train, slice(None, cut)), (test, slice(cut, None))):
            xs.append(x[part])
            ys.append(y[part])
            counts.append(len(y[part]))
    x_train, y_train, x_test, y_test = (np.concatenate(a) for a in (*train[:2], *test[:2]))
    return x_train, y_train, x_test, y_test, train[2], test[2]


def movielens():
    """5,919 ratings by 300 users of 500 items, from a rank-5 model plus biases:
    r = 3.5 + b_u + b_i + <p_u, q_i> + noise, rounded to half stars in 0.5..5. Each user
    rates 10-30 items (about 20), popular ones more often; the 35 items nobody rated are
    dropped by the re-indexing, as in MovieLens, and data.py splits it 70:30 within each
    user. Predicting the mean rating gives a test MSE of 0.71; MatrixFactorization gets
    about 0.5 after 500 steps of batch 32.
    """
    rng = np.random.default_rng(SEED)
    p, q = rng.normal(0, 0.5, (300, 5)), rng.normal(0, 0.5, (500, 5))
    b_u, b_i = rng.normal(0, 0.3, 300), rng.normal(0, 0.5, 500)
    popularity = rng.dirichlet(np.ones(500))
    rated = [rng.choice(500, rng.integers(10, 31), replace=False, p=popularity) for _ in p]
    users = np.repeat(np.arange(300), [len(r) for r in rated])
    items = np.concatenate(rated)
    r = 3.5 + b_u[users] + b_i[items] + (p[users] * q[items]).sum(1)
    r = np.clip(np.rint(2 * (r + rng.normal(0, 0.3, len(r)))) / 2, 0.5, 5.0)
    return users, items, r.astype(np.float32)
