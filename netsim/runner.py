"""netsim.run: check every run of an experiment up front, then simulate each, then plot.

Every mistake a spec can hold (a setting, the network, the topology, the data files) is found
before the first run starts, so a long experiment never dies half-way on a typo.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
from pathlib import Path

from netsim.algorithms import hooks
from netsim.checks import naming
from netsim.experiment import ConfigError, Experiment, Settings
from netsim.preflight import check_out, preflight  # noqa: F401  (preflight: public here too)

FEW_EVALUATIONS = 5  # fewer evaluations during a run than this, and its curves say little


def _check_role_keys(experiment: Experiment, runs) -> None:
    """A per-role network override must name a role that some run of the experiment has."""
    seen = {
        role
        for _, settings in experiment.resolve(everything=True)
        for role, *_ in hooks.layout(settings.algorithm, settings.graph())[1]
    }
    for _, settings in runs:
        for key in settings.network.nodes:
            if isinstance(key, str) and key not in seen:
                raise ConfigError(
                    f"Network.nodes[{key!r}]: no run has a node with this role; "
                    f"roles are {sorted(seen)}"
                )


def _warn_few_evaluations(experiment: Experiment, name: str, settings: Settings) -> None:
    """One line on stderr when a run's step budget leaves its curves a few points (--set
    steps=100 on an experiment that evaluates every 100 steps), before any run starts."""
    every, steps = settings.eval_every, settings.steps
    if steps is None or not isinstance(every, int) or steps // every >= FEW_EVALUATIONS:
        return
    better = max(1, steps // 10)
    if better >= every:  # too few steps for more evaluations
        return
    points = steps // every + 1  # at the start and every `every` steps
    own = any(r.name == name and "eval_every" in r.settings for r in experiment.runs)
    key = f"{name}.eval_every" if own else "eval_every"
    print(
        f"netsim: warning: run {name!r} takes {steps} steps and evaluates every {every} "
        f"steps: {points} point{'s' * (points > 1)} per curve; for more, --set {key}={better}",
        file=sys.stderr,
    )


def _changed_settings(experiment: Experiment, exp_dir: Path, names, device) -> dict:
    """{run: the settings its saved config.json holds other values of than the experiment has
    now}: runs left from an earlier --set that --only did not run again."""
    from netsim.results.read import read_json

    changed = {}
    for name, settings in experiment.resolve(everything=True):
        saved = read_json(exp_dir / name / "config.json")
        if name not in names or not saved:
            continue
        if device is not None:
            settings = dataclasses.replace(settings, device=device)
        keys = differing(settings, saved)
        if keys:
            changed[name] = keys
    return changed


def differing(settings: Settings, saved: dict) -> list[str]:
    """The settings a run's saved config.json holds other values of than ``settings``."""
    # as the recorder wrote it; workers as counted in the run; "auto" and "calibrate" saved
    # the mode they picked
    now = json.loads(json.dumps(settings.describe(), default=str))
    now["workers"] = settings.graph().number_of_nodes()
    if now["execution"] in ("auto", "calibrate"):
        del now["execution"]
    return [key for key, value in now.items() if key in saved and saved[key] != value]


def report(name: str, summary: dict) -> str:
    """The line that says how a run ended."""
    accuracy, rmse = summary["final_accuracy"], summary["final_loss"]
    score = (
        f"{100 * accuracy:.2f}% test accuracy" if accuracy is not None else f"test RMSE {rmse:.4f}"
    )
    return (
        f"{name}: {summary['steps_per_worker']} steps per worker, {score}, "
        f"{summary['sim_time']:.1f} simulated s in {summary['wall_time_s']:.1f} s"
    )


def check(experiment: Experiment, out: str | Path = "results", device=None, timeline=None):
    """Every check ``run`` makes before its first run starts, running nothing: each run's
    settings, graph, algorithm, network, data split and the results folder; returns the runs
    [(name, Settings)] and, for each, its graph and roles. The first mistake is a one-line
    error naming the run and the setting."""
    runs = experiment.resolve()
    if device is not None:
        runs = [(name, dataclasses.replace(s, device=device)) for name, s in runs]
    checked = []
    for name, settings in runs:
        with naming(name):
            checked.append(preflight(settings))
    _check_role_keys(experiment, runs)
    if timeline is not None:
        from netsim.results import timeline as window

        window.check(timeline)
    check_out(Path(out) / experiment.name)
    return runs, checked


def run(
    experiment: Experiment,
    out: str | Path = "results",
    device: str | None = None,
    progress: bool = True,
    plot: bool = True,
    timeline: tuple[float, float | None] | None = None,
    runtime: str = "sim",
    where=None,
) -> dict[str, dict]:
    """Runs every run of the experiment; returns {run name: summary}. Writes under out/name/.

    ``timeline=(start, end)``: the simulated seconds timeline.png shows (default: 0 to 10).
    ``runtime="real"``: one OS process per node on real TCP (docs/real.md); ``where`` (from
    ``placement``) says on which hosts, by default all on this one."""
    if runtime not in ("sim", "real"):
        raise ConfigError(f"runtime is 'sim' or 'real', got {runtime!r}")
    if runtime == "real":
        from netsim.real import coordinator, hosts

        where = where if where is not None else placement("real")
    else:
        from netsim.sim import Simulation  # torch-heavy; imported once the spec is sound

    runs, checked = check(experiment, out, device, timeline if plot else None)
    for name, settings in runs:
        _warn_few_evaluations(experiment, name, settings)
    if runtime == "real":
        for _, settings in runs:
            hosts.experiment_modules(settings.algorithm)
    exp_dir = Path(out) / experiment.name
    summaries = {}
    for (name, settings), (graph, _) in zip(runs, checked, strict=True):
        if runtime == "real":
            where.last = name == runs[-1][0]
            bar = _bar(name, settings, graph, progress)
            summary = coordinator.run(name, settings, graph, exp_dir / name, bar, where)
            bar.close()
        else:
            simulation = Simulation(name, settings, graph, exp_dir / name, progress=progress)
            summary = simulation.run()
            # A finished simulation's objects refer to each other (SimPy processes, nodes,
            # their models and the messages between them), so only the cycle collector frees
            # them, and it counts objects, not bytes: at VGG-19's size each run left 1.2 GB
            # until a full collection. Free them before the next run starts.
            del simulation
            gc.collect()
        summaries[name] = summary
        if progress:
            print(report(name, summary), file=sys.stderr)
    if plot:
        from netsim.results import plots, read

        # every run of the experiment that has results, so re-running a few (--only) keeps the
        # others in the figures and the table (those made with several seeds too); the runs
        # made now are read from their own folders, not from seed folders an earlier
        # --seeds left
        names = [
            r.name
            for r in experiment.runs
            if any((d / "summary.json").exists() for _, d in read.seed_dirs(exp_dir / r.name))
        ]
        marked = _changed_settings(experiment, exp_dir, names, device)
        seeds = dict.fromkeys(summaries)
        plots.plot_experiment(exp_dir, names, timeline=timeline, marked=marked, seeds=seeds)
        table = plots.summary_table(exp_dir, names, marked=marked, seeds=seeds)
        pairs = [p for p in experiment.pairs if set(p) <= set(names)]
        if pairs:
            from netsim.results import compare

            table += "\n\n" + compare.write(exp_dir, pairs)
        (exp_dir / "summary.md").write_text(table + "\n")
    return summaries


def placement(runtime: str, hosts_file=None, port=None, bind=None):
    """Where a real run's nodes go: this host, or a hosts file's hosts (netsim/real/hosts.py)."""
    if runtime != "real":
        if hosts_file is not None or port is not None or bind is not None:
            raise ConfigError("--hosts, --port and --bind are for --runtime real")
        return None
    from netsim.real import hosts

    if hosts_file is None:
        return hosts.Placement(bind=bind or "127.0.0.1", port=port or 0)
    if port is None:
        raise ConfigError("--hosts needs --port N: the agents connect to this host on that port")
    return hosts.Placement(hosts.read_hosts(hosts_file), bind or "0.0.0.0", port, agents=True)


def _bar(name: str, settings: Settings, graph, progress: bool):
    from tqdm import tqdm

    workers = hooks.layout(settings.algorithm, graph)[1]
    total = settings.steps * sum(r[0] == "worker" for r in workers) if settings.steps else None
    return tqdm(total=total, desc=name, unit="step", leave=False, disable=not progress)
