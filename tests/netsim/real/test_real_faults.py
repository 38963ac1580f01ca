"""Faults in the real runtime: the simulation's plan, honoured by node processes on real TCP."""

import csv
import json
import math
import signal
from pathlib import Path

import pytest

from netsim import Compute, Experiment, Network, Run, run
from netsim.algorithms import AllReduceSGD, GoSGD, P2PPull, SyncPS
from netsim.faults import Churn, Crash, LinkDown, LossBurst, Partition, Slow

JITTER = 0.05  # s: how late a node process may act on a planned instant (asyncio scheduling)


def tiny(one: Run, **settings) -> Experiment:
    values = {
        "data": "synthetic_fmnist",
        "model": "logistic",
        "workers": 4,
        "steps": 30,
        "eval_every": 10,
        "batch": 16,
        "compute": Compute(step_time="0.05s"),
        "network": Network("1Gbit/s", "1ms"),
    }
    return Experiment("faults", [one], **(values | settings))


def results(tmp_path: Path, experiment: Experiment, runtime: str = "real") -> dict:
    run(experiment, out=tmp_path / runtime, runtime=runtime, progress=False, plot=False)
    folder = tmp_path / runtime / "faults" / experiment.runs[0].name
    out = {"summary": json.loads((folder / "summary.json").read_text())}
    for name in ("steps", "messages", "records"):
        with open(folder / f"{name}.csv") as handle:
            out[name] = list(csv.DictReader(handle))
    return out


def offline_rows(records: list[dict]) -> list[tuple[int, float, int]]:
    return [
        (int(r["node"]), float(r["t"]), int(float(r["value"])))
        for r in records
        if r["name"] == "offline"
    ]


def test_a_crashed_node_is_offline_from_at_to_its_restart_and_starts_again_from_x0(tmp_path):
    # latency into node 1, so that some frames are on their way when it goes offline
    network = Network("1Gbit/s", "1ms", edges={(j, 1): {"latency": "0.1s"} for j in (0, 2, 3)})
    fault = Crash(1, at="0.5s", restart="0.5s", state="reset")
    out = results(tmp_path, tiny(Run("crash", GoSGD(p=1.0), faults=[fault]), network=network))
    (node, off, went), (_, on, back) = offline_rows(out["records"])
    assert (node, went, back) == (1, 1, 0)
    assert 0.5 <= off < 0.5 + JITTER and 1.0 <= on < 1.0 + JITTER
    # none of its steps ends while it is offline; the one in progress at 0.5 s is lost
    mine = [s for s in out["steps"] if s["node"] == "1"]
    assert not any(off <= float(s["t_end"]) < on for s in mine)
    assert [int(s["step"]) for s in mine] == list(range(1, 31))  # its budget, all the same
    # back from x0: its first step's loss is about x0's, well above its loss before the crash
    before = [float(s["loss"]) for s in mine if float(s["t_end"]) < off]
    after = next(float(s["loss"]) for s in mine if float(s["t_start"]) >= on)
    assert after > before[-1] + 0.1 and abs(after - before[0]) < 0.3, (before, after)
    # to node 1: sent while it is offline, dropped at once by the sender (exact: the sender's
    # own clock says when); arriving while it is offline, dropped by node 1 on arrival. Exact
    # too: node 1 reads the run's clock for t_arrive and tests its flag in one step, and its
    # offline record reads the same clock just after the flag changes (no await between)
    to_1 = [m for m in out["messages"] if m["dst"] == "1" and m["reason"] != "in flight"]
    for m in to_1:
        t_send, t_arrive = float(m["t_send"]), float(m["t_arrive"])
        if 0.5 <= t_send < 1.0:
            assert m["reason"] == "offline" and math.isnan(t_arrive), m
        else:
            offline = m["reason"] == "offline"
            assert m["reason"] in ("", "offline") and (m["dropped"] == "1") == offline, m
            assert offline == (off <= t_arrive < on), m
    assert any(m["reason"] == "offline" and float(m["t_send"]) < 0.5 for m in to_1)
    # node 1 sends nothing while offline
    assert not any(
        m["src"] == "1" and off + JITTER <= float(m["t_send"]) < on for m in out["messages"]
    )
    assert out["summary"]["final_accuracy"] is not None


def test_links_down_partitions_and_loss_bursts_drop_what_is_sent_in_them_with_their_reason(
    tmp_path,
):
    faults = [
        LinkDown(0, 1, at="0.2s", until="0.5s"),
        Partition([[0, 1], [2]], at="0.6s", until="0.9s"),  # node 3: a group of its own
        LossBurst(1.0, at="1.0s", until="1.3s"),
    ]
    out = results(tmp_path, tiny(Run("cut", P2PPull(timeout="0.1s"), faults=faults)))
    side = {0: 0, 1: 0, 2: 1, 3: 2}
    reasons = set()
    for m in out["messages"]:
        src, dst, t = int(m["src"]), int(m["dst"]), float(m["t_send"])
        if 0.2 <= t < 0.5 and {src, dst} == {0, 1}:
            expected = "link down"
        elif 0.6 <= t < 0.9 and side[src] != side[dst]:
            expected = "partition"
        elif 1.0 <= t < 1.3:
            expected = "loss"
        else:
            expected = ""
        assert m["reason"] == expected or (not expected and m["reason"] == "in flight"), m
        assert (m["dropped"] == "1") == bool(m["reason"]), m
        reasons.add(m["reason"])
    assert {"link down", "partition", "loss", ""} <= reasons
    assert out["summary"]["final_accuracy"] is not None


@pytest.mark.slow  # CI's 10 minutes: run with pytest -m slow
def test_churn_and_crashes_go_offline_at_the_same_instants_as_in_simulation(tmp_path):
    faults = [Churn(fraction=0.3, session="0.4s"), Crash(2, at="0.3s")]  # node 2: for good
    experiment = tiny(Run("churn", GoSGD(p=0.5), faults=faults), steps=None, until="1.5s")
    sim = offline_rows(results(tmp_path, experiment, "sim")["records"])
    out = results(tmp_path, experiment)
    real = offline_rows(out["records"])
    assert len(sim) >= 4 and any(v == 0 for *_, v in sim)  # some churn: off and back
    # the real run ends a moment after 1.5 s: what happens then is a race
    sim = [row for row in sim if row[1] < 1.5 - JITTER]
    real = [row for row in real if row[1] < 1.5 - JITTER]
    assert sorted((i, v) for i, _, v in real) == sorted((i, v) for i, _, v in sim)
    for i, t, v in real:
        assert any(j == i and w == v and 0 <= t - s < JITTER for j, s, w in sim), (i, t, v)
    assert not any(s["node"] == "2" and float(s["t_end"]) >= 0.3 + JITTER for s in out["steps"])


@pytest.mark.slow  # CI's 10 minutes: run with pytest -m slow
def test_a_slow_node_steps_factor_times_slower_in_its_interval(tmp_path):
    fault = Slow(0, factor=4.0, at="0.3s", until="0.8s")
    out = results(tmp_path, tiny(Run("slow", GoSGD(p=0.0), faults=[fault]), steps=20))
    for s in out["steps"]:
        start, took = float(s["t_start"]), float(s["t_end"]) - float(s["t_start"])
        slow = s["node"] == "0" and 0.3 <= start < 0.8
        assert (took >= 0.2 * 0.9) == slow, s  # 4 x 0.05 s, with the model's jitter
        assert took < (0.2 if slow else 0.05) * 1.2 + JITTER, s


@pytest.mark.slow  # CI's 10 minutes: run with pytest -m slow
@pytest.mark.parametrize("fault", [Crash(0, at="0.2s")])
def test_a_node_offline_for_good_ends_and_the_run_finishes_without_it(tmp_path, fault):
    out = results(tmp_path, tiny(Run("gone", GoSGD(p=0.5), faults=[fault]), steps=12))
    steps = {i: sum(s["node"] == str(i) for s in out["steps"]) for i in range(4)}
    assert steps[0] < 12 and all(steps[i] == 12 for i in (1, 2, 3)), steps
    assert out["summary"]["final_accuracy"] is not None


@pytest.mark.parametrize(
    "algorithm",
    [SyncPS(timeout="0.2s"), AllReduceSGD(timeout="0.2s")],
    ids=["sync_ps", "allreduce"],
)
@pytest.mark.slow  # CI's 10 minutes: run with pytest -m slow
def test_algorithms_that_wait_go_on_past_a_crash_with_a_timeout(tmp_path, algorithm):
    fault = Crash(1, at="0.3s", restart="0.4s", state="reset")
    out = results(tmp_path, tiny(Run("wait", algorithm, faults=[fault]), steps=20))
    assert [(i, v) for i, _, v in offline_rows(out["records"])] == [(1, 1), (1, 0)]
    workers = {s["node"] for s in out["steps"] if int(s["step"]) == 20}
    assert len(workers) == 4, workers  # every worker, node 1 too, ran its budget
    assert out["summary"]["final_accuracy"] is not None


def test_a_real_run_that_waits_for_a_dead_node_ends_with_one_line_saying_why(tmp_path, monkeypatch):
    # SyncPS without a timeout waits for worker 1's gradients for ever once it has crashed:
    # the simulation sees at once that nothing is left to happen, a real run sees that
    # nothing happens (netsim/real/watchdog.py; 2 s here instead of 10)
    from netsim.real import coordinator, watchdog

    monkeypatch.setattr(watchdog, "QUIET", 2.0)
    experiment = tiny(Run("stall", SyncPS(), faults=[Crash(1, at="0.3s")]))

    def late(signum, frame):  # a broken check would hang the run: fail it instead
        raise TimeoutError("no stall declared within 60 s")

    before = signal.signal(signal.SIGALRM, late)
    signal.alarm(60)
    try:
        with pytest.raises(coordinator.RealRunError) as error:
            run(experiment, out=tmp_path, runtime="real", progress=False, plot=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
    said = str(error.value)
    assert said.startswith("run 'stall' stalled at t=")
    quiet = float(said.split("arrived for ")[1].split(" s;")[0])
    assert 2.0 <= quiet < 2.0 + 1.0 + JITTER  # at least QUIET, checked every second
    assert "; node 1 offline; " in said
    assert "faults or loss caused it" in said and "\n" not in said
    stalled_at = float(said.split("t=")[1].split("s:")[0])
    assert 2.3 <= stalled_at < 2.3 + 1.0 + JITTER + 1.0  # 2 s after the last step, checked each s
    summary = json.loads((tmp_path / "faults" / "stall" / "summary.json").read_text())
    assert summary["complete"] is False
