"""Shared helpers: tiny simulations on the synthetic data set, without progress bars."""

from pathlib import Path

import pytest

from netsim.experiment import Settings
from netsim.runner import preflight

TINY = {
    "data": "synthetic_fmnist",
    "model": "small_cnn",
    "batch": 16,
    "eval_subset": 200,
    "device": "cpu",
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
