"""The final score against one swept setting: where one algorithm overtakes another.

Reads the experiment folder's sweep.json (the grid and each run's values there, written by
netsim/sweeps.py) and each run's summary.json: one line per run of the experiment (and per
value of any other swept key), a point per value of the key, at the mean over seeds with
its 95% interval. Numbers are spaced as numbers; other values (``1Gbit/s``) evenly, in the
order the sweep listed them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from netsim.results import aggregate, read  # noqa: E402

MANIFEST = "sweep.json"


def _summaries(exp_dir: Path, name: str, seeds: dict | None) -> list[dict]:
    if seeds is not None and name in seeds:
        chosen = seeds[name]
        folders = [exp_dir / name] if chosen is None else [
            exp_dir / name / f"{read.SEED}{s}" for s in chosen
        ]  # fmt: skip
    else:
        folders = [folder for _, folder in read.seed_dirs(exp_dir / name)]
    summaries = [read.read_json(folder / "summary.json") for folder in folders]
    done = [s for s in summaries if read.finished(s)]
    return done or [s for s in summaries if s]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot(exp_dir, key: str | None = None, seeds: dict | None = None) -> Path | None:
    """Draws final_vs_<key>.png; returns its path, or None without a sweep.json that holds
    the key (``key`` may be left out when the sweep had one key). ``seeds`` as in
    plots.plot_experiment."""
    exp_dir = Path(exp_dir)
    manifest = read.read_json(exp_dir / MANIFEST)
    keys = manifest.get("keys", [])
    key = key if key is not None else keys[0] if len(keys) == 1 else None
    if key not in keys:
        return None
    values = manifest["values"][key]
    numeric = all(_is_number(v) for v in values)
    lines: dict[str, list] = {}
    for name, point in manifest["runs"].items():
        if key not in point["values"]:
            continue
        others = [f"{k}={v}" for k, v in point["values"].items() if k != key]
        line = ",".join([point["run"], *others])
        lines.setdefault(line, []).append((point["values"][key], name))
    scores = {line: [] for line in lines}
    rating = False
    for line, members in lines.items():
        for value, name in members:
            summaries = _summaries(exp_dir, name, seeds)
            rmse = bool(summaries) and all(s.get("final_accuracy") is None for s in summaries)
            rating |= rmse
            finals = [
                s.get("final_loss") if rmse else 100 * s["final_accuracy"]
                for s in summaries
                if (s.get("final_loss") if rmse else s.get("final_accuracy")) is not None
            ]
            mean, half, n = aggregate.mean_ci(finals)
            if mean is not None:
                x = value if numeric else values.index(value)
                scores[line].append((x, mean, half or 0.0, n))
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for line, points in scores.items():
        if points:
            x, mean, half, _ = np.array(sorted(points), dtype=float).T
            ax.errorbar(x, mean, yerr=half, marker="o", capsize=3, label=line)
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    if any(scores.values()):
        ax.legend(fontsize=8)
    ax.set_xlabel(key)
    ax.set_ylabel("Final test RMSE (lower is better)" if rating else "Final test accuracy (%)")
    seeds_shown = max((n for points in scores.values() for *_, n in points), default=0)
    band = ", mean ± 95% interval over seeds" if seeds_shown > 1 else ""
    ax.set_title(f"Final {'RMSE' if rating else 'accuracy'} vs {key}{band}")
    ax.grid(alpha=0.3)
    path = exp_dir / f"final_vs_{_filename(key)}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _filename(key: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
