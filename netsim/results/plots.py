"""Figures and the summary table of an experiment, read back from its results files.

Only reads `results/<experiment>/<run>/` (config.json, steps.csv, messages.csv, evals.csv,
summary.json), so plots can be redrawn while a run is still going or after it was killed.
Any file may be missing or cut short; a figure then skips that run instead of failing.
Accuracy is stored as a fraction and shown in percent; times are simulated seconds. A run of
several seeds (``<run>/seed=<s>/``) is drawn as its mean curve in a shaded 95% band and shown
in the table as mean ± 95% interval (netsim/results/aggregate.py).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from netsim.results import aggregate, read  # noqa: E402
from netsim.results import timeline as _timeline  # noqa: E402
from netsim.results.read import Run, step_times  # noqa: E402, F401  (step_times: public here too)

DPI = 120


def _load(exp_dir: Path, runs, marked: dict | None = None, seeds=None) -> list[Run]:
    loaded = read.load(exp_dir, runs, seeds)
    # One colour per run, fixed by its position, so every figure uses the same one.
    cmap = plt.get_cmap("tab10" if len(loaded) <= 10 else "tab20")
    return [
        run._replace(color=cmap(k % cmap.N), name=run.name + "*" * (run.name in (marked or {})))
        for k, run in enumerate(loaded)
    ]


def marks_note(marked: dict[str, list[str]]) -> str:
    """What a * after a run's name means, and which of its settings differ."""
    runs = "; ".join(f"{name} ({', '.join(keys)})" for name, keys in marked.items())
    return f"Runs marked * were made with other settings than the experiment has now: {runs}"


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes)


def _save(fig, path: Path, tight: bool = True) -> Path:  # tight: one more draw, to crop
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


# name -> (file name, x label, what the title calls it, x values from the global evaluations
# and the worker count)
_ACCURACY_AXES = {
    "time": ("accuracy_vs_time.png", "Simulated time (s)", "simulated time", lambda ev, w: ev["t"]),
    "bytes": (
        "accuracy_vs_bytes.png",
        f"{read.MB_PER_WORKER} (all nodes' bytes, servers' too, / workers)",
        read.MB_PER_WORKER,
        lambda ev, w: read.mb_per_worker(ev["bytes"], w),
    ),
    "steps": (
        "accuracy_vs_steps.png",
        "Steps every worker reached",
        "steps",
        lambda ev, w: ev["steps"],
    ),
}


SEEDS_NOTE = (
    "With several seeds, each number is the mean over the seeds ± the half-width of its 95% "
    "confidence interval (Student's t) over the seeds that finished; seeds: how many did."
)
INCOMPLETE = " (incomplete)"
INCOMPLETE_NOTE = (
    "Runs marked (incomplete) were interrupted or failed, or are still going (summary.json: "
    '"complete": false): their numbers are what they reached.'
)
ROUNDS = "rounds x local steps"  # the steps of a federated run (config.json's round_size)


def _steps_label(runs: list[Run]) -> tuple[str, bool]:
    """The steps axis' label, and whether federated runs need a note in their legend entry."""
    federated = [bool(run.config.get("round_size")) for run in runs if run.evals]
    if federated and all(federated):
        return f"Server {ROUNDS} (all clients' steps / clients per round)", False
    if any(federated):
        return f"Steps every worker reached; federated runs: {ROUNDS}", True
    return _ACCURACY_AXES["steps"][1], False


def _series(run: Run, workers: int, x_of):
    """One seed's global curve on the test subset and its final full-test points, as
    (x, y, x_final, y_final, rating) with y in percent, or the test RMSE for rating data."""
    if not run.evals or workers == 0 and x_of is _ACCURACY_AXES["bytes"][3]:
        return None
    ev = {k: v[run.evals["node"] == "global"] for k, v in run.evals.items()}
    # rating data has no accuracy: its evaluations hold the test RMSE in the loss column
    regress = bool(len(ev["accuracy"])) and bool(np.all(np.isnan(ev["accuracy"])))
    x, acc = x_of(ev, workers), ev["loss"] if regress else 100 * ev["accuracy"]
    order = np.argsort(ev["t"], kind="stable")
    curve = order[ev["split"][order] == "subset"]
    final = order[ev["split"][order] == "test"]
    if len(curve) == 0 and len(final) == 0:
        return None
    return x[curve], acc[curve], x[final], acc[final], regress


def _plot_accuracy(runs: list[Run], exp_dir: Path, axis: str, marked: dict) -> Path:
    filename, xlabel, quantity, x_of = _ACCURACY_AXES[axis]
    mixed = False
    if axis == "steps":
        xlabel, mixed = _steps_label(runs)
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    drawn, rating, banded = False, True, False
    for run in runs:
        workers = int(run.config.get("workers") or run.roles.count("worker"))
        series = [s for m in read.members(run) if (s := _series(m, workers, x_of)) is not None]
        if not series:
            continue
        rating &= all(s[4] for s in series)
        if axis == "time":  # faults: the run's offline periods, darker as more overlap
            _timeline.shade_offline(ax, run)
        label = run.name + (f" ({ROUNDS})" if mixed and run.config.get("round_size") else "")
        star = {"color": run.color, "ms": 14, "mec": "black", "mew": 0.8}
        if len(series) == 1:
            x, y, x_final, y_final, _ = series[0]
            ax.plot(x, y, color=run.color, lw=1.8, label=label)
            ax.plot(x_final, y_final, "*", **star)
        else:
            x, mean, lo, hi = aggregate.band([(s[0], s[1]) for s in series])
            # the interval is drawn within what a score can be: 0-100%, an RMSE from 0
            top = None if series[0][4] else 100.0
            ax.plot(x, mean, color=run.color, lw=1.8, label=f"{label} ({len(series)} seeds)")
            ax.fill_between(x, np.clip(lo, 0, top), np.clip(hi, 0, top), color=run.color,
                            alpha=0.2, lw=0)  # fmt: skip
            finals = [(s[2][-1], s[3][-1]) for s in series if len(s[2])]
            if finals:
                y_mean, y_half, _ = aggregate.mean_ci([y for _, y in finals])
                x_mean = float(np.mean([x for x, _ in finals]))
                low, high = np.clip([y_mean - (y_half or 0), y_mean + (y_half or 0)], 0, top)
                bar = [[y_mean - low], [high - y_mean]]
                ax.errorbar(x_mean, y_mean, yerr=bar, fmt="*", ecolor="black", **star)
            banded = True
        drawn = True
    if drawn:
        ax.plot([], [], "*", ms=12, color="0.8", mec="black", mew=0.8, label="full test set (end)")
        if banded:
            ax.fill_between([], [], [], color="0.6", alpha=0.3, label="95% interval over seeds")
        if marked:
            ax.plot([], [], " ", label=marks_note(marked).replace(": ", ":\n", 1))
        if len(ax.get_legend_handles_labels()[1]) > 6:  # long: beside the axes, not on curves
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        else:
            ax.legend(fontsize=8 if marked else None)
    else:
        _no_data(ax, "global evaluations")
    ax.set_xlabel(xlabel)
    metric = "Test RMSE" if drawn and rating else "Accuracy"
    ax.set_ylabel(
        "Test RMSE (lower is better)" if metric == "Test RMSE" else "Global model accuracy (%)"
    )
    ax.set_title(f"{metric} vs {quantity}")
    ax.grid(alpha=0.3)
    return _save(fig, exp_dir / filename)


def _plot_step_hist(runs: list[Run], exp_dir: Path) -> Path:
    """Small multiples, one panel per run on a shared x axis, so overlaps never hide a run."""
    times = [(run, t) for run in runs if len(t := _pooled_step_times(run))]
    fig, axes = plt.subplots(
        max(len(times), 1), 1, sharex=True, squeeze=False,
        figsize=(7, 1.1 + 1.5 * max(len(times), 1)), layout="constrained",
    )  # fmt: skip
    axes = axes[:, 0]
    fig.suptitle("Seconds per step of each worker: computing and waiting for messages")
    if not times:
        _no_data(axes[0], "worker steps")
        return _save(fig, exp_dir / "step_time_hist.png", tight=False)
    pooled = np.concatenate([t for _, t in times])
    lo, hi = pooled.min(), pooled.max()
    # Spread over more than a decade (stragglers, blocking waits) reads better on log x.
    log = lo > 0 and hi / lo > 10
    if hi - lo <= 1e-9 * max(hi, 1e-9):
        lo, hi = lo * 0.9, hi * 1.1 + 1e-9
    bins = np.geomspace(lo, hi, 41) if log else np.linspace(lo, hi, 41)
    for ax, (run, t) in zip(axes, times, strict=True):
        ax.hist(t, bins=bins, color=run.color, alpha=0.45)
        ax.hist(t, bins=bins, color=run.color, histtype="step", lw=1.5)
        for q, ls in ((5, ":"), (50, "--"), (95, ":")):
            v = np.percentile(t, q)
            ax.axvline(v, color="black", ls=ls, lw=1.2, label=f"p{q} = {v:.3g} s")
        seeds = f", {len(read.members(run))} seeds" if run.seeds else ""
        ax.set_title(f"{run.name}  ({len(t)} steps{seeds})", fontsize=10, loc="left")
        ax.set_ylabel("Steps")
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    if log:
        axes[-1].set_xscale("log")
    axes[-1].set_xlabel("Time per step, including communication (s)")
    return _save(fig, exp_dir / "step_time_hist.png", tight=False)


def _pooled_step_times(run: Run) -> np.ndarray:
    """Every worker's step times, of every seed of the run."""
    times = [read.worker_step_times(m.roles, m.steps) for m in read.members(run)]
    return np.concatenate(times)


def plot_experiment(
    exp_dir, runs: list[str] | None = None, timeline=None, marked: dict | None = None, seeds=None
) -> list[Path]:
    """Write the five figures of an experiment into `exp_dir`; returns their paths.

    `runs` defaults to every subfolder holding a summary.json or an evals.csv, sorted.
    `timeline=(start, end)` is the window of simulated seconds the timeline shows (end None:
    to the end of the runs; None: the first 10 s). `marked`: {run: the settings in which it
    differs from the experiment now}; such runs are named with a * and a legend note.
    `seeds`: {run: [seed, ...]} to read only those seed folders ({run: None}: the run's own
    folder); other runs show every seed they have. The timeline shows a run's first seed.
    """
    _timeline.check(timeline)
    exp_dir = Path(exp_dir)
    loaded = _load(exp_dir, runs, marked, seeds)
    paths = [_plot_accuracy(loaded, exp_dir, axis, marked or {}) for axis in _ACCURACY_AXES]
    paths.append(_plot_step_hist(loaded, exp_dir))
    paths.append(_save(_timeline.figure(loaded, timeline), exp_dir / "timeline.png", tight=False))
    return paths


def _num(values, fmt: str, scale: float = 1.0) -> str:
    """One seed's value, or several seeds' mean ± 95% interval; "-" for none."""
    return aggregate.text(values, fmt, scale)


def _rating(summary: dict) -> bool:
    """Rating data records no accuracy, only the test RMSE (in final_loss)."""
    return summary.get("final_accuracy") is None and summary.get("final_loss") is not None


def _row(run: Run, rating: bool, seeded: bool) -> list[str]:
    s = run.summary
    workers = s.get("workers") or run.config.get("workers")
    summaries = [m.summary for m in read.members(run)]

    def each(get):
        return [get(m) for m in summaries]

    def mb(m):
        sent = m.get("bytes_sent")
        return None if sent is None else read.mb_per_worker(sent, workers or 0)

    seeds = run.seeds or (run,)
    done = sum(read.finished(m.summary) for m in seeds)
    return [
        run.name + INCOMPLETE * (done < len(seeds)),
        str(s.get("algorithm") or run.config.get("algorithm") or "-"),
        str(workers or "-"),
        *[str(done)] * seeded,
        _num(each(lambda m: m.get("final_loss")), ".4f") if rating
        else _num(each(lambda m: m.get("final_accuracy")), ".2f", 100),
        _num(each(lambda m: m.get("sim_time")), ".1f"),
        *(_num(each(lambda m, q=q: (m.get("step_time") or {}).get(q)), ".3f")
          for q in ("p5", "p50", "p95")),
        _num(each(mb), ".2f"),
    ]  # fmt: skip


def summary_table(
    exp_dir, runs: list[str] | None = None, marked: dict | None = None, seeds=None
) -> str:
    """One line per run from its summary.json, as a Markdown table that also reads as plain
    fixed-width text. Values a run has not written yet (interrupted run) show as "-"; runs in
    `marked` ({run: settings}) get a * and a note below the table. Runs of several seeds
    (`seeds` as in plot_experiment) show each number as mean ± 95% interval over the seeds,
    and how many seeds have it."""
    loaded = _load(Path(exp_dir), runs, marked, seeds)
    seeded = any(run.seeds for run in loaded)
    # rating data has no accuracy (NaN): show its final test RMSE, kept in final_loss
    rating = bool(loaded) and all(_rating(r.summary) for r in loaded)
    header = ["run", "algorithm", "workers", *["seeds"] * seeded]
    header += ["final RMSE" if rating else "final acc (%)"]
    header += ["sim time (s)", "step p5 (s)", "step p50 (s)", "step p95 (s)", read.MB_PER_WORKER]
    rows = [_row(run, rating, seeded) for run in loaded]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    # Names left-aligned, numbers right-aligned so their decimals line up.
    rule = [":" + "-" * (w - 1) if c < 2 else "-" * (w - 1) + ":" for c, w in enumerate(widths)]
    lines = [
        "| "
        + " | ".join(x.ljust(w) if c < 2 else x.rjust(w) for c, (x, w) in enumerate(cells))
        + " |"
        for cells in (zip(r, widths, strict=True) for r in [header, rule, *rows])
    ]
    note = f"\n{marks_note(marked)}\n" if marked else ""
    if any(INCOMPLETE in row[0] for row in rows):
        note += f"\n{INCOMPLETE_NOTE}\n"
    if seeded:
        note += f"\n{SEEDS_NOTE}\n"
    return "\n".join(lines) + "\n" + note
