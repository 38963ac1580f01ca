"""Per-message errors of the fidelity harness: a model's completion times against real TCP's,
and real TCP's against its own from another measurement of the same pattern.

Both come two ways: paired, each message against itself, and by rank among alike messages
(those a pattern starts at the same instant with the same size, `Transfers.alike`), where
TCP leaves the order to chance. Real against real says how far per-message agreement can go:
where two measurements of one pattern on the same hosts differ by x per message, no model
can be within less than about x of both.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from validation.harness import Result


def ranked(result: Result, pattern) -> list[tuple[float, float]]:
    """(simulated, measured) completion times, matched by rank among alike transfers (same
    instant and size: `Transfers.alike`): the k-th to end simulated against the k-th to end
    measured. A transfer with none alike is matched with itself."""
    groups = defaultdict(list)
    for key, group in pattern.alike().items():
        if key in result.real:
            groups[group].append(key)
    return [
        pair
        for keys in groups.values()
        for pair in zip(
            sorted(result.sim[key] for key in keys),
            sorted(result.real[key] for key in keys),
            strict=True,
        )
    ]


def relative(pairs) -> np.ndarray:
    """|a / b - 1| of each (a, b): a model's (or a later measurement's) time a against the
    measured b."""
    pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
    return np.abs(pairs[:, 0] / pairs[:, 1] - 1)


def against_itself(measured: list[Result], pattern) -> tuple[np.ndarray, np.ndarray]:
    """Real TCP against itself: each measurement's completion times against the one before's
    (as if it were the model of it), paired and by rank among alike messages; empty with
    fewer than two measurements."""
    paired, by_rank = [], []
    for before, after in zip(measured, measured[1:], strict=False):
        both = Result(before.name, after.real, before.real, after.real_last, before.real_last)
        paired.append(relative(both.pairs()))
        by_rank.append(relative(ranked(both, pattern)))
    empty = np.zeros(0)
    return (np.concatenate(paired) if paired else empty), (
        np.concatenate(by_rank) if by_rank else empty
    )


def spread(errors: np.ndarray) -> str:
    p50, p95, p100 = np.percentile(errors, [50, 95, 100])
    return f"median {p50:.1%}, p95 {p95:.1%}, max {p100:.1%}"
