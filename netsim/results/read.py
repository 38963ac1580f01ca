"""Reading a results folder back: config.json, steps.csv, messages.csv, evals.csv, summary.json.

A run made with several seeds keeps one folder per seed below its own, ``<run>/seed=<s>/``;
a run made with one seed (today's layout) has its files in ``<run>/`` itself.

Any file may be missing or cut short (a run still going, or one that was killed): a missing or
header-only file reads as empty and garbled rows are dropped, so readers never fail on them.
"""

import csv
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

MB_PER_WORKER = "MB sent per worker"  # the one name of the measure, in tables and on axes


def mb_per_worker(bytes_sent, workers: int):
    """MB sent per worker: every byte sent by every node, a server's too, / workers (the
    network load that each worker brings); 0 without workers."""
    return bytes_sent / workers / 1e6 if workers else 0.0


class Run(NamedTuple):
    name: str
    roles: list[str]
    config: dict
    summary: dict
    steps: dict
    messages: dict
    evals: dict
    color: tuple | None = None  # set by plots.py: one colour per run in every figure
    # a run of several seeds: every seed's Run (the fields above are the first seed's)
    seeds: tuple = ()
    # with faults: {node: [(went offline, came back or None), ...]} from records.csv
    offline: dict | None = None


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_csv(path: Path, text: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Columns as arrays: `text` ones as strings, the rest as floats ("" is NaN).

    A missing or header-only file gives {}. Rows with missing or garbled fields, as an
    interrupted write leaves at the end, are dropped.
    """
    rows = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if None in row or None in row.values():
                    continue
                try:
                    rows.append(
                        {k: v if k in text else float(v) if v else np.nan for k, v in row.items()}
                    )
                except ValueError:
                    continue
    except FileNotFoundError:
        return {}
    if not rows:
        return {}
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _roles(config: dict, steps: dict, messages: dict) -> list[str]:
    """Role of each node id; without a config every node seen in the CSVs is a worker."""
    if "roles" in config:
        return list(config["roles"])
    ids = [*steps.get("node", []), *messages.get("src", []), *messages.get("dst", [])]
    return ["worker"] * (int(max(ids)) + 1 if ids else 0)


def worker_step_times(roles: list[str], steps: dict) -> np.ndarray:
    """Every worker's gaps between consecutive step ends (the first from time 0), pooled."""
    if not steps:
        return np.empty(0)
    node, step, t_end = steps["node"], steps["step"], steps["t_end"]
    times = []
    for i, role in enumerate(roles):
        if role != "worker":
            continue
        mine = node == i
        ends = t_end[mine][np.argsort(step[mine], kind="stable")]
        times.append(np.diff(ends, prepend=0.0))
    return np.concatenate(times) if times else np.empty(0)


SEED = "seed="  # a seed's folder below its run's: seed=0, seed=1, ...


def _has_results(folder: Path) -> bool:
    return (folder / "summary.json").exists() or (folder / "evals.csv").exists()


def seed_dirs(run_dir: Path) -> list[tuple[int | None, Path]]:
    """A run's results folders: (seed, folder) for each seed=<s>/ that holds results, by seed;
    else [(None, the run's folder)], a run made with one seed."""
    found = []
    if run_dir.is_dir():
        for folder in run_dir.iterdir():
            seed = folder.name[len(SEED) :]
            if folder.name.startswith(SEED) and seed.isdigit() and _has_results(folder):
                found.append((int(seed), folder))
    return sorted(found) or [(None, run_dir)]


def finished(summary: dict) -> bool:
    """A run's summary.json says it ended (issue 14 writes "complete": false until then)."""
    return bool(summary) and summary.get("complete") is not False


def members(run: Run) -> tuple[Run, ...]:
    """The seeds a run's numbers and curves come from: those that finished, or every seed
    while none has (a run going or cut short shows what it reached, marked incomplete)."""
    seeds = run.seeds or (run,)
    done = tuple(m for m in seeds if finished(m.summary))
    return done or seeds


def _load_one(name: str, folder: Path) -> Run:
    config = read_json(folder / "config.json")
    steps = read_csv(folder / "steps.csv")
    messages = read_csv(folder / "messages.csv", text=("kind", "reason"))
    evals = read_csv(folder / "evals.csv", text=("node", "split"))
    summary = read_json(folder / "summary.json")
    roles = _roles(config, steps, messages)
    offline = offline_intervals(folder / "records.csv") if config.get("faults") else None
    return Run(name, roles, config, summary, steps, messages, evals, offline=offline)


def offline_intervals(path: Path) -> dict[int, list[tuple[float, float | None]]]:
    """{node: [(t it went offline, t it came back, None if it never did)]} from the rows
    ``offline`` = 1 and 0 that the simulation records (netsim/lives.py)."""
    intervals: dict[int, list[list]] = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("name") != "offline" or None in row.values():
                    continue
                spans = intervals.setdefault(int(row["node"]), [])
                if row["value"] == "1":
                    spans.append([float(row["t"]), None])
                elif spans and spans[-1][1] is None:
                    spans[-1][1] = float(row["t"])
    except (FileNotFoundError, ValueError):
        pass
    return {node: [tuple(span) for span in spans] for node, spans in intervals.items()}


def load(exp_dir: Path, runs: list[str] | None = None, seeds: dict | None = None) -> list[Run]:
    """The runs' results. ``seeds``: {run: [seed, ...]} to read just those seeds' folders, or
    {run: None} for the run's own folder (one seed); other runs read every seed they have."""
    if runs is None:
        runs = sorted(
            d.name
            for d in exp_dir.iterdir()
            if d.is_dir() and (_has_results(d) or seed_dirs(d)[0][0] is not None)
        )
    loaded = []
    for name in runs:
        run_dir = exp_dir / name
        if seeds is not None and name in seeds:
            chosen = seeds[name]
            folders = [run_dir] if chosen is None else [run_dir / f"{SEED}{s}" for s in chosen]
        else:
            folders = [folder for _, folder in seed_dirs(run_dir)]
        members = tuple(_load_one(name, folder) for folder in folders)
        loaded.append(members[0]._replace(seeds=members if len(members) > 1 else ()))
    return loaded


def step_times(run_dir) -> np.ndarray:
    """Seconds per batch of every worker, pooled (Table I of Cui 2019).

    A worker's step time is the gap between the ends of consecutive steps, so it includes
    any waiting for communication; its first step counts from time 0.
    """
    run_dir = Path(run_dir)
    steps = read_csv(run_dir / "steps.csv")
    return worker_step_times(_roles(read_json(run_dir / "config.json"), steps, {}), steps)
