"""Experiment and Run: a declarative spec, validated up front with one clear line per mistake.

An experiment file holds values: shared settings and a list of runs, each a name, an algorithm
and the settings it changes. ``--set key=value`` replaces a shared setting (every run that does not
set the key itself); ``--set run.key=value`` one run's; dotted keys reach into the network, the
compute model and the algorithm (``network.latency=5ms``, ``algorithm.timeout=2``).
``--set faults=...`` takes faults as text, ``[Crash(1, at="2s"), LossBurst(0.5, at="2s",
until="6s")]``, one fault, or ``none``; ``resolve`` reads them (netsim/network/fault_text.py).
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

import networkx as nx

import models
from netsim.algorithms import hooks
from netsim.checks import RANGES, check_fields, check_folder_names, check_ranges, naming
from netsim.engine.compute import Compute
from netsim.engine.execution import MODES
from netsim.network import Network
from netsim.network.fault_text import parse_faults
from netsim.units import parse_time
from topologies import graphs


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides its name. Units: seconds, bytes, bits/s."""

    algorithm: Any = None
    data: str = "fashion_mnist"
    data_root: str | None = None
    partition: str = "iid"
    alpha: float = 0.5
    shards_per_node: int = 2
    model: str = "small_cnn"
    batch: int = 32
    lr: float = 0.05
    lr_schedule: str = "constant"  # or "cosine": lr * (1 + cos(pi * progress)) / 2 over `steps`
    momentum: float = 0.0
    weight_decay: float = 0.0
    workers: int | None = None  # None: a user graph's size, else 4 (worker_count)
    topology: str | nx.Graph = "complete"  # a name, or a networkx Graph or DiGraph
    degree: int = 4
    p: float = 0.5
    network: Network = field(default_factory=Network)
    compute: Compute = field(default_factory=Compute)
    steps: int | None = None
    until: float | str | None = None
    stop: str = "all"
    eval_every: int | str = 50
    eval_subset: int = 1000
    eval_local: bool = False  # each worker's own model on its users' test samples (per_user)
    eval_nodes: int = 0  # also evaluate this many sampled workers' own models (evals.csv rows)
    seed: int = 0
    device: str = "auto"
    execution: str = "auto"  # auto (by rule), calibrate (by timing), loop, stacked, grouped, vmap
    faults: list | tuple = ()  # Crash, LinkDown, Partition, Slow, LossBurst, Churn (faults.py)

    def partition_kwargs(self) -> dict:
        return {
            "dirichlet": {"alpha": self.alpha},
            "shards": {"shards_per_node": self.shards_per_node},
        }.get(self.partition, {})

    @property
    def worker_count(self) -> int:
        """``workers``, else the user graph's node count, else 4."""
        if self.workers is not None:
            return self.workers
        return self.topology.number_of_nodes() if self._user_graph() else 4

    def _user_graph(self) -> bool:
        return isinstance(self.topology, (nx.Graph, nx.DiGraph))

    def graph(self) -> nx.Graph:
        """The workers' graph: a user's networkx graph, or one built by name."""
        if self.worker_count == 1:  # a single-machine baseline beside runs on a shared graph
            return nx.empty_graph(1)  # a lone worker has no peers, whatever the topology
        if self._user_graph():
            return graphs.check(self.topology, require_connected=self._needs_connected())
        extra = {"k_regular": {"k": self.degree}, "erdos_renyi": {"p": self.p, "seed": self.seed}}
        graph = graphs.build(self.topology, self.worker_count, **extra.get(self.topology, {}))
        return graphs.check(graph, require_connected=self._needs_connected())

    def _needs_connected(self) -> bool:
        return hooks.needs_connected(self.algorithm) and self.worker_count > 1

    def validate(self) -> None:
        if self.algorithm is None:
            raise ConfigError("a run has no algorithm: write Run('name', SomeAlgorithm())")
        check_fields(self, "", ConfigError)  # types first: the checks below compare values
        check_ranges(self, RANGES, ConfigError)
        n = self.worker_count
        if n < 1:
            raise ConfigError(f"workers must be a positive integer, got {n!r}")
        size = self.topology.number_of_nodes() if self._user_graph() else n
        if n not in (1, size):
            raise ConfigError(
                f"workers={n} but the topology graph has {size} nodes: drop workers or pass a "
                f"graph of {n} nodes"
            )
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule is 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.lr_schedule == "cosine" and self.steps is None:
            raise ConfigError("lr_schedule='cosine' decays over steps: set steps=N as well")
        if self.steps is None and self.until is None and not hooks.rounds(self.algorithm):
            raise ConfigError("a run needs a stop: set steps=N (per worker) or until='60s'")
        if self.until is not None:
            parse_time(self.until, "until")
        if self.stop not in ("all", "first"):
            raise ConfigError(f"stop must be 'all' or 'first', got {self.stop!r}")
        every = self.eval_every
        if (parse_time(every, "eval_every") if isinstance(every, str) else every) <= 0:
            raise ConfigError(f"eval_every must be >= 1 step or a time > 0, got {every!r}")
        if self.eval_local and self.partition != "per_user":
            raise ConfigError("eval_local needs partition='per_user' (its users' test data)")
        if self.model not in models.MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known: {', '.join(models.MODELS)}")
        gpu_n = self.device.startswith("cuda:") and self.device[5:].isdigit()
        if self.device not in ("auto", "cpu", "cuda") and not gpu_n:
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.eval_nodes > n:
            raise ConfigError(
                f"eval_nodes is how many workers to evaluate alone, 0..{n}, got {self.eval_nodes!r}"
            )
        if self.execution not in MODES:
            raise ConfigError(
                f"execution is one of {', '.join(map(repr, MODES))}, got {self.execution!r}"
            )
        self.compute.validate()

    def describe(self) -> dict:
        """A JSON-able record of the settings for config.json."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if is_dataclass(value):
                value = {"name": type(value).__name__} | asdict(value)
            elif isinstance(value, (nx.Graph, nx.DiGraph)):
                value = {
                    "graph": type(value).__name__,
                    "nodes": value.number_of_nodes(),
                    "edges": sorted(map(list, value.edges())),
                }
            out[f.name] = _jsonable(value)
        # for the recorder: a run of rounds that only some workers train in counts its steps
        # as rounds x local steps (results/recorder.py)
        round_size = hooks.clients_per_round(self.algorithm, self.worker_count)
        return out | ({"round_size": round_size} if round_size else {})


@dataclass(frozen=True)
class Run:
    name: str
    algorithm: Any
    settings: dict = field(default_factory=dict)

    def __init__(self, name: str, algorithm: Any, **settings: Any):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "settings", settings)


class Experiment:
    """Shared settings plus a list of runs; ``resolve`` gives each run's validated Settings."""

    def __init__(self, name: str, runs: list[Run], pairs=(), **shared: Any):
        """``pairs``: (run, run) to compare at equal rounds, time and bytes (results/compare.py)."""
        if (
            not isinstance(runs, (list, tuple))
            or not runs
            or not all(isinstance(r, Run) for r in runs)
        ):
            raise ConfigError(f"experiment {name!r} has no runs: give runs=[Run('a', SGD()), ...]")
        check_folder_names([name, *(run.name for run in runs)], ConfigError)
        self.name, self.runs, self.shared = name, list(runs), dict(shared)
        self.only: list[str] | None = None  # select(): run just these
        self.pairs = [tuple(pair) for pair in pairs]
        _check_keys(self.shared, "experiment setting")
        for run in self.runs:
            _check_keys(run.settings, f"setting of run {run.name!r}")
        names = [run.name for run in self.runs]
        if len(set(names)) != len(names):
            raise ConfigError(f"run names must be unique, got {names}")
        for pair in self.pairs:
            if len(pair) != 2 or not set(pair) <= set(names):
                raise ConfigError(f"pairs holds (run, run) of this experiment's runs, got {pair}")

    def override(self, assignments: list[str]) -> None:
        """Applies ``--set key=value`` strings (see the module docstring)."""
        for text in assignments:
            key, sep, raw = text.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set takes key=value, got {text!r}")
            value = parse_value(raw)
            head, _, rest = key.partition(".")
            targets = [r for r in self.runs if r.name == head] if rest else []
            if targets:
                self._set(targets, rest, value, shared=False)
            else:
                self._set(self.runs, key, value, shared=True)

    def _set(self, runs: list[Run], key: str, value: Any, shared: bool) -> None:
        head, _, rest = key.partition(".")
        if head == "algorithm":
            fitting = [r for r in runs if rest in _field_names(r.algorithm)]
            if not rest or not fitting:
                raise ConfigError(f"no run's algorithm has a field {rest!r} to set")
            for run in fitting:
                algorithm = replace(run.algorithm, **{rest: value})
                self.runs[self.runs.index(run)] = Run(run.name, algorithm, **run.settings)
            return
        _check_keys({head: None}, "--set key")
        for run in [None] if shared else runs:
            values = self.shared if run is None else run.settings
            if rest:
                current = values.get(head, self.shared.get(head, getattr(Settings(), head)))
                if rest not in _field_names(current):
                    raise ConfigError(
                        f"{head} has no field {rest!r}; fields: "
                        f"{', '.join(_field_names(current)) or 'none'}"
                    )
                new = values | {head: replace(current, **{rest: value})}
            else:
                new = values | {head: value}
            if run is None:
                self.shared = new
            else:
                self.runs[self.runs.index(run)] = Run(run.name, run.algorithm, **new)

    def select(self, names: list[str]) -> None:
        """Keeps only the named runs (in the experiment's order)."""
        known = [run.name for run in self.runs]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ConfigError(f"no run named {unknown[0]!r}; runs: {', '.join(known)}")
        self.only = list(names)

    def resolve(self, everything: bool = False) -> list[tuple[str, Settings]]:
        """Each selected run's validated Settings (every run's with ``everything``)."""
        resolved = []
        for run in [r for r in self.runs if everything or self.only is None or r.name in self.only]:
            values = self.shared | run.settings | {"algorithm": run.algorithm}
            if values.get("compute", "") in (None, "real"):  # steps take what they really take
                values["compute"] = Compute(calibrate=True)
            with naming(run.name):
                if "faults" in values and values["faults"] is None:  # --set faults=None
                    values["faults"] = []
                elif isinstance(values.get("faults"), str):  # --set faults=[Crash(...), ...]
                    values["faults"] = parse_faults(values["faults"], ConfigError)
                settings = Settings(**values)
                settings.validate()
            resolved.append((run.name, settings))
        return resolved


def parse_value(raw: str) -> Any:
    """'20' -> 20, '0.5' -> 0.5, 'None' -> None, "[1,2]" -> list; anything else stays text."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _jsonable(value: Any) -> Any:
    """JSON keys are text or numbers: a dict keyed otherwise (Network.edges, keyed by node
    pairs) is written as a list of [*key, value], e.g. [[0, 1, {"latency": "20ms"}]]."""
    if isinstance(value, dict):
        if all(isinstance(key, (str, int, float, bool)) for key in value):
            return {key: _jsonable(item) for key, item in value.items()}
        keys = [key if isinstance(key, tuple) else (key,) for key in value]
        return [[*key, _jsonable(item)] for key, item in zip(keys, value.values(), strict=True)]
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):  # a fault: its kind and fields
        return {"name": type(value).__name__} | _jsonable(asdict(value))
    return value


def _check_keys(values: dict, what: str) -> None:
    known = {f.name for f in fields(Settings)} - {"algorithm"}
    for key in values:
        if key not in known:
            hint = ", ".join(sorted(known))
            raise ConfigError(f"unknown {what} {key!r}; known settings: {hint}")


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in fields(obj)] if is_dataclass(obj) else []
