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
PLOTTED = {"ps_vs_p2p", "movielens_mf"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_experiment_file_runs_tiny(path, tmp_path):
    experiment = load(str(path))
    tiny = TINY if experiment.shared.get("partition") != "per_user" else TINY[1:5]  # keep ratings
    if experiment.shared.get("workers", 4) > 16:
        tiny = [*tiny, "workers=8"]
    experiment.override(tiny)
    # runs that set a key themselves keep it against a shared --set: shrink those too
    own = [
        f"{r.name}.{kv}" for r in experiment.runs for kv in tiny if kv.split("=")[0] in r.settings
    ]
    experiment.override(own + (["algorithm.rounds=2"] if _federated(experiment) else []))
    # figures: the main experiment's and the rating data's (RMSE axes); the others' draw the
    # same figures from the same files (tests/netsim/results), 5-10 s each for many runs
    plot = path.stem in PLOTTED
    summaries = run(experiment, out=tmp_path, device="cpu", progress=False, plot=plot)
    assert set(summaries) == {r.name for r in experiment.runs}
    for run_spec in experiment.runs:
        summary = summaries[run_spec.name]
        if getattr(run_spec.algorithm, "stop", "all") == "first":  # RWM: the first one ends it
            assert summary["steps_per_worker"] <= 4, run_spec.name
        elif not hasattr(run_spec.algorithm, "rounds"):
            assert summary["steps_per_worker"] == 4, run_spec.name
        saved = tmp_path / experiment.name / run_spec.name / "summary.json"
        assert json.loads(saved.read_text())["final_loss"] == summary["final_loss"]
    for name in ("summary.md", "timeline.png"):  # plot=False: neither table nor figures
        assert (tmp_path / experiment.name / name).is_file() == plot, name


def test_there_are_experiment_files():
    assert FILES


def _federated(experiment) -> bool:
    return any(hasattr(r.algorithm, "rounds") for r in experiment.runs)


@pytest.mark.slow  # one process per node for every run: `pytest -m slow`
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_experiment_file_runs_unchanged_for_real(path, tmp_path):
    experiment = load(str(path))
    tiny = TINY if experiment.shared.get("partition") != "per_user" else TINY[1:5]
    tiny = [*tiny, "compute='real'"]
    if experiment.shared.get("workers", 4) > 16:
        tiny = [*tiny, "workers=8"]
    experiment.override(tiny)
    own = [
        f"{r.name}.{kv}" for r in experiment.runs for kv in tiny if kv.split("=")[0] in r.settings
    ]
    experiment.override(own + (["algorithm.rounds=2"] if _federated(experiment) else []))
    summaries = run(experiment, out=tmp_path, runtime="real", device="cpu", progress=False)
    assert set(summaries) == {r.name for r in experiment.runs}
    assert all(s["runtime"] == "real" for s in summaries.values())
