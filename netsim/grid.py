"""Expanding an experiment into the runs of a sweep: the grid of ``--sweep`` values and the
seeds of ``--seeds``, checked before any run starts (netsim/sweeps.py runs them).

A key reaches the runs that ``--set`` with that key would change: a shared key every run
that does not set it itself, ``algorithm.f`` the runs whose algorithm has a field f,
``RUN.key`` that run. Each run a key reaches becomes one run per value, named after it
(``gosgd,algorithm.p=0.5``; a RUN.key without its RUN.); a run no key reaches stays as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re

from netsim.experiment import ConfigError, Experiment, Run, parse_value


def parse_seeds(text: str) -> int | list[int]:
    """'3' -> 3 (three seeds), '0,1,2' -> [0, 1, 2]."""
    try:
        return [int(s) for s in text.split(",") if s.strip()] if "," in text else int(text)
    except ValueError:
        raise ConfigError(f"--seeds takes a count K or seeds S,S,..., got {text!r}") from None


def parse_grid(assignments: list[str]) -> dict[str, list]:
    """``["algorithm.p=0.1,0.5", "workers=4,8"]`` -> {"algorithm.p": [0.1, 0.5], ...}."""
    grid = {}
    for text in assignments:
        key, sep, raw = text.partition("=")
        values = [parse_value(v) for v in _split(raw)]
        if not sep or not key or not values:
            raise ConfigError(f"--sweep takes KEY=V1,V2,..., got {text!r}")
        if key in grid:
            raise ConfigError(f"--sweep {key} is given twice: list its values once, {key}=V1,V2")
        grid[key] = values
    return grid


def _split(raw: str) -> list[str]:
    """Commas split values, except inside brackets: '[1,2],[3]' -> ['[1,2]', '[3]']."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(raw + ","):
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append(raw[start:i].strip())
            start = i + 1
    return [part for part in parts if part]


def seeds_of(own: int, seeds: int | list[int] | None) -> list[int]:
    """The seeds a run of seed ``own`` is made with."""
    if seeds is None:
        return [own]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"--seeds K needs K >= 1, got {seeds}")
        return [own + k for k in range(seeds)]
    chosen = list(seeds)
    if not chosen or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in chosen):
        raise ConfigError(f"--seeds takes seeds >= 0, got {seeds!r}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"--seeds lists a seed twice: {seeds!r}")
    return chosen


def label(value) -> str:
    """A value as a run name shows it: '100Mbit/s' -> '100Mbit_s'."""
    return re.sub(r"[^\w.+-]+", "_", str(value)).strip("_") or "_"


def _reaches(key: str, run: Run, names: set[str]) -> bool:
    """Whether ``--set key=...`` changes this run (the rules of Experiment.override)."""
    head, _, rest = key.partition(".")
    if rest and head in names:
        return head == run.name
    if head == "algorithm":
        fields = (
            dataclasses.fields(run.algorithm) if dataclasses.is_dataclass(run.algorithm) else ()
        )
        return rest in {f.name for f in fields}
    return head not in run.settings


def _scoped(key: str, names: set[str]) -> str:
    head, _, rest = key.partition(".")
    return rest if rest and head in names else key


def expand(experiment: Experiment, grid: dict[str, list]) -> tuple[Experiment, dict]:
    """The experiment with each run that the grid reaches replaced by one run per point, and
    {run name: {"run": the run it came from, "values": {key: value}}}."""
    names = {run.name for run in experiment.runs}
    runs, points = [], {}
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"sweep {key!r} needs a list of values, got {values!r}")
        if len({label(v) for v in values}) != len(values):
            raise ConfigError(f"sweep {key!r}: two of its values {values!r} name the same run")
        if not any(_reaches(key, run, names) for run in experiment.runs):
            head, _, rest = key.partition(".")
            raise ConfigError(
                f"sweep {key!r} changes no run: "
                + (f"no run's algorithm has a field {rest!r}" if head == "algorithm" else
                   f"every run sets {head!r} itself; sweep RUN.{key} for one of them")
            )  # fmt: skip
    for run in experiment.runs:
        keys = [key for key in grid if _reaches(key, run, names)]
        # a RUN.key names the run already: its runs are named after the key without RUN.
        own = {key: _scoped(key, names) for key in keys}
        for values in itertools.product(*(grid[key] for key in keys)):
            point = copy.copy(experiment)
            point.runs = [run]
            chosen = dict(zip(keys, values, strict=True))
            for key, value in chosen.items():
                point._set(point.runs, own[key], value, shared=False)  # --set, a Python value
            name = ",".join([run.name, *(f"{own[k]}={label(v)}" for k, v in chosen.items())])
            runs.append(Run(name, point.runs[0].algorithm, **point.runs[0].settings))
            points[name] = {"run": run.name, "values": chosen}
    pairs = [
        (name, b + name[len(a) :])
        for a, b in experiment.pairs
        for name, point in points.items()
        if point["run"] == a and b + name[len(a) :] in points
    ]
    expanded = Experiment(experiment.name, runs, pairs=pairs, **experiment.shared)
    if experiment.only is not None:
        expanded.only = [name for name, p in points.items() if p["run"] in experiment.only]
    return expanded, points
