"""Equal-budget cuts: which of two runs is ahead at the same rounds, seconds or bytes.

Dresevic (2022) compares D-PSGD and RWM per round, per second and per byte: each run's test
accuracy is read at the budget of the cheaper run (the smaller final round count, simulated time
or MB sent per worker), from the evaluations made up to that point, on one split for both runs.
Reads evals.csv, summary.json and config.json only (netsim.results.read), like plots.py.
Runs of several seeds are cut seed by seed (seed s of one run against seed s of the other) and
shown as the mean over seeds ± its 95% interval (netsim/results/aggregate.py).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from netsim.results import aggregate, read  # noqa: E402

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


def _seed_pairs(exp_dir: Path, a: str, b: str) -> list[tuple[Path, Path]]:
    """(a's folder, b's folder) per seed both have; a run of one seed pairs with the first."""
    dirs_a, dirs_b = read.seed_dirs(exp_dir / a), read.seed_dirs(exp_dir / b)
    common = sorted(set(dict(dirs_a)) & set(dict(dirs_b)) - {None})
    if common:
        return [(dict(dirs_a)[s], dict(dirs_b)[s]) for s in common]
    return [(dirs_a[0][1], dirs_b[0][1])]


def cuts(exp_dir: Path, a: str, b: str) -> list[dict]:
    """One row per axis: the budget, the split both runs are read on, and their scores there.

    The full test set when both runs have an evaluation on it within the budget (they end at
    the same budget), else the test subset: never one run on each, as their scores differ.
    With several seeds: each seed's cut at its own budget, on one split for every seed; the
    row holds the means (the budget's too), "ci" the scores' 95% half-widths, "seeds" n.
    """
    pairs = [(curve(da), curve(db)) for da, db in _seed_pairs(Path(exp_dir), a, b)]
    rmse = _rating(pairs[0][0])
    out = []
    for axis, label, _ in AXES:
        budgets = [min(ca[axis][-1], cb[axis][-1]) for ca, cb in pairs]
        both = [
            s
            for s in ("test", "subset")
            if all(
                len(_within(c, axis, budget, s))
                for (ca, cb), budget in zip(pairs, budgets, strict=True)
                for c in (ca, cb)
            )
        ]
        split = both[0] if both else "subset"
        scores = {
            name: [
                score_at(pair[k], axis, budget, split)
                for pair, budget in zip(pairs, budgets, strict=True)
            ]
            for k, name in enumerate((a, b))
        }
        means = {name: aggregate.mean_ci(values) for name, values in scores.items()}
        mean = {n: np.nan if m is None else m for n, (m, _, _) in means.items()}
        out.append(
            {
                "cut": label,
                "budget": float(np.mean(budgets)),
                "split": split,
                a: mean[a] if len(pairs) > 1 else scores[a][0],
                b: mean[b] if len(pairs) > 1 else scores[b][0],
                "metric": "RMSE" if rmse else "accuracy",
                "ci": {name: means[name][1] for name in (a, b)},
                "seeds": len(pairs),
            }
        )
    return out


def split_name(run_dir: Path, split: str) -> str:
    """How the table and the figure name a split: the full test set or the subset's size."""
    if split == "test":
        return "full test set"
    size = read.read_json(run_dir / "config.json").get("eval_subset")
    return f"test subset of {size:,}" if size else "test subset"


def _score(row: dict, name: str, rmse: bool) -> str:
    """'80.00%' or, over seeds, '80.00% ± 1.20' (the 95% half-width, in points)."""
    scale, fmt, unit = (1.0, ".4f", "") if rmse else (100.0, ".2f", "%")
    half = row["ci"][name]
    shown = f"{format(scale * row[name], fmt)}{unit}"
    return shown if half is None else f"{shown} ± {format(scale * half, fmt)}"


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
            row["read on"] = split_name(_seed_pairs(exp_dir, a, b)[0][0], row["split"])
            shown = " | ".join(_score(row, name, rmse) for name in (a, b))
            budget = f"{row['budget']:.1f}{unit[row['cut']]}"
            if row["seeds"] > 1:
                budget += f" (mean of {row['seeds']} seeds)"
            lines.append(f"| {a} vs {b} | {row['cut']} | {budget} | {row['read on']} | {shown} |")
        x = np.arange(len(rows))
        for shift, name in ((-0.2, a), (0.2, b)):
            errors = [scale * (r["ci"][name] or 0) for r in rows] if rows[0]["seeds"] > 1 else None
            ax.bar(x + shift, [scale * r[name] for r in rows], 0.4, yerr=errors, label=name)
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
