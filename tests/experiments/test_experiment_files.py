"""Every file in experiments/ runs end to end with a tiny override (examples never rot)."""

import json
from pathlib import Path

import pytest

from netsim import run
from netsim.__main__ import load

FILES = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.py"))
TINY = [
    "data='synthetic_fmnist'",
    "steps=4",
    "batch=8",
    "eval_subset=100",
    "eval_every=2",
    "model='small_cnn'",
]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_experiment_file_runs_tiny(path, tmp_path):
    experiment = load(str(path))
    experiment.override(TINY)
    summaries = run(experiment, out=tmp_path, device="cpu", progress=False)
    assert set(summaries) == {r.name for r in experiment.runs}
    for name, summary in summaries.items():
        assert summary["steps_per_worker"] == 4, name
        saved = json.loads((tmp_path / experiment.name / name / "summary.json").read_text())
        assert saved["final_accuracy"] == summary["final_accuracy"]
    assert (tmp_path / experiment.name / "summary.md").is_file()


def test_there_are_experiment_files():
    assert FILES
