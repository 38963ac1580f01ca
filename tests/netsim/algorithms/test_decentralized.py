"""D-PSGD and RWM against exact oracles (Dresevic 2022's two algorithms)."""

import csv

import numpy as np
import pytest
import torch

from netsim import Compute, Network
from netsim.algorithms import DPSGD, RWM
from tests.conftest import make_simulation
from topologies import graphs, weights

INSTANT = Network(bandwidth=1e18, latency=0.0)


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_one_dpsgd_round_with_zero_latency_and_lr_zero_is_x_w_x(tmp_path):
    graph = graphs.k_regular(8, 4, seed=3)
    sim = make_simulation(
        DPSGD(),
        tmp_path,
        topology=graph,
        workers=8,
        steps=1,
        lr=0.0,
        network=INSTANT,
        compute=Compute(step_time=0.01, jitter=0.3),
    )
    torch.manual_seed(0)
    sim.X.copy_(torch.randn_like(sim.X))
    x0 = sim.X.double().numpy().copy()
    sim.run()
    W = weights.metropolis_hastings(graph)
    np.testing.assert_allclose(sim.X.double().numpy(), W @ x0, rtol=0, atol=1e-6)


def test_dpsgd_moves_four_times_the_bytes_of_rwm_per_round_on_a_4_regular_graph(tmp_path):
    graph = graphs.k_regular(12, 4, seed=1)
    common = {"topology": graph, "workers": 12, "steps": 6, "compute": Compute(step_time=0.01)}
    d, ds = make_simulation(DPSGD(), tmp_path / "d", **common), None
    ds = d.run()
    r = make_simulation(RWM(), tmp_path / "r", **common)
    r.run()
    d_msgs, r_msgs = rows(d.recorder.dir / "messages.csv"), rows(r.recorder.dir / "messages.csv")
    assert len(d_msgs) == 12 * 4 * 6 and ds["steps_per_worker"] == 6
    d_per_round = sum(int(m["bytes"]) for m in d_msgs) / (12 * 6)
    r_per_round = np.mean([int(m["bytes"]) for m in r_msgs])  # one model per node per round
    assert d_per_round / r_per_round == pytest.approx(4.0, rel=1e-3)


def test_rwm_ages_never_decrease_and_each_model_is_averaged_once(tmp_path):
    sim = make_simulation(
        RWM(),
        tmp_path,
        topology=graphs.ring(6),
        workers=6,
        steps=40,
        network=Network(bandwidth="50Mbit/s", latency="2ms"),
        compute=Compute(step_time=0.01, jitter=0.5),
    )
    sim.run()
    ages: dict[str, list[float]] = {}
    for row in rows(sim.recorder.dir / "records.csv"):
        ages.setdefault(row["node"], []).append(float(row["value"]))
    assert all(np.all(np.diff(a) >= 0) for a in ages.values())
    delivered = {}
    for m in rows(sim.recorder.dir / "messages.csv"):
        if m["dropped"] == "0" and float(m["t_arrive"]) <= sim.env.now:
            delivered[m["dst"]] = delivered.get(m["dst"], 0) + 1
    for node in sim.nodes:
        merges = len(ages.get(str(node.id), []))
        unmerged = delivered.get(str(node.id), 0) - len(node._mail["model"]) - merges
        # 0, or 1 when the run stopped the instant a model reached a waiting node
        assert unmerged in (0, 1)


def test_rwm_on_a_ring_of_4_never_deadlocks_and_stops_at_the_first_finisher(tmp_path):
    sim = make_simulation(
        RWM(),
        tmp_path,
        topology=graphs.ring(4),
        workers=4,
        steps=100,
        network=Network(bandwidth="10Mbit/s", latency="1ms"),
        compute=Compute(step_time=0.01, jitter=0.5),
    )
    summary = sim.run()
    steps = sorted(node.steps for node in sim.nodes)
    assert steps[-1] == 100 and steps[0] > 50
    assert summary["steps_per_worker"] == steps[0]
