"""Faults, checked against what they must do computed by hand: steps every 0.25 s, no jitter,
no latency, so every step and message time is a multiple of 0.25 s (exact in binary)."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netsim import Compute, Experiment, Network, Run, runner
from netsim.algorithms import DPSGD, SGD, GoSGD, SyncPS
from netsim.experiment import ConfigError
from netsim.faults import Churn, Crash, LinkDown, LossBurst, Partition, Slow
from netsim.sim import SimulationError
from tests.conftest import make_simulation

ROOT = Path(__file__).resolve().parents[3]
FAST = {
    "model": "logistic",
    "workers": 4,
    "steps": 40,
    "eval_every": "5s",
    "compute": Compute(step_time="0.25s"),
}


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def run(tmp_path, algorithm, name="run", **settings):
    sim = make_simulation(algorithm, tmp_path / name, **(FAST | settings))
    sim.run()
    folder = sim.recorder.dir
    return sim, rows(folder / "steps.csv"), rows(folder / "messages.csv"), folder


def delivered(m) -> bool:
    """Delivered, or still on its way when the run ended (the last step's push)."""
    return m["dropped"] == "0" or m["reason"] == "in flight"


def spans(steps, node):
    return [(float(r["t_start"]), float(r["t_end"])) for r in steps if r["node"] == str(node)]


def test_a_crashed_node_neither_trains_nor_sends_and_messages_to_it_drop_offline(tmp_path):
    _, steps, messages, folder = run(tmp_path, GoSGD(p=1.0), faults=[Crash(1, at=2, restart=3)])
    # the step ending at 2 s is lost with the crash; back at 5 s, the node steps on
    mine = spans(steps, 1)
    assert [s for s in mine if s[0] < 5] == [(0.25 * k, 0.25 * (k + 1)) for k in range(7)]
    assert [s for s in mine if s[0] >= 5][:2] == [(5.0, 5.25), (5.25, 5.5)]
    assert not [m for m in messages if m["src"] == "1" and 2 <= float(m["t_send"]) < 5]
    to_it = [m for m in messages if m["dst"] == "1"]
    down = [m for m in to_it if 2 <= float(m["t_send"]) < 5]
    assert down and all(m["dropped"] == "1" and m["reason"] == "offline" for m in down)
    others = [m for m in messages if m not in down]
    assert all(delivered(m) for m in others)
    records = [(r["t"], r["node"], r["name"], r["value"]) for r in rows(folder / "records.csv")]
    assert records == [("2.0", "1", "offline", "1"), ("5.0", "1", "offline", "0")]
    config = json.loads((folder / "config.json").read_text())
    assert config["faults"] == [
        {"name": "Crash", "node": 1, "at": 2, "restart": 3, "state": "keep"}
    ]


def test_a_link_down_drops_exactly_the_messages_sent_on_it_in_the_interval(tmp_path):
    _, _, messages, _ = run(tmp_path, GoSGD(p=1.0), faults=[LinkDown(1, 0, at="1s", until="3s")])
    on_link = lambda m: {m["src"], m["dst"]} == {"0", "1"} and 1 <= float(m["t_send"]) < 3
    cut = [m for m in messages if on_link(m)]
    assert cut and all(m["dropped"] == "1" and m["reason"] == "link down" for m in cut)
    assert all(delivered(m) for m in messages if not on_link(m))


def test_a_partition_blocks_only_messages_across_groups_until_it_heals(tmp_path):
    # nodes 0 and 1 on one side; the nodes no group names (2, 3) on the other
    _, _, messages, _ = run(tmp_path, GoSGD(p=1.0), faults=[Partition([[0, 1]], at=1, until=3)])
    side = {"0": 0, "1": 0, "2": 1, "3": 1}
    across = lambda m: side[m["src"]] != side[m["dst"]] and 1 <= float(m["t_send"]) < 3
    blocked = [m for m in messages if across(m)]
    assert blocked and all(m["dropped"] == "1" and m["reason"] == "partition" for m in blocked)
    within = [m for m in messages if side[m["src"]] == side[m["dst"]]]
    assert within and all(delivered(m) for m in within)
    assert all(delivered(m) for m in messages if not across(m))


def test_slow_multiplies_the_step_time_by_factor_exactly_in_the_interval(tmp_path):
    _, steps, _, _ = run(tmp_path, SGD(), workers=2, faults=[Slow(1, 3.0, at=1, until=2)])
    slow = spans(steps, 1)
    # steps start at 0, .25, .5, .75, then 1 and 1.75 (inside: 0.75 s each), then 2.5, ...
    assert [s for s in slow if s[0] < 3] == [
        (0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, 1.75), (1.75, 2.5),
        (2.5, 2.75), (2.75, 3.0),
    ]  # fmt: skip
    assert all(b - a == 0.25 for a, b in spans(steps, 0))


def test_a_loss_burst_loses_messages_sent_in_it_only(tmp_path):
    _, _, messages, _ = run(tmp_path, GoSGD(p=1.0), faults=[LossBurst(1.0, at=1, until=2)])
    inside = lambda m: 1 <= float(m["t_send"]) < 2
    assert all(m["dropped"] == "1" and m["reason"] == "loss" for m in messages if inside(m))
    assert all(delivered(m) for m in messages if not inside(m))
    _, _, half, _ = run(tmp_path, GoSGD(p=1.0), "half", faults=[LossBurst(0.5, at=1, until=3)])
    burst = [m["dropped"] for m in half if 1 <= float(m["t_send"]) < 3]
    assert 0 < burst.count("1") < len(burst)
    assert all(delivered(m) for m in half if not 1 <= float(m["t_send"]) < 3)


@pytest.mark.parametrize("state", ["keep", "reset"])
def test_a_restart_keeps_the_parameters_or_resets_them_to_x0(tmp_path, state):
    sim, _, _, folder = run(
        tmp_path, Probe(), workers=2, momentum=0.9, faults=[Crash(0, at=1, restart=1, state=state)]
    )
    mine = [r for r in rows(folder / "records.csv") if r["node"] == "0"]
    seen = [(float(r["t"]), float(r["value"])) for r in mine]
    before = [v for t, v in seen if t < 1]  # x[0] after each step before the crash
    at_restart = [v for t, v in seen if t == 2.0][1]  # after the offline=0 row: the role's start
    x0 = float(sim.workload.x0[0])
    assert at_restart == (x0 if state == "reset" else before[-1])
    assert at_restart != before[-1] or state == "keep"


class Probe:
    """Records x[0] when its role starts and after each step."""

    async def worker(self, node):
        node.record("x0", float(node.x[0]))
        while not node.done:
            await node.train()
            node.record("x0", float(node.x[0]))


def test_an_availability_trace_takes_nodes_offline_between_their_sessions(tmp_path):
    trace = tmp_path / "availability.csv"
    trace.write_text("node,t_on,t_off\n1,0,2\n1,4,100\n")
    _, steps, _, folder = run(tmp_path, SGD(), faults=[Churn(trace=str(trace))])
    assert not [s for s in spans(steps, 1) if s[1] > 2 and s[0] < 4]
    assert (4.0, 4.25) in spans(steps, 1)
    offline = [(r["t"], r["node"], r["value"]) for r in rows(folder / "records.csv")]
    assert offline == [("2.0", "1", "1"), ("4.0", "1", "0")]


def test_churn_sessions_are_the_seeded_exponential_draws(tmp_path):
    _, _, _, folder = run(tmp_path, SGD(), workers=2, faults=[Churn(fraction=0.2, session="2s")])
    rng = np.random.default_rng([0, 6, 1])  # seed 0, churn stream, node 1
    t, expected = 0.0, []
    for _ in range(2):
        t += rng.exponential(2.0)
        expected.append((t, 1.0))
        t += rng.exponential(2.0 * 0.2 / 0.8)
        expected.append((t, 0.0))
    mine = [r for r in rows(folder / "records.csv") if r["node"] == "1"]
    got = [(float(r["t"]), float(r["value"])) for r in mine][:4]
    assert [v for _, v in got] == [v for _, v in expected]
    assert [t for t, _ in got] == pytest.approx([t for t, _ in expected], rel=1e-12)


def test_the_same_seed_gives_byte_identical_files_under_churn(tmp_path):
    faults = [Churn(fraction=0.3, session="1s"), LossBurst(0.5, at=1, until=2)]
    folders = [run(tmp_path, GoSGD(p=0.5), f"r{k}", faults=faults)[3] for k in range(2)]
    for name in ("steps.csv", "messages.csv", "records.csv", "evals.csv"):
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes()
    reasons = {m["reason"] for m in rows(folders[0] / "messages.csv")}
    assert {"offline", "loss"} <= reasons


def test_a_stalled_run_says_who_waits_for_what_and_that_faults_caused_it(tmp_path):
    with pytest.raises(SimulationError) as error:
        run(tmp_path, SyncPS(), faults=[Crash(0, at=1)])
    line = str(error.value)
    assert "\n" not in line and line.startswith("run 'test' stalled at t=")
    assert "node 0 is offline" in line and "node 4 waits for 'grad'" in line
    assert "nodes 1, 2, 3 wait for 'params'" in line and "faults or loss caused it" in line


def test_a_run_stalled_under_endless_churn_ends_with_one_line(tmp_path):
    # D-PSGD without a timeout waits for every neighbour: churn stalls it, and churn drawn
    # from a distribution never runs out of events
    with pytest.raises(SimulationError, match="stalled.*faults or loss caused it"):
        run(tmp_path, DPSGD(), topology="ring", faults=[Churn(fraction=0.3, session="1s")])


def _check(tmp_path, faults):
    experiment = Experiment(
        "e",
        [Run("r", SGD(), faults=faults)],
        data="synthetic_fmnist",
        model="logistic",
        workers=2,
        steps=5,
    )
    return runner.check(experiment, tmp_path / "out")


@pytest.mark.parametrize(
    "fault, says",
    [
        (Crash(5, at=1), "no node 5 in this run; nodes are 0..1"),
        (Crash(0, at=-1), "at: invalid duration -1"),
        (LinkDown(0, 1, at=2, until=1), "until must be after at"),
        (Partition([[0]], at="2s", until="2s"), "until must be after at"),
        (Slow(0, 0.0, at=0, until=1), "factor must be > 0"),
        (LossBurst(1.5, at=0, until=1), "p is a probability"),
        (Churn(trace="no/such.csv"), "cannot read the trace"),
        (Crash(0, at=1, state="lost"), "state is 'keep' or 'reset'"),
        ("crash", "a fault is one of Crash"),
    ],
)
def test_a_bad_fault_is_one_line_naming_the_run_and_the_fault(tmp_path, fault, says):
    with pytest.raises(ConfigError) as error:
        _check(tmp_path, [fault])
    line = str(error.value)
    assert line.startswith("run 'r': faults[0]") and says in line and "\n" not in line


def test_a_malformed_trace_row_is_named_by_its_line(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("node,t_on,t_off\n0,0,5\n1,abc,7\n")
    with pytest.raises(ConfigError, match=r"trace.csv, line 3: '1,abc,7' is not node,t_on,t_off"):
        _check(tmp_path, [Churn(trace=str(trace))])
    trace.write_text("node,t_on,t_off\n0,5,1\n")
    with pytest.raises(ConfigError, match="line 2: t_off must be after t_on"):
        _check(tmp_path, [Churn(trace=str(trace))])


def test_no_faults_is_no_plan():
    from netsim.network.faults import plan

    assert not plan([], ["worker"] * 3)
    assert plan([Crash(0, at=1)], ["worker"] * 3).offline == [(0, 1.0, math.inf, "keep")]


FILE = """
from netsim import Compute, Experiment, Run
from netsim.algorithms import GoSGD
from netsim.faults import Crash, Slow
experiment = Experiment("f", data="synthetic_fmnist", model="logistic", workers=3, steps=8,
    eval_every=4, compute=Compute(step_time="0.1s"),
    runs=[Run("good", GoSGD(p=1.0), faults=[Crash(1, at="0.3s", restart="0.2s")]),
          Run("bad", GoSGD(p=1.0), faults=[Slow(0, {factor}, at=0, until=1)])])
"""


@pytest.mark.parametrize("factor, rc", [(2.0, 0), (-1.0, 2)])
def test_faults_in_an_experiment_file_through_the_cli(tmp_path, factor, rc):
    spec = tmp_path / "f.py"
    spec.write_text(FILE.format(factor=factor))
    command = [sys.executable, "-m", "netsim", str(spec), "--out", str(tmp_path), "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == rc, result.stderr
    if rc:  # one line before any run starts, naming the run and the fault
        assert result.stderr.strip().splitlines() == [
            "netsim: error: run 'bad': faults[0] = Slow(node=0, factor=-1.0, at=0, until=1): "
            "factor must be > 0 (2 = steps take twice as long)"
        ]
        assert not (tmp_path / "f" / "good").exists()
    else:
        messages = rows(tmp_path / "f" / "good" / "messages.csv")
        assert {m["reason"] for m in messages if m["dropped"] == "1"} <= {"offline", "in flight"}


def test_a_message_on_its_way_when_its_receiver_goes_offline_is_dropped_at_arrival(tmp_path):
    # 0.3 s of latency: a message sent at the step's end at 1.75 s arrives after 2 s
    network = Network(latency="0.3s")
    faults = [Crash(1, at=2, restart=3)]
    _, _, messages, _ = run(tmp_path, GoSGD(p=1.0), network=network, faults=faults)
    to_it = [m for m in messages if m["dst"] == "1"]
    sent = lambda m, a, b: a <= float(m["t_send"]) < b
    on_way = [m for m in to_it if sent(m, 1.7, 2)]  # arrives after 2 s: dropped then
    assert on_way and all(m["reason"] == "offline" for m in on_way)
    assert all(float(m["t_arrive"]) > 2 for m in on_way)
    at_send = [m for m in to_it if sent(m, 2, 5)]  # never enters the network
    assert at_send and all(m["reason"] == "offline" for m in at_send)
    assert all(m["t_arrive"] == m["t_send"] for m in at_send)
    back = [m for m in to_it if sent(m, 5, 6)]  # sent once it is back: delivered
    assert back and all(m["reason"] == "" for m in back)
    assert all(delivered(m) for m in to_it if not sent(m, 1.7, 5))
