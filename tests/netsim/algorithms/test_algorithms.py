"""Every algorithm through the same checks (one line each in ALGORITHMS, as in Optax)."""

import csv

import pytest

from netsim import Compute, Network
from netsim.algorithms import (
    ADPSGD,
    DPSGD,
    RWM,
    SGD,
    SGP,
    AllReduceSGD,
    AsyncPS,
    FedAvg,
    FedProx,
    GoSGD,
    P2PPull,
    SyncPS,
    sharing,
)
from topologies import schedules, weights

FEDERATED = {"steps": None, "eval_every": "0.5s", "momentum": 0.0, "lr": 0.05}

ALGORITHMS = [
    pytest.param(SGD(), {"workers": 1}, id="sgd"),
    pytest.param(SyncPS(), {}, id="sync_ps"),
    pytest.param(AllReduceSGD(), {}, id="allreduce_ring"),
    pytest.param(AllReduceSGD("tree"), {}, id="allreduce_tree"),
    pytest.param(AllReduceSGD("halving_doubling"), {"workers": 6}, id="allreduce_halving_doubling"),
    # asynchrony already acts like momentum (Mitliagkas et al. 2016): less explicit momentum
    pytest.param(AsyncPS(), {"momentum": 0.5, "lr": 0.01}, id="async_ps"),
    pytest.param(P2PPull(), {}, id="p2p"),
    pytest.param(P2PPull(peers="ring"), {}, id="p2p_ring"),
    pytest.param(P2PPull(weighting="loss"), {}, id="p2p_loss_weighted"),
    pytest.param(P2PPull(compress=True), {}, id="p2p_compressed"),
    pytest.param(P2PPull(share=sharing.SubSampling(alpha=0.5)), {}, id="p2p_subsampled"),
    pytest.param(GoSGD(p=0.5), {}, id="gosgd"),
    pytest.param(GoSGD(p=0.5, share=sharing.Partial(alpha=0.3)), {}, id="gosgd_partial"),
    pytest.param(GoSGD(p=1.0, W=weights.random_row_stochastic(4)), {}, id="gosgd_matrix"),
    pytest.param(
        GoSGD(p=1.0, W=schedules.periodic_strongly_connected(4, 3)), {}, id="gosgd_periodic"
    ),
    pytest.param(SGP(), {}, id="sgp"),
    pytest.param(SGP(overlap=1), {}, id="sgp_overlap"),
    pytest.param(DPSGD(), {"topology": "ring"}, id="dpsgd"),
    pytest.param(DPSGD(share=sharing.Partial(alpha=0.3)), {"topology": "ring"}, id="dpsgd_partial"),
    pytest.param(ADPSGD(), {"topology": "ring"}, id="adpsgd"),
    pytest.param(RWM(), {"topology": "ring"}, id="rwm"),
    pytest.param(
        RWM(share=sharing.SubSampling(alpha=0.5)), {"topology": "ring"}, id="rwm_subsample"
    ),
    pytest.param(FedAvg(rounds=4, C=0.5, E=1), FEDERATED, id="fedavg"),
    pytest.param(FedProx(mu=0.1, rounds=4, C=0.5, E=1, stragglers=0.5), FEDERATED, id="fedprox"),
]
COMMON = {
    "workers": 4,
    "steps": 40,
    "eval_every": 20,
    "lr": 0.05,
    "momentum": 0.9,
    "compute": Compute(step_time=0.01, jitter=0.1),
    "network": Network(bandwidth="100Mbit/s", latency="1ms"),
}


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("algorithm, extra", ALGORITHMS)
def test_loss_falls_and_accuracy_rises(simulate, algorithm, extra):
    sim, summary = simulate(algorithm, **(COMMON | extra))
    evals = rows(sim.recorder.dir / "evals.csv")
    assert float(evals[-1]["accuracy"]) > float(evals[0]["accuracy"]) + 0.3
    losses = [float(r["loss"]) for r in rows(sim.recorder.dir / "steps.csv")]
    assert sum(losses[-20:]) < sum(losses[:20])
    if getattr(algorithm, "stop", "all") == "first":
        assert max(node.steps for node in sim.nodes) == 40
    elif not hasattr(algorithm, "rounds"):
        assert summary["steps_per_worker"] == 40


@pytest.mark.parametrize("algorithm, extra", ALGORITHMS)
def test_same_seed_gives_identical_results_files(simulate, algorithm, extra):
    first, _ = simulate(algorithm, **(COMMON | extra | {"steps": 10}))
    second, _ = simulate(algorithm, **(COMMON | extra | {"steps": 10}))
    for name in ("steps.csv", "messages.csv", "evals.csv", "records.csv", "config.json"):
        a = (first.recorder.dir / name).read_bytes()
        assert a == (second.recorder.dir / name).read_bytes(), name


# what an algorithm sends and records only when a peer is missing (a timeout passed)
ONLY_UNDER_FAULTS = {"AllReduceSGD": {"hello", "sync", "group"}}


@pytest.mark.parametrize("algorithm, extra", ALGORITHMS)
def test_messages_are_as_declared_and_none_is_lost_unless_dropped(simulate, algorithm, extra):
    sim, summary = simulate(algorithm, **(COMMON | extra | {"steps": 10}))
    messages = rows(sim.recorder.dir / "messages.csv")
    assert summary["dropped"] == 0  # messages still on their way at the end are not dropped
    arrived = [m for m in messages if m["reason"] != "in flight"]
    assert len(arrived) == len(messages) - summary["in_flight"]
    assert all(float(m["t_arrive"]) >= float(m["t_send"]) for m in arrived)
    assert len(messages) == summary["messages"]
    # what docs/reference.md says each algorithm sends and records is what it does
    only_under_faults = ONLY_UNDER_FAULTS.get(type(algorithm).__name__, set())
    assert {m["kind"] for m in messages} == set(algorithm.sends) - only_under_faults
    declared = set(algorithm.records) - only_under_faults
    if getattr(algorithm, "weighting", None) == "equal":  # P2PPull records weights of "loss" only
        declared.discard("weight")
    assert {r["name"] for r in rows(sim.recorder.dir / "records.csv")} == declared
