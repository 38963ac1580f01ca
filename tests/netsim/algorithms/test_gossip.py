"""GoSGD, push-sum (SGP) and FedAvg against exact oracles."""

import csv
import math
from pathlib import Path

import pytest
import torch

from netsim import Compute, Network
from netsim.algorithms import SGD, SGP, FedAvg, GoSGD
from tests.conftest import make_simulation

SLOW_NET = Network(bandwidth="20Mbit/s", latency="5ms")


def distinct_start(sim, seed=1):
    torch.manual_seed(seed)
    sim.X.copy_(torch.randn_like(sim.X))
    return sim.X[sim.workers].clone()


def unconsumed(sim, kind):
    """Starts recording sent messages; returns a function listing those not yet consumed
    (still in flight, or delivered and waiting in a mailbox)."""
    sent = []
    transmit = sim.fabric.transmit
    sim.fabric.transmit = lambda m: (sent.append(m), transmit(m))[1]

    def pending():
        in_flight = [m for m in sent if math.isnan(m.t_arrive)]
        return in_flight + [m for node in sim.nodes for m in node._mail[kind]]

    pending.sent = sent
    return pending


def step_through(sim, check):
    """Runs the simulation event by event, calling check() after each."""
    until = sim.start()
    while not until.triggered and sim.env.peek() < math.inf:
        sim.env.step()
        check()


def test_gosgd_conserves_total_weight_and_weighted_mean_at_every_event(tmp_path):
    sim = make_simulation(
        GoSGD(p=0.5),
        tmp_path,
        workers=5,
        steps=25,
        lr=0.0,
        network=SLOW_NET,
        compute=Compute(step_time=0.01, jitter=0.5),
    )
    x0 = distinct_start(sim)
    target = x0.mean(0).double()
    pending_of = unconsumed(sim, "gossip")
    checked = []

    def check():
        if not all("log_alpha" in n.state for n in sim.nodes):
            return
        pending = pending_of()
        alpha = {n.id: math.exp(n.state["log_alpha"]) for n in sim.nodes}
        alphas = list(alpha.values()) + [math.exp(m.log_alpha) for m in pending]
        assert sum(alphas) == pytest.approx(1.0, abs=1e-12)
        mean = sum(alpha[n.id] * sim.X[n.id].double() for n in sim.nodes)
        mean = mean + sum(
            (math.exp(m.log_alpha) * m.x.double() for m in pending), torch.zeros_like(mean)
        )
        assert torch.allclose(mean, target, atol=1e-5)
        checked.append(len(pending))

    step_through(sim, check)
    assert (
        len(pending_of.sent) > 20 and max(checked) > 0
    )  # exchanges happened, some while in flight


def spread(X: torch.Tensor) -> float:
    """The models' mean distance to their average."""
    return (X - X.mean(0)).norm(dim=1).mean().item()


def gosgd_spread(tmp_path, loss: float, steps: int) -> tuple[float, list[float]]:
    sim = make_simulation(
        GoSGD(p=1.0),
        tmp_path / f"loss{loss}",
        workers=4,
        model="logistic",
        batch=8,
        steps=steps,
        eval_every=10**9,
        network=Network(latency="1ms", loss=loss),
        compute=Compute(step_time="10ms", jitter=0.1),
    )
    sim.run()
    return spread(sim.X), [n.state["log_alpha"] for n in sim.nodes]


@pytest.mark.parametrize(
    ("loss", "steps"),
    [(0.9, 1500), pytest.param(0.5, 5000, marks=pytest.mark.slow)],
)
def test_gosgd_keeps_averaging_under_loss_after_the_weights_would_have_underflowed(
    tmp_path, loss, steps
):
    # each lost push takes its weight along: by these steps every alpha is below 1e-308
    lossless, _ = gosgd_spread(tmp_path, 0.0, steps)
    lossy, log_alphas = gosgd_spread(tmp_path, loss, steps)
    assert max(log_alphas) < math.log(1e-308) and all(map(math.isfinite, log_alphas))
    assert lossy < 2 * lossless


def test_push_sum_on_the_one_peer_exponential_graph_is_exact_after_log2_n_rounds(tmp_path):
    n = 8
    sim = make_simulation(
        SGP(),
        tmp_path,
        workers=n,
        steps=3,
        lr=0.0,
        network=SLOW_NET,
        compute=Compute(step_time=0.01, jitter=0.5),
    )
    x0 = distinct_start(sim)
    sim.run()
    assert torch.allclose(sim.X, x0.mean(0).expand_as(sim.X), atol=1e-6)
    assert sum(node.state["w"] for node in sim.nodes) == pytest.approx(n, abs=1e-12)


@pytest.mark.parametrize("overlap", [0, 1])
def test_push_sum_on_a_static_directed_graph_converges_to_the_average(tmp_path, overlap):
    import networkx as nx

    graph = nx.DiGraph([(i, (i + 1) % 6) for i in range(6)] + [(0, 3), (4, 1)])
    sim = make_simulation(
        SGP(schedule="graph", overlap=overlap),
        tmp_path,
        topology=graph,
        workers=6,
        steps=120,
        lr=0.0,
        network=SLOW_NET,
        compute=Compute(step_time=0.01, jitter=0.5),
    )
    x0 = distinct_start(sim)
    pending = unconsumed(sim, "push")
    sim.run()
    assert torch.allclose(sim.X, x0.mean(0).expand_as(sim.X), atol=1e-4)
    mass = sum(node.state["w"] for node in sim.nodes) + sum(m.w for m in pending())
    assert mass == pytest.approx(6.0, abs=1e-9)


def test_synchronous_sgp_mixes_only_round_k_pushes_when_nodes_run_at_different_speeds(tmp_path):
    # node 0 five times slower: its out-neighbours finish round 1 and push again before
    # node 0 has mixed round 0
    sim = make_simulation(
        SGP(),
        tmp_path,
        workers=4,
        model="logistic",
        steps=2,
        lr=0.0,
        compute=Compute(step_time="10ms", slowdown={0: 5.0}),
    )
    sim.X.copy_(torch.arange(4.0).unsqueeze(1).expand_as(sim.X))
    sim.run()
    assert torch.equal(sim.X, torch.full_like(sim.X, 1.5))  # exact after log2(4) rounds


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_sgp_mixes_each_push_between_its_round_and_overlap_rounds_later(tmp_path, overlap):
    sim = make_simulation(
        SGP(overlap=overlap),
        tmp_path,
        workers=8,
        model="logistic",
        steps=30,
        lr=0.0,
        network=SLOW_NET,
        compute=Compute(step_time="10ms", jitter=0.3, slowdown={0: 5.0, 3: 2.0}),
    )
    x0 = distinct_start(sim)
    pending = unconsumed(sim, "push")
    sim.run()
    with open(sim.recorder.dir / "records.csv") as handle:
        lags = [int(r["value"]) for r in csv.DictReader(handle) if r["name"] == "staleness"]
    assert len(lags) == len(pending.sent) - len(pending())  # one row per push mixed in
    assert min(lags) == 0 and max(lags) == overlap  # late pushes wait, none beyond overlap
    mass = sum(node.state["w"] for node in sim.nodes) + sum(m.w for m in pending())
    assert mass == pytest.approx(8.0, abs=1e-9)
    if overlap == 0:
        assert torch.allclose(sim.X, x0.mean(0).expand_as(sim.X), atol=1e-6)


def test_fedavg_with_one_client_and_one_epoch_equals_plain_sgd(tmp_path):
    common = {"workers": 1, "lr": 0.05, "batch": 64, "eval_every": "1000s"}
    fed = make_simulation(FedAvg(rounds=1, C=1.0, E=1), tmp_path / "fed", **common)
    fed.run()
    steps = math.ceil(fed.nodes[0].samples / 64)
    sgd = make_simulation(SGD(), Path(tmp_path / "sgd"), steps=steps, **common)
    sgd.run()
    assert fed.nodes[0].steps == steps
    assert torch.equal(fed.X[fed.roles.index("server")], sgd.X[0])
