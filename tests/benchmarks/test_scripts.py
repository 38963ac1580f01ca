"""The benchmark scripts that need no root: they run, and their simulated halves are right."""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fidelity  # noqa: E402
import ps_steps  # noqa: E402
import ramp  # noqa: E402
import served  # noqa: E402
import unfairness  # noqa: E402

from netsim import Network  # noqa: E402


def test_wire_prints_both_ways_and_their_ratios():
    result = subprocess.run(
        [sys.executable, "benchmarks/wire.py", "--mb", "2", "--repeats", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith("x")]
    assert [row.split()[0] for row in rows] == ["send", "decode"]


def test_unfairness_simulates_order_statistics_over_max_mins_end():
    fair = unfairness.simulated(4, 0.0, seeds=2)
    assert fair == pytest.approx(np.ones((2, 4)), rel=1e-12)
    uneven = unfairness.simulated(4, 0.5, seeds=3)
    assert uneven.shape == (3, 4) and (np.diff(uneven, axis=1) >= 0).all()
    assert uneven[:, -1] == pytest.approx(1.0) and (uneven[:, 0] < 0.95).all()


def test_ramp_simulates_the_first_flows_end_earlier_than_max_min():
    size, start = 6_650_000, 0.05
    alone = 8 * (size + 50) / (300e6 * 1448 / 1514)  # a few bytes of header on the wire
    fair = ramp.simulated(size, start, 0.0)
    assert fair == (pytest.approx(2 * alone - start, rel=1e-3), pytest.approx(2 * alone, rel=1e-3))
    ramped = ramp.simulated(size, start, 0.05)
    assert ramped[1] == pytest.approx(fair[1], rel=1e-12) and ramped[0] < fair[0] - 0.01
    # a second sender that started first: times still from the first flow's start
    early = ramp.simulated(size, -start, 0.0)
    assert early == (
        pytest.approx(2 * alone - start, rel=1e-3),
        pytest.approx(alone * 2 - 2 * start, rel=1e-3),
    )


def test_crowding_counts_the_other_messages_on_a_messages_link_over_its_transfer(tmp_path):
    # 1 and 2 push into 4 (the node receiving most), overlapping for 0.5 of each one's 1 s;
    # 3's message into 4 was dropped and crowds nothing. 4 sends most (2 replies), 1 s apart;
    # 1's gradient runs beside 4's first reply, but on 4's downlink, not its uplink.
    (tmp_path / "messages.csv").write_text(
        "src,dst,kind,bytes,data_bytes,t_send,t_arrive,dropped,reason\n"
        "1,4,grad,10,10,0.0,1.0,0,\n"
        "2,4,grad,10,10,0.5,1.5,0,\n"
        "4,1,params,10,10,0.0,1.0,0,\n"
        "4,2,params,10,10,1.0,2.0,0,\n"
        "3,4,grad,10,10,0.2,,1,loss\n"
    )
    into, out = ps_steps.crowding(tmp_path)
    assert into == pytest.approx(0.5, rel=1e-12)
    assert out == 0.0
    (tmp_path / "messages.csv").write_text("src,dst,kind,bytes,data_bytes,t_send,t_arrive\n")
    assert ps_steps.crowding(tmp_path) == (0.0, 0.0)


def test_update_time_is_the_servers_median_time_from_gradient_or_busy_to_reply(tmp_path):
    # 1's gradient arrives at 1.0 and its reply leaves at 1.2; 2's arrived at 1.1, waited
    # for that update, and its reply left at 1.5 (0.3); 1's next: 2.0 -> 2.1. Worker 3's
    # gradient got no reply before the end; 4's was dropped.
    (tmp_path / "messages.csv").write_text(
        "src,dst,kind,bytes,data_bytes,t_send,t_arrive,dropped,reason\n"
        "1,0,grad,10,10,0.5,1.0,0,\n"
        "2,0,grad,10,10,0.6,1.1,0,\n"
        "0,1,params,10,10,1.2,1.3,0,\n"
        "0,2,params,10,10,1.5,1.6,0,\n"
        "1,0,grad,10,10,1.9,2.0,0,\n"
        "0,1,params,10,10,2.1,2.2,0,\n"
        "3,0,grad,10,10,2.5,2.6,0,\n"
        "4,0,grad,10,10,2.5,,1,loss\n"
    )
    assert ps_steps.update_time(tmp_path) == pytest.approx(0.2, rel=1e-12)  # of .2, .3, .1
    (tmp_path / "messages.csv").write_text("src,dst,kind,bytes,data_bytes,t_send,t_arrive\n")
    assert ps_steps.update_time(tmp_path) == 0.0


def test_host_goodput_is_the_median_share_of_the_nic_moved_by_messages_alone(tmp_path):
    # NICs at 1 Gbit/s, node 2's at 300 Mbit/s. 0 -> 1: 10 MB in 0.1 s alone (0.8 of 1 Gbit/s);
    # 1 -> 2: 3 MB in 0.1 s alone (0.8 of node 2's 300 Mbit/s); 0 -> 2: 3 MB in 0.2 s (0.4).
    # Then two from 1 overlap on its uplink, one into 0 starts while another into 0 is still
    # on its way at the end, and a small message is too short to count.
    (tmp_path / "messages.csv").write_text(
        "src,dst,kind,bytes,data_bytes,t_send,t_arrive,dropped,reason\n"
        "0,1,m,10000000,0,0.0,0.1,0,\n"
        "1,2,m,3000000,0,0.2,0.3,0,\n"
        "0,2,m,3000000,0,0.4,0.6,0,\n"
        "1,0,m,3000000,0,1.0,1.1,0,\n"
        "1,2,m,3000000,0,1.05,1.2,0,\n"
        "2,0,m,3000000,0,2.0,,0,\n"
        "1,0,m,3000000,0,2.5,2.6,0,\n"
        "0,1,m,1000,0,3.0,3.5,0,\n"
    )
    network = Network("1Gbit/s", nodes={2: {"bandwidth": "300Mbit/s"}}, goodput="tcp")
    found = ps_steps.host_goodput(tmp_path, network, ["worker"] * 3)
    assert found == pytest.approx(0.8, rel=1e-12)  # of 0.8, 0.8, 0.4


def test_update_time_of_peer_to_peer_is_the_median_merge_from_reply_to_next_step(tmp_path):
    # worker 0: steps [0, 1], [1.5, 2.5], [3.2, 4.2]; its replies arrive at 1.4 (merged by
    # 1.5: 0.1) and 3.0 (0.2); 2.0 came during a step (a late one: not merged). Worker 1's
    # reply at 1.7 took 0.4 to its step at 2.1.
    (tmp_path / "messages.csv").write_text(
        "src,dst,kind,bytes,data_bytes,t_send,t_arrive,dropped,reason\n"
        "0,1,pull,1,1,1.0,1.01,0,\n"
        "1,0,model,10,10,1.01,1.4,0,\n"
        "2,0,model,10,10,1.5,2.0,0,\n"
        "1,0,model,10,10,2.6,3.0,0,\n"
        "0,1,model,10,10,1.2,1.7,0,\n"
        "2,1,model,10,10,1.2,,1,loss\n"
    )
    (tmp_path / "steps.csv").write_text(
        "node,step,t_start,t_end,loss\n"
        "0,1,0,1,1\n0,2,1.5,2.5,1\n0,3,3.2,4.2,1\n1,1,0,1.1,1\n1,2,2.1,3.1,1\n"
    )
    assert ps_steps.update_time(tmp_path) == pytest.approx(0.2, rel=1e-12)  # of .1, .2, .4


def test_served_runs_closed_loop_compute_then_push_then_reply(tmp_path):
    # one worker, no jitter: each step is 0.58 s, then its push and the server's reply, each
    # alone at the server's 300 Mbit/s x TCP's goodput
    pattern = served.patterns.Served(1, 10**6, 4, jitter=0.0)
    run_dir = served.simulate(pattern, served.MODELS['ramp "tcp"'], 0, tmp_path)
    found = served.steps(run_dir)
    rows = served.read_csv(run_dir / "messages.csv", text=("kind", "reason"))
    assert len(rows["src"]) == 8 and set(rows["bytes"].tolist()) == {rows["bytes"][0]}
    alone = 8 * rows["bytes"][0] / (300e6 * 1448 / 1514)
    assert found.shape == (1, 3)
    assert found == pytest.approx(np.full((1, 3), 0.58 + 2 * alone), rel=1e-9)
    assert served.transfers(run_dir) == pytest.approx((alone, alone), rel=1e-9)
    # two workers start in lockstep: their first pushes share the server's link
    two = served.steps(served.simulate(served.patterns.Served(2, 10**6, 4), {}, 0, tmp_path / "2"))
    assert two.shape == (2, 3) and (two > 0.58 * 0.9).all()


def test_pulled_steps_are_compute_then_request_then_reply_or_the_timeout(tmp_path):
    # two workers, no jitter: each asks the other at 0.58 s; each request and each reply is
    # alone on its links (no ACKs), at 1 Gbit/s x TCP's goodput
    pattern = served.patterns.Pulled(2, 10**6, 4, jitter=0.0)
    run_dir = served.simulate(pattern, served.MODELS["max-min"], 0, tmp_path)
    rows = served.read_csv(run_dir / "messages.csv", text=("kind", "reason"))
    assert sorted(rows["kind"].tolist()) == ["model"] * 8 + ["pull"] * 8
    assert served.network(pattern).nodes == {}  # every NIC at 1 Gbit/s: no server
    rate = 1e9 * 1448 / 1514
    request = 8 * rows["bytes"][rows["kind"] == "pull"][0] / rate
    reply = 8 * rows["bytes"][rows["kind"] == "model"][0] / rate
    assert reply == pytest.approx(8 * 10**6 / rate, rel=1e-3)
    found = served.steps(run_dir)  # the gaps between a worker's requests
    assert found == pytest.approx(np.full((2, 3), 0.58 + request + reply), rel=1e-9)
    assert served.transfers(run_dir) == pytest.approx((request, reply), rel=1e-9)
    # 10 MB take 84 ms, past a 50 ms timeout: each step is its compute and the timeout, and
    # the late reply, in during the next compute, is never taken as the next one's
    late = served.patterns.Pulled(2, 10**7, 3, jitter=0.0, timeout=0.05)
    found = served.steps(served.simulate(late, served.MODELS["max-min"], 0, tmp_path / "late"))
    assert found == pytest.approx(np.full((2, 2), 0.58 + 0.05), rel=1e-9)


def test_ramp_together_races_a_second_flow_within_the_ramp_and_not_after_it():
    size, alone = 1_000_000, 8e6 / (300e6 * 1448 / 1514)
    late = [ramp.simulated(size, 0.06, 0.05, together=True, seed=s) for s in range(4)]
    assert late == [pytest.approx(ramp.simulated(size, 0.06, 0.05), rel=1e-12)] * 4
    early = [ramp.simulated(size, 0.01, 0.05, together=True, seed=s) for s in range(4)]
    assert len({first for first, _ in early}) == 4  # each seed its own split
    for first, second in early:  # the link never idles: the last ends at 2 alone
        assert max(first, second) == pytest.approx(2 * alone, rel=1e-3)


def test_ramp_pairs_on_warm_connections_send_each_senders_warm_up_first():
    assert ramp.pair(6, 0.1).schedule == ((0.0, 1, 0, 6), (0.1, 2, 0, 6))
    warm = ramp.pair(6, 0.1, warm=True).schedule
    assert warm[:2] == ((0.0, 1, 0, 6), (0.3, 2, 0, 6))
    assert warm[2:] == ((1.3, 1, 0, 6), (pytest.approx(1.4, abs=1e-12), 2, 0, 6))
    out = ramp.pair(6, 0.1, warm=True, out=True).schedule  # both out of node 0's uplink
    assert [(src, dst) for _, src, dst, _ in out] == [(0, 1), (0, 2)] * 2
    assert ramp.simulated(10**6, 0.002, 0.0, out=True) == ramp.simulated(10**6, 0.002, 0.0)
    # 80 MB take 2.13 s alone at 300 Mbit/s: the warm-ups are through before the pair starts
    big = ramp.pair(80 * 10**6, 0.1, warm=True).schedule
    assert [t for t, *_ in big] == pytest.approx([0.0, 2.233333, 5.166667, 5.266667], rel=1e-6)
    # --compete: the warm-ups 0.3 s apart share the link; the pair 0.8 s after both are through
    both = ramp.pair(80 * 10**6, 0.1, compete=True).schedule
    assert [t for t, *_ in both] == pytest.approx([0.0, 0.3, 5.366667, 5.466667], rel=1e-6)


def fidelity_settings(**given):
    """fidelity.settings() of the command line's defaults with these flags changed."""
    defaults = dict(
        unfairness="0", ramp="0", acks="0", goodput=1.0, rates="1Gbit/s", repeats=1,
        congestion="cubic", connections="message", unfairness_among="all",
    )  # fmt: skip
    return fidelity.settings(argparse.Namespace(**defaults | given))


def test_fidelity_reads_its_options_as_network_does_and_names_a_bad_one_in_a_line():
    good = fidelity_settings(ramp="50ms", acks="tcp", rates="25Mbit/s, 1Gbit/s")
    assert good == {
        "unfairness": 0.0, "ramp": "50ms", "acks": "tcp", "rates": ("25Mbit/s", "1Gbit/s"),
        "connections": "message", "unfairness_among": "all",
    }  # fmt: skip
    assert fidelity_settings(connections="pair")["connections"] == "pair"
    together = fidelity_settings(unfairness="tcp", unfairness_among="together")
    assert together["unfairness_among"] == "together"
    for given, words in [
        ({"ramp": "5furlongs"}, "--ramp 5furlongs: Network.ramp"),
        ({"acks": "2"}, "--acks 2: Network.acks"),
        ({"rates": "100Mbit"}, "--rates: 100Mbit: Network.bandwidth"),
        ({"rates": " , "}, "--rates ' , ': give one rate or more"),
        ({"repeats": 0}, "--repeats 0: use a whole number >= 1"),
        ({"goodput": 2.0}, "--goodput 2.0: Network.goodput"),
        ({"connections": "tcp"}, "--connections tcp: Network.connections"),
        ({"unfairness_among": "some"}, "--unfairness-among some: Network.unfairness_among"),
        ({"unfairness_among": "together"}, "--unfairness-among together: Network.unfairness_"),
        ({"congestion": "nosuchtcp"}, "--congestion nosuchtcp: TCP congestion control"),
    ]:
        line = fidelity_settings(**given)
        assert isinstance(line, str) and line.startswith(words) and "\n" not in line
    assert fidelity_settings(congestion="host") == fidelity_settings()  # the host's own: allowed


def test_fidelity_runs_the_eight_node_patterns_at_the_rates_asked():
    names = [name for name, _, _ in fidelity.cases(False, 0.9564, rates=("25Mbit/s",))]
    assert [n for n in names if "@25M" in n] == [
        "fan-out 8 x 4 MB @25M", "all-to-all 8 x 1 MB @25M", "ring 8 x 4 MB @25M",
        "staggered 8, 40 x 2 MB @25M",
    ]  # fmt: skip
    assert not [n for n in names if "@100M" in n and not n.startswith("one")]
    _, _, network = fidelity.cases(True, 0.9564, acks="tcp")[0]
    assert network.resolve(["worker", "worker"]).acks == pytest.approx(66 / (1.75 * 1514))
    _, _, network = fidelity.cases(True, 0.9564, connections="pair")[0]
    assert network.resolve(["worker", "worker"]).connections == "pair"


@pytest.mark.parametrize("script", ["ps_steps", "ramp", "unfairness"])
def test_a_measuring_script_refuses_in_one_line_before_anything_runs(script):
    # why_not() stands in for this host's answer, so both lines show as root and not
    for why, value, words in [
        ("needs root", "cubic", f"{script}: cannot run: needs root\n"),
        (None, "nosuchtcp", f"{script}: --congestion nosuchtcp: TCP congestion control"),
    ]:
        code = (
            f"import sys; sys.argv[1:] = ['--congestion', {value!r}]\n"
            "sys.path[:0] = ['benchmarks']\n"
            f"from netsim.real import netns; netns.why_not = lambda: {why!r}\n"
            f"import {script}; sys.exit({script}.main())"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(words) and result.stderr.count("\n") == 1


def test_ramp_refuses_offsets_or_a_grid_that_are_not_seconds_in_one_line():
    result = subprocess.run(
        [sys.executable, "benchmarks/ramp.py", "--grid", "0,0.2,2s"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("ramp: --offsets") and result.stderr.count("\n") == 1


def test_fidelity_replays_kept_measurements_on_the_flags_network_without_root(tmp_path):
    """--replay DIR simulates what --keep DIR kept (here a measurement the simulation made
    itself, at goodput 1) on the network the flags give, with no namespaces: the same network
    gives +0.0%, half the goodput +100.0%."""
    from netsim import run
    from validation import harness

    name, pattern, network = next(
        c for c in fidelity.cases(False, 1.0) if c[0] == "one 1000 kB @100M"
    )
    out = tmp_path / "kept" / fidelity.folder(name) / "1" / "real"
    spec = harness.experiment(fidelity.folder(name), pattern, network)
    run(spec, out=out, progress=False, plot=False)
    errors = {}
    for goodput in ("1", "0.5"):
        result = subprocess.run(
            [sys.executable, "benchmarks/fidelity.py", "--replay", str(tmp_path / "kept"),
             "--only", "1000 kB @100M", "--goodput", goodput, "--plot", str(tmp_path / "s.png")],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        row = next(line for line in result.stdout.splitlines() if line.startswith(name))
        errors[goodput] = row.split()[-3]
    assert errors == {"1": "+0.0%", "0.5": "+100.0%"}
    for flags, words in [
        (["--replay", str(tmp_path / "none")], "holds no measurement of these patterns"),
        (["--keep", str(tmp_path / "kept")], "is not empty: give a new folder"),
    ]:
        result = subprocess.run(
            [sys.executable, "benchmarks/fidelity.py", *flags, "--only", "1000 kB @100M"],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
