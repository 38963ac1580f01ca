"""An algorithm needs only its roles: the hooks' defaults, and the README's example run as is."""

import csv
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import torch

import netsim
from netsim import Compute, Experiment, Run
from netsim.algorithms import SGP, FedAvg, hooks

README = Path(__file__).resolve().parents[3] / "README.md"
TINY = {"data": "synthetic_fmnist", "model": "logistic", "batch": 16, "eval_subset": 100}


@dataclass(frozen=True)
class Bare:
    async def worker(self, node):
        while not node.done:
            await node.train()


def test_an_algorithm_with_only_a_worker_role_gets_the_defaults():
    graph = nx.path_graph(3)
    assert hooks.layout(Bare(), graph) == (graph, [("worker",)] * 3)
    X = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(hooks.global_model(Bare(), X, ["worker"] * 3), torch.tensor([2.0, 3.0]))
    hooks.check(Bare(), 3)
    assert not hooks.needs_connected(Bare())
    assert hooks.drives(Bare()) == ("worker",)
    assert hooks.stop(Bare(), "all") == "all"
    assert hooks.label(Bare()) == "Bare"
    assert hooks.rounds(Bare()) == 0


def test_an_algorithms_own_hooks_win_over_the_defaults():
    fed = FedAvg(rounds=3, mu=0.1)
    assert hooks.layout(fed, nx.path_graph(2))[1] == [("worker",), ("worker",), ("server",)]
    assert (hooks.drives(fed), hooks.label(fed), hooks.rounds(fed)) == (("server",), "FedProx", 3)
    assert hooks.needs_connected(SGP())


def test_a_bare_algorithm_runs(tmp_path):
    experiment = Experiment("bare", [Run("bare", Bare())], steps=2, **TINY)
    summaries = netsim.run(experiment, out=tmp_path, device="cpu", progress=False, plot=False)
    assert summaries["bare"]["algorithm"] == "Bare"
    assert summaries["bare"]["steps_per_worker"] == 2


def readme_example() -> str:
    """The first Python block of the README's "Writing an algorithm" section, verbatim."""
    section = README.read_text().split("## Writing an algorithm", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_algorithm_runs_as_written(tmp_path, monkeypatch):
    module = types.ModuleType("readme_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look it up
    exec(compile(readme_example(), "README.md", "exec"), module.__dict__)
    experiment = Experiment(
        "readme",
        [Run("push", module.PushAverage())],
        steps=3,
        compute=Compute(step_time="10ms"),  # the models arrive while the run goes on
        **TINY,
    )
    netsim.run(experiment, out=tmp_path, device="cpu", progress=False)
    run_dir = tmp_path / "readme" / "push"
    for name in ("config.json", "steps.csv", "messages.csv", "evals.csv", "summary.json"):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "messages.csv") as handle:
        kinds = {row["kind"] for row in csv.DictReader(handle)}
    assert kinds == {"model"}
    assert (tmp_path / "readme" / "summary.md").is_file()
