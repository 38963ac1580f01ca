"""AllReduceSGD with a timeout is elastic: a dead worker is dropped from the group (not only from
a step), one that comes back rejoins, and every member of a group holds the same bits."""

import csv

import pytest
import torch

from netsim.algorithms import AllReduceSGD
from netsim.faults import Crash, Partition
from tests.conftest import UNDER_FAULTS, make_simulation

WAIT = 0.05
SETTINGS = UNDER_FAULTS


def simulate(tmp_path, algorithm, **settings):
    sim = make_simulation(algorithm, tmp_path, **(SETTINGS | settings))
    summary = sim.run()
    return sim, summary


def rows(path, name):
    with open(path / name) as handle:
        return list(csv.DictReader(handle))


def groups(path):
    """(t, node, size) of every group formed."""
    return [
        (float(r["t"]), int(r["node"]), int(float(r["value"])))
        for r in rows(path, "records.csv")
        if r["name"] == "group"
    ]


@pytest.mark.parametrize("schedule", ["ring", "tree", "halving_doubling"])
def test_without_faults_the_elastic_path_trains_the_same_model(tmp_path, schedule):
    static, _ = simulate(tmp_path / "static", AllReduceSGD(schedule), workers=5, steps=12)
    elastic, _ = simulate(
        tmp_path / "elastic", AllReduceSGD(schedule, timeout=WAIT), workers=5, steps=12
    )
    assert torch.equal(static.X, elastic.X)
    assert groups(tmp_path / "elastic") == []
    kinds = {m["kind"] for m in rows(tmp_path / "elastic", "messages.csv")}
    assert kinds == {"reduce", "gather"}


@pytest.mark.parametrize("schedule", ["ring", "tree", "halving_doubling"])
def test_a_crashed_worker_is_dropped_from_the_group(tmp_path, schedule):
    # with momentum: the rendezvous hands the members the root's momentum with its model
    sim, summary = simulate(
        tmp_path,
        AllReduceSGD(schedule, timeout=WAIT),
        faults=[Crash(1, at="0.2s")],
        momentum=0.9,
    )
    formed = groups(tmp_path)
    assert {node for _, node, _ in formed} == {0, 2, 3}
    assert {size for *_, size in formed} == {3}
    survivors = sim.X[[0, 2, 3]]
    assert all(torch.equal(survivors[0], row) for row in survivors)
    assert not torch.equal(sim.X[0], sim.X[1])
    last = max(t for t, *_ in formed)
    later = [m for m in rows(tmp_path, "messages.csv") if float(m["t_send"]) > last]
    collective = [m for m in later if m["kind"] in ("reduce", "gather")]
    assert collective and {int(m["dst"]) for m in collective} == {0, 2, 3}
    # the lowest member probes the dead worker once a timeout; those hellos are dropped
    probes = [m for m in later if m["dst"] == "1"]
    assert probes and all(m["kind"] == "hello" and m["reason"] == "offline" for m in probes)
    steps = rows(tmp_path, "steps.csv")
    assert all(sum(r["node"] == str(i) for r in steps) == 40 for i in (0, 2, 3))
    assert summary["final_accuracy"] is not None


def test_the_evaluated_model_is_the_first_online_workers(tmp_path):
    sim, _ = simulate(tmp_path, AllReduceSGD(timeout=WAIT), faults=[Crash(0, at="0.2s")])
    assert torch.equal(sim.global_model(), sim.X[1])
    assert not torch.equal(sim.X[0], sim.X[1])


def test_a_restarted_worker_rejoins_with_the_groups_model(tmp_path):
    faults = [Crash(1, at="0.2s", restart="0.3s", state="reset")]
    sim, _ = simulate(tmp_path, AllReduceSGD(timeout=WAIT), faults=faults, steps=80)
    formed = sorted(groups(tmp_path))
    assert [(node, size) for _, node, size in formed[:3]] == [(0, 3), (2, 3), (3, 3)]
    rejoined = [(node, size) for t, node, size in formed if 0.5 < t < 1]
    assert sorted(rejoined) == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert torch.equal(sim.X[0], sim.X[2]) and torch.equal(sim.X[0], sim.X[3])
    # worker 1's budget of 80 steps counts those before its crash: it finishes after the
    # others, which have left by then, so its last steps are its own, in a group of one
    end = {
        i: max(float(r["t_end"]) for r in rows(tmp_path, "steps.csv") if r["node"] == str(i))
        for i in range(4)
    }
    assert end[1] > max(end[0], end[2], end[3])
    assert formed[-1][1:] == (1, 1) and formed[-1][0] > max(end[0], end[2], end[3])


def test_a_partition_splits_the_group_and_the_halves_merge_when_it_heals(tmp_path):
    faults = [Partition([[0, 1]], at="0.2s", until="0.6s")]
    sim, _ = simulate(tmp_path, AllReduceSGD(timeout=WAIT), faults=faults, steps=80)
    formed = sorted(groups(tmp_path))
    during = {(node, size) for t, node, size in formed if t < 0.6}
    assert during == {(0, 2), (1, 2), (2, 2), (3, 2)}
    assert {node for t, node, size in formed if t > 0.6 and size == 4} == {0, 1, 2, 3}
    assert all(torch.equal(sim.X[0], row) for row in sim.X)
