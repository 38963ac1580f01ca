"""netsim.sweep: an experiment's runs over a grid of settings and over seeds, in parallel.

- ``--sweep KEY=V1,V2`` (``grid={KEY: [V1, V2]}``; keys as in ``--set``, netsim/grid.py)
  turns each run the key reaches into one run per value, named after it
  (``gosgd,algorithm.p=0.5``). Several keys give their cartesian grid; a run that no key
  reaches stays as it is.
- ``--seeds K`` repeats every run with its own seed and the K-1 after it (``--seeds 0,1,2``:
  those seeds), each into ``<run>/seed=<s>/``; one seed keeps the run's own folder.
- The runs are independent processes (netsim/executor.py): a local pool, or Ray tasks.
- A run whose folder holds a complete summary.json made with the same settings is not run
  again, so the same command after an interruption finishes the rest.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from netsim import executor, runner
from netsim.checks import naming
from netsim.experiment import ConfigError, Experiment
from netsim.grid import expand, seeds_of
from netsim.results.read import SEED, read_json, seed_dirs


def sweep(
    experiment: Experiment,
    grid: dict[str, list] | None = None,
    seeds: int | list[int] | None = None,
    out: str | Path = "results",
    device: str | None = None,
    progress: bool = True,
    plot: bool = True,
    timeline: tuple[float, float | None] | None = None,
    jobs: int | None = None,
    ray: str | None = None,
) -> dict[str, dict[int, dict]]:
    """Runs every run of the experiment at every point of ``grid`` with every seed; returns
    {run name: {seed: summary}}, runs made earlier with the same settings included.

    ``jobs``: runs at a time in a local process pool (default: one per core; 1: one after
    another in this process, each with its progress bar). ``ray``: run them as Ray tasks
    instead, on ``ray.init()`` for "" or on the cluster at that address. Every run is checked
    before the first starts; a run that fails does not stop the others, and the first
    failure is raised once they are done."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"jobs is the number of runs at a time, >= 1, got {jobs!r}")
    if jobs is not None and ray is not None:
        raise ConfigError("--jobs sizes the local pool; with --ray, the cluster's CPUs decide")
    expanded, points = expand(experiment, grid or {})
    resolved = expanded.resolve()
    if device is not None:
        resolved = [(name, dataclasses.replace(s, device=device)) for name, s in resolved]
    exp_dir = Path(out) / experiment.name
    tasks = []
    for name, settings in resolved:
        chosen = seeds_of(settings.seed, seeds)
        for seed in chosen:
            folder = exp_dir / name / f"{SEED}{seed}" if len(chosen) > 1 else exp_dir / name
            tasks.append(
                executor.Task(
                    name, dataclasses.replace(settings, seed=seed), folder, len(chosen) > 1
                )
            )
    for task in tasks:
        with naming(task.name):
            runner.preflight(task.settings)
    runner._check_role_keys(expanded, resolved)
    if plot:
        from netsim.results import timeline as window

        window.check(timeline)
    for name, settings in resolved:
        runner._warn_few_evaluations(expanded, name, settings)
    # a missing Ray or a wrong address is one line before any run starts
    started = executor.connect_ray(ray) if ray is not None else False
    try:
        runner.check_out(exp_dir)
        summaries: dict[str, dict[int, dict]] = {}
        todo = []
        for task in tasks:
            if (summary := _finished(task)) is not None:
                summaries.setdefault(task.name, {})[task.settings.seed] = summary
            else:
                todo.append(task)
        if progress and len(todo) < len(tasks):
            print(
                f"netsim: {len(tasks) - len(todo)} of {len(tasks)} runs are done already (same "
                f"settings, complete summary.json); running the other {len(todo)}",
                file=sys.stderr,
            )
        failures = _run(todo, jobs, ray, progress, summaries)
    finally:
        if started:
            executor.disconnect_ray()
    if plot:
        _report(expanded, points, grid or {}, exp_dir, tasks, timeline, device)
    for task, exc in failures:
        print(f"netsim: run {task.label} failed: {exc}", file=sys.stderr)
    if failures:
        raise failures[0][1]
    return summaries


def _finished(task: executor.Task) -> dict | None:
    """The run's summary if its folder holds a complete one made with the same settings."""
    summary = read_json(task.folder / "summary.json")
    if not summary or summary.get("complete") is False:
        return None
    saved = read_json(task.folder / "config.json")
    return summary if saved and not runner.differing(task.settings, saved) else None


def _run(todo, jobs, ray, progress, summaries) -> list:
    from tqdm import tqdm

    failures = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress or not todo)

    def ended(task, summary, error):
        if error is not None:
            failures.append((task, error))
        else:
            summaries.setdefault(task.name, {})[task.settings.seed] = summary
            if progress:
                bar.write(runner.report(task.label, summary), file=sys.stderr)
        bar.update(1)

    try:
        executor.execute(todo, ended, jobs, ray, progress)
    finally:
        bar.close()
    return failures


def _report(expanded, points, grid, exp_dir: Path, tasks, timeline, device) -> None:
    """The figures and summary.md of every run of the sweep that has results; a one-key
    sweep also gets the final score against the key's values (netsim/results/sweep_plot.py)."""
    from netsim.results import compare, plots, sweep_plot

    names = [
        run.name
        for run in expanded.runs
        if any((d / "summary.json").exists() for _, d in seed_dirs(exp_dir / run.name))
    ]
    made: dict[str, list[int] | None] = {}
    for task in tasks:  # the runs this sweep made are read from the folders it made
        made[task.name] = (
            [*(made.get(task.name) or []), task.settings.seed] if task.seeded else None
        )
    marked = _marked(expanded, exp_dir, [n for n in names if n not in made], device)
    plots.plot_experiment(exp_dir, names, timeline=timeline, marked=marked, seeds=made)
    table = plots.summary_table(exp_dir, names, marked=marked, seeds=made)
    pairs = [pair for pair in expanded.pairs if set(pair) <= set(names)]
    if pairs:
        table += "\n\n" + compare.write(exp_dir, pairs)
    if grid:
        manifest = {"keys": list(grid), "values": grid, "runs": points}
        (exp_dir / sweep_plot.MANIFEST).write_text(
            json.dumps(manifest, indent=2, default=str) + "\n"
        )
        if len(grid) == 1:
            sweep_plot.plot(exp_dir, seeds=made)
    (exp_dir / "summary.md").write_text(table + "\n")


def _marked(expanded: Experiment, exp_dir: Path, names: list[str], device) -> dict:
    """{run: settings}: runs this sweep did not make whose saved settings differ from the
    experiment's now (left from an earlier command), read from their first seed's folder."""
    marked = {}
    for name, settings in expanded.resolve(everything=True):
        if name not in names:
            continue
        seed, folder = seed_dirs(exp_dir / name)[0]
        saved = read_json(folder / "config.json")
        if device is not None:
            settings = dataclasses.replace(settings, device=device)
        if seed is not None:  # a seed folder holds one of several seeds: not a difference
            settings = dataclasses.replace(settings, seed=seed)
        if saved and (keys := runner.differing(settings, saved)):
            marked[name] = keys
    return marked
