"""All-reduce SGD and AD-PSGD against exact oracles: step times, SyncPS's updates, conservation."""

import csv
from collections import defaultdict

import pytest
import torch

from netsim import Compute, Network
from netsim.algorithms import ADPSGD, AllReduceSGD, P2PPull, SyncPS
from netsim.node import Node
from tests.conftest import make_simulation

LOGISTIC = {"model": "logistic", "execution": "loop"}  # 7,850 parameters


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def step_starts(sim) -> dict[int, list[float]]:
    starts = defaultdict(list)
    for row in rows(sim.recorder.dir / "steps.csv"):
        starts[int(row["node"])].append(float(row["t_start"]))
    return starts


@pytest.mark.parametrize(
    "algorithm, n, rounds",
    [("ring", 5, lambda n: 2 * (n - 1)), ("tree", 4, lambda n: 4), ("halving_doubling", 2, None)],
)
def test_all_reduce_step_time_on_an_idle_network_is_compute_plus_its_messages(
    tmp_path, algorithm, n, rounds
):
    step, latency, B = 0.01, 0.001, 1e8
    sim = make_simulation(
        AllReduceSGD(algorithm),
        tmp_path,
        workers=n,
        steps=6,
        compute=Compute(step_time=step),
        network=Network(bandwidth=B, latency=latency),
        **LOGISTIC,
    )
    sim.run()
    sizes = {int(m["bytes"]) for m in rows(sim.recorder.dir / "messages.csv")}
    assert len(sizes) == 1  # 7,850 / n entries per message (ring: S/n plus msgpack framing)
    (size,) = sizes
    if algorithm == "ring":  # compute + 2(n-1)/n x 8S/B + 2(n-1) x latency, S = n chunks
        expected = step + 2 * (n - 1) / n * 8 * (n * size) / B + 2 * (n - 1) * latency
    else:  # binomial tree: 2 log2 n rounds of the whole vector; n = 2: one half each way, twice
        expected = step + 2 * (n.bit_length() - 1) * (latency + 8 * size / B)
    for starts in step_starts(sim).values():
        for a, b in zip(starts, starts[1:], strict=False):
            assert b - a == pytest.approx(expected, rel=1e-9)


def final_rows(tmp_path, algorithm, n, **settings):
    run = {
        "workers": n,
        "steps": 12,
        "lr": 0.05,
        "lr_schedule": "cosine",
        "momentum": 0.9,
        "weight_decay": 1e-3,
        "compute": Compute(step_time=0.01, jitter=0.3),
        "network": Network(bandwidth="100Mbit/s", latency="1ms"),
    }
    sim = make_simulation(algorithm, tmp_path, **run | LOGISTIC | settings)
    sim.run()
    return sim.X.clone()


@pytest.mark.parametrize("algorithm", ["ring", "tree", "halving_doubling"])
def test_two_workers_update_exactly_as_sync_ps_with_real_gradients(tmp_path, algorithm):
    # with two gradients every summation order is the same sum, so the bits must agree
    ps = final_rows(tmp_path / "ps", SyncPS(), 2)
    X = final_rows(tmp_path / "ar", AllReduceSGD(algorithm), 2)
    assert all(torch.equal(x, ps[2]) for x in X)  # SyncPS's row 2 is its server


@pytest.mark.parametrize("algorithm", ["ring", "tree", "halving_doubling"])
@pytest.mark.parametrize("n", [4, 6])
def test_updates_equal_sync_ps_bit_for_bit_given_the_same_gradients(
    tmp_path, monkeypatch, algorithm, n
):
    # Gradients on a grid of 2^-12 within +-8 sum exactly in float32 in any order: then the
    # ring's, the tree's and the server's sums are the same, and so must every bit after.
    gradient = Node.gradient

    async def on_grid(self):
        loss = await gradient(self)
        self.g.clamp_(-8, 8).mul_(4096).round_().div_(4096)
        return loss

    monkeypatch.setattr(Node, "gradient", on_grid)
    ps = final_rows(tmp_path / "ps", SyncPS(), n)
    X = final_rows(tmp_path / "ar", AllReduceSGD(algorithm), n)
    assert all(torch.equal(x, ps[n]) for x in X)
    assert not torch.equal(X[0], final_rows(tmp_path / "x0", AllReduceSGD(algorithm), n, lr=0)[0])


@pytest.mark.parametrize("algorithm", ["ring", "tree", "halving_doubling"])
def test_every_worker_holds_the_same_bits_after_each_step(tmp_path, algorithm):
    X = final_rows(tmp_path, AllReduceSGD(algorithm), 7)
    assert all(torch.equal(x, X[0]) for x in X)


def test_all_reduce_checks_its_algorithm():
    with pytest.raises(ValueError, match="ring, tree, halving_doubling"):
        AllReduceSGD("butterfly").check(4)


def adpsgd(tmp_path, steps=30, **settings):
    return make_simulation(
        ADPSGD(),
        tmp_path,
        steps=steps,
        network=Network(bandwidth="50Mbit/s", latency="2ms"),
        compute=Compute(step_time=0.01, jitter=0.5),
        **LOGISTIC | settings,
    )


def test_adpsgd_averaging_alone_conserves_the_mean_of_the_models(tmp_path):
    sim = adpsgd(tmp_path, workers=6, topology="ring", lr=0.0)
    torch.manual_seed(1)
    sim.X.copy_(torch.randn_like(sim.X))
    before = sim.X.clone()
    sim.run()
    torch.testing.assert_close(sim.X.mean(0), before.mean(0), rtol=0, atol=1e-6)
    spread = lambda X: (X - X.mean(0)).norm()
    assert spread(sim.X) < 0.1 * spread(before)  # and the models did move together


@pytest.mark.parametrize(
    "topology, workers, extra",
    [
        ("ring", 5, {}),
        ("ring", 8, {}),
        ("torus", 9, {}),
        ("torus", 16, {}),
        ("k_regular", 8, {"degree": 3}),
        ("k_regular", 11, {"degree": 4}),
        ("complete", 5, {}),
    ],
)
def test_adpsgd_never_deadlocks(tmp_path, topology, workers, extra):
    sim = adpsgd(tmp_path, topology=topology, workers=workers, **extra)
    summary = sim.run()  # a stall raises SimulationError
    assert summary["steps_per_worker"] == 30
    staleness = defaultdict(list)
    for r in rows(sim.recorder.dir / "records.csv"):
        staleness[int(r["node"])].append(int(r["value"]))
    active = {v for v in sim.graph if sim.graph.out_degree(v)}
    assert all(staleness[v] == [1] * 30 for v in active)
    assert all(len(staleness[v]) == 30 for v in sim.graph)
    assert any(max(staleness[v]) > 0 for v in set(sim.graph) - active)  # averaged mid-step
    requests = rows(sim.recorder.dir / "messages.csv")
    assert sum(m["kind"] == "average" for m in requests) == 30 * len(active)
    assert all(int(m["src"]) in active for m in requests if m["kind"] == "average")


@pytest.mark.parametrize("peers", ["ring", "round_robin"])
def test_p2p_ring_asks_every_peer_in_turn_so_each_step_is_a_permutation(tmp_path, peers):
    sim = make_simulation(
        P2PPull(peers=peers),
        tmp_path,
        workers=5,
        steps=8,
        compute=Compute(step_time=0.05),
        network=Network(bandwidth="1Gbit/s", latency="1ms"),
        **LOGISTIC,
    )
    sim.run()
    asked = defaultdict(list)
    for m in rows(sim.recorder.dir / "messages.csv"):
        if m["kind"] == "pull":
            asked[int(m["src"])].append(int(m["dst"]))
    for i in range(5):
        assert asked[i] == [(i + 1 + t % 4) % 5 for t in range(8)]
    for t in range(8):
        assert sorted(asked[i][t] for i in range(5)) == list(range(5))
    with pytest.raises(ValueError, match="P2PPull.peers is 'random' or 'ring', got 'nearest'"):
        P2PPull(peers="nearest").check(5)
    with pytest.raises(ValueError, match="P2PPull.weighting is 'equal' or 'loss', got 'best'"):
        P2PPull(weighting="best").check(5)


def test_contribution_weights_are_each_models_inverse_loss():
    from netsim.algorithms.p2p import weight

    assert weight(0.7, 0.7) == 0.5 and weight(1.0, 0.1) == 1 / 1.1  # 10/11 to the better
    assert weight(0.3, 0.6) + weight(0.6, 0.3) == 1.0  # symmetric
    assert weight(2.0, float("nan")) == weight(0.0, 0.0) == 0.5  # unknown or both perfect


@pytest.mark.parametrize("compress", [False, True])
def test_p2p_loss_weighting_merges_with_the_mean_of_each_sides_last_ten_losses(tmp_path, compress):
    """Each merge's weight, recomputed from steps.csv: i's losses until the merge, the peer's
    until it sent its reply; and the merge itself is (1 - w) x_i + w x_j."""
    sim = make_simulation(
        P2PPull(weighting="loss", compress=compress),
        tmp_path,
        workers=3,
        steps=25,
        compute=Compute(step_time=0.05, jitter=0.3),
        network=Network(bandwidth="1Gbit/s", latency="1ms"),
        **LOGISTIC,
    )
    sim.run()
    losses = defaultdict(list)  # node -> [(t_end, loss)]
    for row in rows(sim.recorder.dir / "steps.csv"):
        losses[int(row["node"])].append((float(row["t_end"]), float(row["loss"])))

    def recent(node, t):
        last = [loss for end, loss in losses[node] if end <= t][-10:]
        return sum(last) / len(last) if last else None

    replies = {
        (m["dst"], m["t_arrive"]): (int(m["src"]), float(m["t_send"]))
        for m in rows(sim.recorder.dir / "messages.csv")
        if m["kind"] == "model"
    }
    merges = [r for r in rows(sim.recorder.dir / "records.csv") if r["name"] == "weight"]
    assert len(merges) == 3 * 25  # one per step and worker: no reply is late
    spread = []
    for r in merges:
        i, t = int(r["node"]), float(r["t"])
        j, sent = replies[(r["node"], r["t"])]
        l_i, l_j = recent(i, t), recent(j, sent)
        expected = 0.5 if l_j is None else l_i / (l_i + l_j)  # a peer yet to finish a step
        assert float(r["value"]) == pytest.approx(expected, rel=1e-12)
        spread.append(abs(float(r["value"]) - 0.5))
    assert max(spread) > 0.01  # the losses differ, and so do the weights


def test_p2p_loss_weighting_moves_each_model_by_w_towards_its_peers(tmp_path):
    """Two workers, one step, one merge each: x_0 <- (1 - w) x_0 + w x_1 with
    w = l_0 / (l_0 + l_1), and x_1 with 1 - w; the models before the merge are a run whose
    replies all miss a zero timeout."""
    X = {}
    for name, timeout in (("merged", "1s"), ("unmerged", 0)):
        sim = make_simulation(
            P2PPull(weighting="loss", timeout=timeout), tmp_path / name, workers=2, steps=1,
            compute=Compute(step_time=0.05), network=Network(bandwidth="1Gbit/s", latency="1ms"),
            **LOGISTIC,
        )  # fmt: skip
        sim.run()
        X[name] = sim.X.clone()
    l0, l1 = (float(r["loss"]) for r in rows(tmp_path / "merged" / "steps.csv"))
    w = l0 / (l0 + l1)
    x0, x1 = X["unmerged"]
    assert w != 0.5 and not torch.equal(x0, x1)
    # the same operations as sharing.masked_average_, so the same bits
    assert torch.equal(X["merged"][0], x0.clone().mul_(1 - w).add_(x1, alpha=w))
    w1 = l1 / (l1 + l0)  # node 1's weight for node 0's model: 1 - w up to rounding
    assert torch.equal(X["merged"][1], x1.clone().mul_(1 - w1).add_(x0, alpha=w1))
    assert not torch.equal(X["merged"][0], x0.clone().mul_(0.5).add_(x1, alpha=0.5))
