"""Shared helpers: tiny simulations on the synthetic data set, without progress bars."""

from pathlib import Path

import pytest

from netsim import Compute, Network
from netsim.experiment import Settings
from netsim.runner import preflight

TINY = {
    "data": "synthetic_fmnist",
    "model": "small_cnn",
    "batch": 16,
    "eval_subset": 200,
    "device": "cpu",
}

# four workers of logistic regression, 20 ms steps, 1 ms links: runs under faults in a second
UNDER_FAULTS = {
    "model": "logistic",
    "workers": 4,
    "steps": 40,
    "eval_every": "10s",
    "eval_subset": 50,
    "execution": "loop",
    "compute": Compute(step_time="0.02s"),
    "network": Network(bandwidth="100Mbit/s", latency="1ms"),
}


def make_simulation(algorithm, run_dir: Path, **settings):
    from netsim.sim import Simulation

    spec = Settings(algorithm=algorithm, **(TINY | settings))
    graph, _ = preflight(spec)
    return Simulation("test", spec, graph, run_dir, progress=False)


@pytest.fixture
def simulate(tmp_path):
    """simulate(algorithm, **settings) -> (Simulation, summary), results under tmp_path."""
    counter = iter(range(1000))

    def run(algorithm, **settings):
        sim = make_simulation(algorithm, tmp_path / f"run{next(counter)}", **settings)
        return sim, sim.run()

    return run
