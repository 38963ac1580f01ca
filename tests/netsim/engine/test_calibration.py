"""execution="auto" picks by rule, never by timing; "calibrate" times, on request only."""

import subprocess
import sys
from pathlib import Path

import pytest

from netsim import Network
from netsim.algorithms import DPSGD, SGD
from netsim.engine import calibration

ROOT = Path(__file__).resolve().parents[3]
FAST = Network(bandwidth="10Gbit/s", latency="1us")


@pytest.fixture
def untimed(monkeypatch):
    """Timing the candidates is an error: the default must not depend on the machine's load."""

    def timed(*_):
        raise AssertionError("execution='auto' timed the candidates")

    monkeypatch.setattr(calibration, "_calibrate", timed)
    calibration._CALIBRATED.clear()


@pytest.mark.parametrize(
    "model, workers, mode",
    [
        ("logistic", 4, "stacked"),
        ("mlp1", 4, "stacked"),
        ("small_cnn", 4, "grouped"),
        ("mcmahan_cnn", 2, "loop"),  # 1.7M parameters: compute-bound, over GROUPED_MAX
        ("logistic", 1, "loop"),  # one worker: nothing to batch
    ],
)
def test_auto_picks_by_model_and_population_and_records_it(simulate, untimed, model, workers, mode):
    algorithm = DPSGD() if workers > 1 else SGD()
    sim, summary = simulate(algorithm, model=model, workers=workers, steps=1, network=FAST)
    assert sim.engine.mode == mode and summary["execution"]["calibration_s"] == {}
    assert f'"execution": "{mode}"' in (sim.recorder.dir / "config.json").read_text()


def test_calibrate_times_the_candidates_when_asked(simulate):
    calibration._CALIBRATED.clear()
    sim, summary = simulate(
        DPSGD(), model="mlp1", workers=4, steps=1, network=FAST, execution="calibrate"
    )
    assert set(summary["execution"]["calibration_s"]) == {"loop", "stacked"}
    assert sim.engine.mode in ("loop", "stacked")


EXPERIMENT = """
from netsim import Experiment, Network, Run
from netsim.algorithms import DPSGD, GoSGD
experiment = Experiment("hog", data="synthetic_fmnist", model="small_cnn", workers=4, steps=6,
    batch=16, eval_every=2, eval_subset=100, device="cpu", network=Network(latency="1ms"),
    runs=[Run("dpsgd", DPSGD()), Run("gossip", GoSGD(p=0.5), model="mlp1")])
"""


@pytest.mark.slow  # CI's 10 minutes; same-seed identity per algorithm stays in CI
def test_the_same_seed_gives_byte_identical_files_with_a_cpu_hog_beside_it(tmp_path):
    spec = tmp_path / "exp.py"
    spec.write_text(EXPERIMENT)

    def netsim(out: str) -> None:
        command = [sys.executable, "-m", "netsim", str(spec), "--out", str(tmp_path / out)]
        result = subprocess.run(
            [*command, "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr

    netsim("quiet")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        netsim("busy")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    for run in ("dpsgd", "gossip"):
        for name in ("steps.csv", "messages.csv", "evals.csv", "records.csv"):
            quiet, busy = (tmp_path / out / "hog" / run / name for out in ("quiet", "busy"))
            assert quiet.read_bytes() == busy.read_bytes(), (run, name)
