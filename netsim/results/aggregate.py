"""Means over seeds with 95% confidence intervals, for the tables and the shaded bands.

The interval is Student's t on the seeds' values: mean +- t(0.975, n - 1) s / sqrt(n), the
usual one for a handful of seeds (n = 3 gives t = 4.30, much wider than the normal 1.96).
numpy only: the t quantile is found by bisection on its CDF, integrated numerically.
"""

from __future__ import annotations

import functools
import math

import numpy as np

LEVEL = 0.95


@functools.cache
def t_quantile(df: int, p: float = (1 + LEVEL) / 2) -> float:
    """The p quantile of Student's t with df degrees of freedom (to about 1e-9)."""
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(t: float) -> float:
        # Simpson's rule on the density; the substitution x = t u keeps the nodes on [0, 1]
        u = np.linspace(0.0, 1.0, 4001)
        y = scale * (1 + (t * u) ** 2 / df) ** (-(df + 1) / 2)
        return 0.5 + t * (y[0] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum() + y[-1]) / 12000

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def mean_ci(values) -> tuple[float | None, float | None, int]:
    """(mean, half-width of the 95% interval, count) of the values that are numbers; the
    half-width is None below two values, the mean None without any."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return None, None, 0
    if len(x) == 1:
        return float(x[0]), None, 1
    half = t_quantile(len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half), len(x)


def text(values, fmt: str, scale: float = 1.0) -> str:
    """'89.10 ± 0.52' (mean ± 95% interval), '89.10' for one value, '-' for none."""
    mean, half, _ = mean_ci(values)
    if mean is None:
        return "-"
    shown = format(mean * scale, fmt)
    return shown if half is None else f"{shown} ± {format(half * scale, fmt)}"


def band(curves: list[tuple[np.ndarray, np.ndarray]]):
    """The mean curve of several seeds' (x, y) curves and its 95% band: (x, mean, lo, hi).

    Seeds evaluated at the same x (a steps schedule, or a time schedule on the time axis) are
    averaged point by point; otherwise each curve is interpolated onto every x of any seed
    within the range all of them cover, so the band never extrapolates a seed.
    """
    curves = [(np.asarray(x, float), np.asarray(y, float)) for x, y in curves if len(x)]
    if not curves:
        return (np.empty(0),) * 4
    first = curves[0][0]
    if all(len(x) == len(first) and np.array_equal(x, first) for x, _ in curves):
        grid, ys = first, np.stack([y for _, y in curves])
    else:
        start = max(x.min() for x, _ in curves)
        end = min(x.max() for x, _ in curves)
        grid = np.unique(np.concatenate([x for x, _ in curves]))
        grid = grid[(grid >= start) & (grid <= end)]
        ys = []
        for x, y in curves:
            order = np.argsort(x, kind="stable")
            ys.append(np.interp(grid, x[order], y[order]))
        ys = np.stack(ys) if ys else np.empty((0, 0))
    mean = ys.mean(axis=0)
    n = len(ys)
    half = (
        t_quantile(n - 1) * ys.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros_like(mean)
    )
    return grid, mean, mean - half, mean + half
