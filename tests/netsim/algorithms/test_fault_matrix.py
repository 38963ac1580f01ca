"""Every algorithm under every kind of fault runs to its end, each drop recorded with its
reason (issue 14's fault matrix; docs/results.md has the accuracies at a larger scale)."""

import csv

import pytest

from netsim.algorithms import (
    ADPSGD,
    DPSGD,
    RWM,
    SGP,
    AllReduceSGD,
    AsyncPS,
    FedAvg,
    GoSGD,
    P2PPull,
    SyncPS,
)
from netsim.faults import Churn, Crash, LinkDown, LossBurst, Partition
from tests.conftest import UNDER_FAULTS, make_simulation

WAIT = "0.05s"  # each algorithm's timeout: a few steps
ALGORITHMS = {
    "sync_ps": (SyncPS(timeout=WAIT), {}),
    "async_ps": (AsyncPS(timeout=WAIT), {}),
    "allreduce": (AllReduceSGD(timeout=WAIT), {}),
    "p2p": (P2PPull(timeout=WAIT), {}),
    "gosgd": (GoSGD(p=0.5), {}),
    "sgp": (SGP(timeout=WAIT), {}),
    "dpsgd": (DPSGD(timeout=WAIT), {"topology": "ring"}),
    "adpsgd": (ADPSGD(timeout=WAIT), {"topology": "ring"}),
    "rwm": (RWM(timeout=WAIT), {"topology": "ring"}),
    "fedavg": (FedAvg(rounds=3, C=0.5, E=1, timeout="1s"), {"steps": None, "batch": 128}),
}
FAULTS = {
    "crash": [Crash(1, at="0.2s")],
    "crash_restart": [Crash(1, at="0.2s", restart="0.2s", state="reset")],
    "link_down": [LinkDown(0, 1, at="0.1s", until="0.4s")],
    "loss_burst": [LossBurst(0.5, at="0.1s", until="0.4s")],
    "partition": [Partition([[0, 1]], at="0.1s", until="0.4s")],
    "churn": [Churn(fraction=0.3, session="0.2s")],
}
REASONS = {"loss", "offline", "link down", "partition", "in flight"}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_runs_through_every_fault(tmp_path, name, fault):
    algorithm, extra = ALGORITHMS[name]
    settings = {"steps": 20, "eval_every": "1s", "eval_subset": 100, "faults": FAULTS[fault]}
    sim = make_simulation(algorithm, tmp_path, **(UNDER_FAULTS | settings | extra))
    summary = sim.run()
    assert summary["final_accuracy"] is not None
    with open(tmp_path / "messages.csv") as handle:
        messages = list(csv.DictReader(handle))
    dropped = [m for m in messages if m["dropped"] == "1"]
    assert {m["reason"] for m in dropped} <= REASONS
    assert all(m["reason"] == "" for m in messages if m["dropped"] == "0")
    assert summary["dropped"] + summary["in_flight"] == len(dropped)
