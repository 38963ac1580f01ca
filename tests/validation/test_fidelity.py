"""The simulated clock against real TCP on the small cases: one transfer and a fan-in of 4.

Skipped, with the reason, where network namespaces or htb cannot be made (not root, no
iproute2). The real runs' TCP is Cubic, set in each namespace (netns.CONGESTION), whatever the
host's is. The simulation uses TCP's goodput (Network(goodput="tcp")). Both cases must agree
within the 3% the fidelity work aims at: under Cubic the single transfer came within 0.1-0.3%
and the fan-in within 0.0-0.4% in two runs each on the 2-core VM (docs/fidelity.md).

A real run on a shared machine is only ever slowed down: a CPU taken by another job (or by the
hypervisor: steal time) delays the senders, the receivers and the bucket's timer, and shows up as
network time (docs/fidelity.md). So each case is measured up to five times and passes on the
first measurement within its bound; a failure lists every measurement with the shares of the
CPU that were busy and stolen while it moved data. Where every try that missed had over 10% of
the CPU stolen by the hypervisor, the test skips with those figures: CI's machine once had
26-39% stolen in all five tries of the single transfer (-5.8% to -16.9%). A model that is
wrong fails all five on a quiet host (on a noisy VM, 2 of 8 single transfers fell outside 3%,
at -7.7% and -11.8%).
"""

import json
from pathlib import Path

import pytest

from netsim import Network
from netsim.real import netns
from validation import harness, patterns

MB = 10**6
WHY = netns.why_not()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"fidelity needs namespaces: {WHY}")


TRIES = 5
QUIET = 0.10  # share of the CPU stolen above which a try measured the host, not the network


def agrees(name, pattern, network, tmp_path, rel) -> harness.Result:
    """The first of up to TRIES measurements whose last finisher agrees within rel. When every
    measurement that missed ran with over QUIET of the host's CPU stolen by the hypervisor,
    the host could not measure the network, and the test skips, saying so."""
    seen, noisy = [], 0
    for attempt in range(TRIES):
        result = harness.measure(name, pattern, network, tmp_path / str(attempt))
        if result.sim_last == pytest.approx(result.real_last, rel=rel):
            return result
        error = result.sim_last / result.real_last - 1
        noisy += result.stolen > QUIET
        seen.append(
            f"sim {result.sim_last:.4f} s, real {result.real_last:.4f} s ({error:+.1%}), "
            f"CPU {result.busy:.0%} busy, {result.stolen:.0%} stolen"
        )
    if noisy == TRIES:
        pytest.skip(f"{name}: the hypervisor took over {QUIET:.0%} of the CPU in every try: "
                    + "; ".join(seen))  # fmt: skip
    pytest.fail(f"{name}: no measurement within {rel:.0%}: " + "; ".join(seen))


def test_one_transfer_of_4_mb_at_100_mbit_s(tmp_path):
    network = Network("100Mbit/s", goodput="tcp")
    agrees("one", patterns.one(4 * MB), network, tmp_path, rel=0.03)
    # each node process read its namespace's TCP, which the test hosts set, into config.json
    for config in tmp_path.glob("*/real/one/one/config.json"):
        assert json.loads(config.read_text())["tcp"] == [netns.CONGESTION] * 2


def test_fan_in_of_4_into_a_300_mbit_s_receiver(tmp_path):
    network = Network("1Gbit/s", goodput="tcp", nodes={0: {"bandwidth": "300Mbit/s"}})
    result = agrees("fan_in", patterns.fan_in(4, 4 * MB), network, tmp_path, rel=0.03)
    assert len(result.real) == 4 and all(key in result.sim for key in result.real)


@pytest.mark.slow  # eight node processes, each importing torch: about a minute a try
def test_ring_of_8_at_25_mbit_s_with_acks(tmp_path):
    """Every node sends 4 MB to the next while it receives 4 MB: its uplink also carries the
    ACKs of the flow coming in. At 25 Mbit/s the two cores keep up (CPU about half busy), and
    under Cubic acks="tcp" brings the ring from -2.5% to -0.1% of measured (docs/fidelity.md)."""
    network = Network("25Mbit/s", goodput="tcp", acks="tcp")
    result = agrees("ring", patterns.ring(8, 4 * MB), network, tmp_path, rel=0.03)
    assert len(result.real) == 8


@pytest.mark.slow  # eight node processes, each importing torch: about a minute a try
def test_all_to_all_of_8_at_25_mbit_s_with_acks(tmp_path):
    """Every node sends 1 MB to each of the 7 others: each flow crosses two shared queues.
    Under Cubic it ends within 0.3% of max-min with the ACKs (BBR's was 10% later than
    Cubic's, which this test would catch if the namespaces took the host's BBR again)."""
    network = Network("25Mbit/s", goodput="tcp", acks="tcp")
    result = agrees("a2a", patterns.all_to_all(8, MB), network, tmp_path, rel=0.03)
    assert len(result.real) == 56


def test_the_served_pattern_runs_for_real_closed_loop(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import served

    pattern = patterns.Served(2, MB, 3)
    run_dir = served.measure(pattern, 0, tmp_path, netns.CONGESTION)
    steps = served.steps(run_dir)  # each at least its emulated compute and two transfers
    assert steps.shape == (2, 2) and (steps > 0.58 * 0.9 + 2 * 8 * MB / 300e6).all()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["runtime"] == "real" and config["tcp"] == ["cubic"] * 3


def test_the_pulled_pattern_runs_for_real_with_its_timeout(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import served

    pattern = patterns.Pulled(3, MB, 4)
    run_dir = served.measure(pattern, 0, tmp_path, netns.CONGESTION)
    steps = served.steps(run_dir)  # each its emulated compute and at most the 1 s timeout
    assert steps.shape == (3, 3) and (steps > 0.58 * 0.9).all() and (steps < 0.58 * 1.1 + 1.2).all()
    rows = served.read_csv(run_dir / "messages.csv", text=("kind", "reason"))
    assert (rows["kind"] == "pull").sum() == 12 and (rows["src"] != rows["dst"]).all()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["runtime"] == "real" and config["tcp"] == ["cubic"] * 3


def test_a_failed_measurement_is_retried_and_reported(tmp_path, monkeypatch):
    """Always slower than simulated: TRIES tries, then one line naming each of them."""
    calls = []

    def measure(name, pattern, network, out):
        calls.append(out)
        return harness.Result(name, {}, {}, sim_last=1.0, real_last=1.5)

    monkeypatch.setattr(harness, "measure", measure)
    with pytest.raises(pytest.fail.Exception, match=r"one: no measurement within 3%: sim 1\.0000"):
        agrees("one", patterns.one(MB), Network("100Mbit/s"), tmp_path, rel=0.03)
    assert len(calls) == TRIES and len(set(calls)) == TRIES


def test_tries_on_a_host_whose_cpu_was_stolen_skip_and_say_so(tmp_path, monkeypatch):
    """Every try missed with 30% of the CPU stolen: a skip that names them, not a pass."""

    def measure(name, pattern, network, out):
        return harness.Result(name, {}, {}, sim_last=1.0, real_last=1.2, busy=0.5, stolen=0.3)

    monkeypatch.setattr(harness, "measure", measure)
    with pytest.raises(pytest.skip.Exception, match=r"over 10% of the CPU in every try: sim"):
        agrees("one", patterns.one(MB), Network("100Mbit/s"), tmp_path, rel=0.03)
    quiet_once = iter([0.3, 0.3, 0.02, 0.3, 0.3])  # one quiet try that missed: a failure
    monkeypatch.setattr(
        harness,
        "measure",
        lambda *a: harness.Result("one", {}, {}, 1.0, 1.2, busy=0.5, stolen=next(quiet_once)),
    )
    with pytest.raises(pytest.fail.Exception, match=r"no measurement within 3%"):
        agrees("one", patterns.one(MB), Network("100Mbit/s"), tmp_path, rel=0.03)


def test_namespaces_are_torn_down_even_when_the_run_fails(tmp_path):
    import subprocess

    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    spaces = netns.Namespaces(["worker"] * 2, Network("100Mbit/s"))
    with pytest.raises(RuntimeError, match="boom"), spaces:
        raise RuntimeError("boom")
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert after == before


def test_namespaces_are_torn_down_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from netsim import Network\n"
        "from netsim.real import netns\n"
        "with netns.Namespaces(['worker'] * 2, Network('100Mbit/s'), prefix='nstermx') as a:\n"
        "    print('up', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    listed = lambda: subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "nstermx0" in listed()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert "nstermx" not in listed()


def test_a_second_set_of_namespaces_at_once_is_refused_in_one_line():
    import subprocess

    with netns.Namespaces(["worker"] * 2, Network("100Mbit/s"), prefix="nsonex"):
        second = netns.Namespaces(["worker"] * 2, Network("100Mbit/s"), prefix="nstwox")
        with pytest.raises(netns.NamespaceError, match="another set of test namespaces is up"):
            with second:
                pass
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "nstwox" not in listed and "nsonex0" in listed  # the first one untouched


def test_each_namespace_gets_the_congestion_control_asked_not_the_hosts():
    offered = netns.congestion_controls()
    assert "cubic" in offered and "reno" in offered, offered  # built into every Linux kernel
    host = netns.congestion_in("")
    other = "reno" if host != "reno" else "cubic"
    with netns.Namespaces(["worker"] * 2, Network("100Mbit/s"), prefix="nsccx", congestion=other):
        assert [netns.congestion_in(f"nsccx{i}") for i in range(2)] == [other, other]
    with netns.Namespaces(["worker"] * 2, Network("100Mbit/s"), prefix="nsccx", congestion=None):
        assert [netns.congestion_in(f"nsccx{i}") for i in range(2)] == [host, host]
    assert netns.congestion_in("") == host  # the host's own untouched
    assert netns.CONGESTION == "cubic"


def test_a_congestion_control_the_host_does_not_allow_in_namespaces_is_allowed_while_they_live():
    # some kernels offer cubic but do not allow it outside the root namespace
    path = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
    original = path.read_text().strip()
    if netns.congestion_in("") == "reno":
        pytest.skip("the host's own congestion control is reno: always allowed")
    narrowed = " ".join(name for name in original.split() if name != "reno")
    try:
        path.write_text(narrowed)
        with netns.Namespaces(["worker"], Network("100Mbit/s"), prefix="nsalx", congestion="reno"):
            assert netns.congestion_in("nsalx0") == "reno"
            assert "reno" in path.read_text().split()
        assert path.read_text().split() == narrowed.split()  # as it was before
    finally:
        path.write_text(original)


def test_a_congestion_control_the_kernel_lacks_is_refused_in_one_line_before_anything_is_made():
    import subprocess

    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    with pytest.raises(netns.NamespaceError) as caught:
        netns.Namespaces(["worker"] * 2, Network("100Mbit/s"), congestion="nosuchtcp")
    message = str(caught.value)
    assert "\n" not in message and "'nosuchtcp'" in message and "cubic" in message
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == before
