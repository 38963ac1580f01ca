"""Runs give the same files one after another here, in the local pool and as Ray tasks."""

import contextlib
import json

import pytest
import torch

import netsim
from netsim import Experiment, Run, executor, specfile
from netsim.algorithms import SGD, GoSGD

# execution pinned: "auto" picks a mode by timing, which could differ between processes
TINY = {"data": "synthetic_fmnist", "model": "logistic", "batch": 8, "eval_subset": 50}
TINY |= {"execution": "loop", "device": "cpu", "steps": 6, "eval_every": 2, "workers": 3}
FILES = ("config.json", "steps.csv", "messages.csv", "evals.csv", "records.csv")
NO_RAY = "Ray is not installed: pip install -e '.[ray]' (make test installs it)"
# how each way runs, and the torch threads its runs compute with
WAYS = {"here": ({"jobs": 1}, None), "pool": ({"jobs": 2}, executor.worker_threads(2))}
WAYS["ray"] = ({"ray": ""}, 1)


def tiny(**settings) -> Experiment:
    runs = [Run("one", SGD(), workers=1), Run("gossip", GoSGD(p=0.5))]
    return Experiment("tiny", runs=runs, **(TINY | settings))


@contextlib.contextmanager
def torch_threads(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def alone(out, experiment: Experiment, threads, **assignments):
    """Runs one run of the experiment by itself with netsim.run; returns its folder."""
    experiment.override([f"{key}={value}" for key, value in assignments.items()])
    with torch_threads(threads):
        netsim.run(experiment, out, progress=False, plot=False)
    return out / experiment.name


def _way(way):
    if way == "ray":
        pytest.importorskip("ray", reason=NO_RAY)
    return WAYS[way]


# Ray's seeds: slow only (CI's 10 minutes); the grid below runs on Ray in CI
@pytest.mark.parametrize(
    "way", [pytest.param(w, marks=pytest.mark.slow) if w == "ray" else w for w in WAYS]
)
def test_seeds_give_the_files_of_each_seed_run_alone(tmp_path, way):
    kwargs, threads = _way(way)
    summaries = netsim.sweep(
        tiny(), seeds=3, out=tmp_path / "sweep", progress=False, plot=False, **kwargs
    )
    assert {name: sorted(seeds) for name, seeds in summaries.items()} == {
        "one": [0, 1, 2],
        "gossip": [0, 1, 2],
    }
    for seed in range(3):
        folder = alone(tmp_path / f"alone{seed}", tiny(), threads, seed=seed)
        for run in ("one", "gossip"):
            made = tmp_path / "sweep" / "tiny" / run / f"seed={seed}"
            for name in FILES:
                assert (made / name).read_bytes() == (folder / run / name).read_bytes(), (
                    run,
                    seed,
                    name,
                )
    steps = [(tmp_path / "sweep/tiny/gossip" / f"seed={s}/steps.csv").read_text() for s in (0, 1)]
    assert steps[0] != steps[1]  # the seeds differ


# the pool's grid: slow only (CI's 10 minutes); its seeds above stay in CI
@pytest.mark.parametrize("way", [pytest.param("pool", marks=pytest.mark.slow), "ray"])
def test_a_two_by_two_grid_with_two_seeds(tmp_path, way):
    kwargs, threads = _way(way)
    grid = {"algorithm.p": [0.2, 0.8], "workers": [2, 3]}
    netsim.sweep(tiny(), grid, seeds=2, out=tmp_path, progress=False, **kwargs)
    exp = tmp_path / "tiny"
    # "one" sets workers itself and SGD has no p: the grid does not reach it
    names = ["one"] + [f"gossip,algorithm.p={p},workers={w}" for p in (0.2, 0.8) for w in (2, 3)]
    assert sorted(d.name for d in exp.iterdir() if d.is_dir()) == sorted(names)
    for name in names:
        for seed in (0, 1):
            summary = json.loads((exp / name / f"seed={seed}" / "summary.json").read_text())
            assert summary["run"] == name and summary.get("complete") is not False
    table = (exp / "summary.md").read_text().splitlines()
    header = [cell.strip() for cell in table[0].split("|")]
    rows = {(cells := line.split("|"))[1].strip(): cells for line in table[2:7]}
    assert set(rows) == set(names)
    assert all(cells[header.index("seeds")].strip() == "2" for cells in rows.values())
    # each run is the run its settings make alone
    folder = alone(tmp_path / "alone", tiny(), threads, **{"gossip.algorithm.p": 0.8, "seed": 1})
    made = exp / "gossip,algorithm.p=0.8,workers=3" / "seed=1"
    for name in FILES[1:]:  # config.json names the run as the sweep did
        assert (made / name).read_bytes() == (folder / "gossip" / name).read_bytes(), name


EXPERIMENT_FILE = """
from dataclasses import dataclass
from netsim import Experiment, Run


@dataclass(frozen=True)
class PushAverage:
    async def worker(self, node):
        while not node.done:
            await node.train()
            node.send(int(node.rng.choice(node.out_neighbors)), "model", x=node.x)
            for message in node.drain("model"):
                node.x.add_(message.x).mul_(0.5)


experiment = Experiment("own", runs=[Run("push", PushAverage())], **{tiny})
"""


def test_an_algorithm_defined_in_the_experiment_file_runs_in_the_pool(tmp_path):
    spec = tmp_path / "own.py"
    spec.write_text(EXPERIMENT_FILE.format(tiny=TINY))
    experiment = specfile.load(str(spec))
    summaries = netsim.sweep(experiment, seeds=2, out=tmp_path, jobs=2, progress=False)
    assert sorted(summaries["push"]) == [0, 1]
    assert all(s["steps_per_worker"] == 6 for s in summaries["push"].values())


UNGUARDED = """
import netsim
from netsim import Experiment, Run
from netsim.algorithms import SGD

experiment = Experiment("unguarded", runs=[Run("one", SGD(), workers=1)], **{tiny})
netsim.sweep(experiment, seeds=2, out={out!r}, jobs=2, progress=False)
"""


def test_a_pool_whose_workers_die_stops_with_a_line_that_says_why(tmp_path):
    import subprocess
    import sys

    # every spawned worker runs the script again, and dies starting a pool of its own
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED.format(tiny=TINY, out=str(tmp_path / "out")))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("netsim.executor.PoolError: a process of the local pool died")
    assert "if __name__ == '__main__':" in last
