"""The command line: bad input exits non-zero with one clear line and no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = """
import networkx as nx
from netsim import Experiment, Network, Run
from netsim.algorithms import SGD, P2PPull
experiment = Experiment("cli", data="{data}", steps=2, batch=8, eval_subset=50,
    network=Network(bandwidth="{bandwidth}"), topology={topology},
    runs=[Run("one", SGD(), workers=1), Run("p2p", P2PPull())])
"""


def netsim(
    tmp_path, *args, data="synthetic_fmnist", bandwidth="1Gbit/s", topology='"ring"', env=None
):
    spec = tmp_path / "exp.py"
    spec.write_text(EXPERIMENT.format(data=data, bandwidth=bandwidth, topology=topology))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "netsim",
            str(spec),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "kwargs, args, message",
    [
        ({}, ["--set", "stepz=3"], "unknown --set key 'stepz'"),
        ({"bandwidth": "-5Mbit/s"}, [], "bandwidth"),
        ({"topology": "nx.Graph([(0, 1), (2, 3)])"}, [], "components"),
        ({"data": "fashion_mnist"}, [], "apt-get install dataset-fashion-mnist"),
        ({}, ["--set", "model=resnet"], "unknown model 'resnet'"),
    ],
    ids=["unknown-key", "negative-bandwidth", "disconnected", "missing-data", "bad-model"],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, kwargs, args, message):
    import os

    env = os.environ | {"NETSIM_DATA": str(tmp_path / "nowhere")}
    result = netsim(tmp_path, *args, env=env, **kwargs)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("netsim: error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_experiment_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "netsim", str(tmp_path / "none.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "no experiment file" in result.stderr


def test_a_good_run_prints_the_summary_table_and_writes_results(tmp_path):
    result = netsim(tmp_path, "--set", "workers=3")
    assert result.returncode == 0, result.stderr
    assert "one" in result.stdout and "p2p" in result.stdout
    out = tmp_path / "out" / "cli"
    for name in ("accuracy_vs_time.png", "step_time_hist.png", "timeline.png", "summary.md"):
        assert (out / name).is_file(), name
    for run in ("one", "p2p"):
        for name in ("config.json", "steps.csv", "messages.csv", "evals.csv", "summary.json"):
            assert (out / run / name).is_file(), (run, name)
