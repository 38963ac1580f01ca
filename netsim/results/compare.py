"""Equal-budget cuts: which of two runs is ahead at the same rounds, seconds or bytes.

Dresevic (2022) compares D-PSGD and RWM per round, per second and per byte: each run's test
accuracy is read at the budget of the cheaper run (the smaller final round count, simulated time
or MB sent per node), from the evaluations made up to that point. Reads evals.csv and
summary.json only (netsim.results.read), like plots.py.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from netsim.results import read  # noqa: E402

AXES = (("steps", "equal rounds", 1.0), ("t", "equal time", 1.0), ("bytes", "equal bytes", 1e-6))


def curve(run_dir: Path) -> dict[str, np.ndarray]:
    """The global model's evaluations: t, steps, MB sent per worker, and the score (accuracy,
    or the test RMSE for rating data, which has no accuracy)."""
    workers = read.read_json(run_dir / "summary.json")["workers"]
    evals = read.read_csv(run_dir / "evals.csv", text=("node", "split"))
    mine = evals["node"] == "global"
    columns = {key: evals[key][mine] for key in ("t", "steps", "bytes", "accuracy", "loss")}
    columns["bytes"] = columns["bytes"] / workers
    return columns


def _rating(c: dict[str, np.ndarray]) -> bool:
    return bool(len(c["accuracy"])) and bool(np.all(np.isnan(c["accuracy"])))


def score_at(c: dict[str, np.ndarray], axis: str, budget: float) -> float:
    """The score of the last evaluation made within the budget on that axis."""
    within = np.flatnonzero(c[axis] <= budget * (1 + 1e-12))
    score = c["loss"] if _rating(c) else c["accuracy"]
    return float(score[within[-1]]) if len(within) else float("nan")


def cuts(exp_dir: Path, a: str, b: str) -> list[dict]:
    """One row per axis: the budget and both runs' accuracy there."""
    ca, cb = curve(Path(exp_dir) / a), curve(Path(exp_dir) / b)
    rmse = _rating(ca)
    out = []
    for axis, label, scale in AXES:
        budget = min(ca[axis][-1], cb[axis][-1])
        out.append(
            {
                "cut": label,
                "budget": budget * scale,
                a: score_at(ca, axis, budget),
                b: score_at(cb, axis, budget),
                "metric": "RMSE" if rmse else "accuracy",
            }
        )
    return out


def write(exp_dir: Path, pairs: list[tuple[str, str]]) -> str:
    """cuts.md (a table) and cuts.png (grouped bars) for each pair of runs; returns the table."""
    exp_dir = Path(exp_dir)
    lines = ["| pair | cut | budget | first | second |", "| --- | --- | ---: | ---: | ---: |"]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.6), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs, strict=True):
        rows = cuts(exp_dir, a, b)
        rmse = rows[0]["metric"] == "RMSE"
        scale = 1.0 if rmse else 100.0
        unit = {"equal rounds": " rounds", "equal time": " s", "equal bytes": " MB/node"}
        for row in rows:
            shown = (
                f"{row[a]:.4f} | {row[b]:.4f}"
                if rmse
                else f"{100 * row[a]:.2f}% | {100 * row[b]:.2f}%"
            )
            lines.append(
                f"| {a} vs {b} | {row['cut']} | {row['budget']:.1f}{unit[row['cut']]} | {shown} |"
            )
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [scale * r[a] for r in rows], 0.4, label=a)
        ax.bar(x + 0.2, [scale * r[b] for r in rows], 0.4, label=b)
        ax.set_xticks(x, [r["cut"] for r in rows])
        ax.set_ylabel("test RMSE (lower is better)" if rmse else "test accuracy (%)")
        ax.set_title(f"{a} vs {b}", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Each run at the budget of the cheaper run")
    fig.tight_layout()
    fig.savefig(exp_dir / "cuts.png", dpi=120)
    plt.close(fig)
    table = "\n".join(lines)
    (exp_dir / "cuts.md").write_text(table + "\n")
    return table
