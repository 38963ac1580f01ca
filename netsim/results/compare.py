"""Equal-budget cuts: which of two runs is ahead at the same rounds, seconds or bytes.

Dresevic (2022) compares D-PSGD and RWM per round, per second and per byte: each run's test
accuracy is read at the budget of the cheaper run (the smaller final round count, simulated time
or MB sent per worker), from the evaluations made up to that point, on one split for both runs.
Reads evals.csv, summary.json and config.json only (netsim.results.read), like plots.py.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from netsim.results import read  # noqa: E402

AXES = (("steps", "equal rounds", " rounds"), ("t", "equal time", " s"))
AXES += (("bytes", "equal bytes", f" {read.MB_PER_WORKER}"),)


def curve(run_dir: Path) -> dict[str, np.ndarray]:
    """The global model's evaluations: t, steps, MB sent per worker, split, and the score
    (accuracy, or the test RMSE for rating data, which has no accuracy)."""
    workers = read.read_json(run_dir / "summary.json")["workers"]
    evals = read.read_csv(run_dir / "evals.csv", text=("node", "split"))
    mine = evals["node"] == "global"
    keys = ("t", "steps", "bytes", "split", "accuracy", "loss")
    columns = {key: evals[key][mine] for key in keys}
    columns["bytes"] = read.mb_per_worker(columns["bytes"], workers)
    return columns


def _rating(c: dict[str, np.ndarray]) -> bool:
    return bool(len(c["accuracy"])) and bool(np.all(np.isnan(c["accuracy"])))


def _within(c: dict[str, np.ndarray], axis: str, budget: float, split: str) -> np.ndarray:
    return np.flatnonzero((c[axis] <= budget * (1 + 1e-12)) & (c["split"] == split))


def score_at(c: dict[str, np.ndarray], axis: str, budget: float, split: str) -> float:
    """The score of the last evaluation on that split made within the budget on that axis."""
    within = _within(c, axis, budget, split)
    score = c["loss"] if _rating(c) else c["accuracy"]
    return float(score[within[-1]]) if len(within) else float("nan")


def cuts(exp_dir: Path, a: str, b: str) -> list[dict]:
    """One row per axis: the budget, the split both runs are read on, and their scores there.

    The full test set when both runs have an evaluation on it within the budget (they end at
    the same budget), else the test subset: never one run on each, as their scores differ.
    """
    ca, cb = curve(Path(exp_dir) / a), curve(Path(exp_dir) / b)
    rmse = _rating(ca)
    out = []
    for axis, label, _ in AXES:
        budget = min(ca[axis][-1], cb[axis][-1])
        both = [
            s for s in ("test", "subset") if all(len(_within(c, axis, budget, s)) for c in (ca, cb))
        ]
        split = both[0] if both else "subset"
        out.append(
            {
                "cut": label,
                "budget": budget,
                "split": split,
                a: score_at(ca, axis, budget, split),
                b: score_at(cb, axis, budget, split),
                "metric": "RMSE" if rmse else "accuracy",
            }
        )
    return out


def split_name(run_dir: Path, split: str) -> str:
    """How the table and the figure name a split: the full test set or the subset's size."""
    if split == "test":
        return "full test set"
    size = read.read_json(run_dir / "config.json").get("eval_subset")
    return f"test subset of {size:,}" if size else "test subset"


def write(exp_dir: Path, pairs: list[tuple[str, str]]) -> str:
    """cuts.md (a table) and cuts.png (grouped bars) for each pair of runs; returns the table."""
    exp_dir = Path(exp_dir)
    lines = ["| pair | cut | budget | read on | first | second |"]
    lines.append("| --- | --- | ---: | --- | ---: | ---: |")
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 3.9), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs, strict=True):
        rows = cuts(exp_dir, a, b)
        rmse = rows[0]["metric"] == "RMSE"
        scale = 1.0 if rmse else 100.0
        unit = {label: unit for _, label, unit in AXES}
        for row in rows:
            row["read on"] = split_name(exp_dir / a, row["split"])
            shown = (
                f"{row[a]:.4f} | {row[b]:.4f}"
                if rmse
                else f"{100 * row[a]:.2f}% | {100 * row[b]:.2f}%"
            )
            budget = f"{row['budget']:.1f}{unit[row['cut']]}"
            lines.append(f"| {a} vs {b} | {row['cut']} | {budget} | {row['read on']} | {shown} |")
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [scale * r[a] for r in rows], 0.4, label=a)
        ax.bar(x + 0.2, [scale * r[b] for r in rows], 0.4, label=b)
        ax.set_xticks(x, [f"{r['cut']}\n({r['read on']})" for r in rows], fontsize=8)
        ax.set_ylabel("test RMSE (lower is better)" if rmse else "test accuracy (%)")
        ax.set_title(f"{a} vs {b}", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Each run at the budget of the cheaper run, both read on the same test split")
    fig.tight_layout()
    fig.savefig(exp_dir / "cuts.png", dpi=120)
    plt.close(fig)
    table = "\n".join(lines)
    (exp_dir / "cuts.md").write_text(table + "\n")
    return table
