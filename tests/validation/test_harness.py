"""The fidelity harness's own parts that need no namespaces: the replay of a real run's send
instants and the pairing of messages by (src, dst, k)."""

import csv

import pytest

from netsim import Network, run
from validation import errors, harness, patterns

MB = 10**6
FIELDS = ["src", "dst", "t_send", "t_arrive"]


def write(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(dict(zip(FIELDS, row, strict=True)) for row in rows)
    return path


def test_replay_takes_each_transfers_time_from_its_real_send(tmp_path):
    # two transfers 0 -> 1 and one 2 -> 1, all due at 0, sent for real 10-45 ms apart
    pattern = patterns.Transfers(((0.0, 0, 1, MB), (0.0, 0, 1, 2 * MB), (0.0, 2, 1, 3 * MB)), 3)
    real = write(
        tmp_path / "messages.csv",
        [(2, 1, 1.030, 2.0), (0, 1, 1.010, 2.0), (0, 1, 1.045, 2.0)],
    )
    replayed = harness.replay(pattern, real)
    assert replayed.nodes == 3
    assert [row[1:] for row in replayed.schedule] == [(0, 1, MB), (2, 1, 3 * MB), (0, 1, 2 * MB)]
    assert [row[0] for row in replayed.schedule] == pytest.approx([0.0, 0.020, 0.035])


def test_a_replayed_schedule_is_what_the_simulation_sends(tmp_path):
    """The simulation sends at the replayed instants: one transfer 25 ms after the other, on
    separate links, each ends 8 S / rate after its own start."""
    pattern = patterns.Transfers(((0.0, 0, 1, MB), (0.025, 2, 3, MB)), 4)
    network = Network("100Mbit/s")
    run(harness.experiment("r", pattern, network), out=tmp_path, progress=False, plot=False)
    times, last = harness.completions(tmp_path / "r" / "r" / "messages.csv")
    assert sorted(times) == [(0, 1, 0), (2, 3, 0)]
    assert times[0, 1, 0] == pytest.approx(times[2, 3, 0], rel=1e-9)
    assert last == pytest.approx(0.025 + times[2, 3, 0], rel=1e-9)
    assert times[0, 1, 0] == pytest.approx(8 * (MB + 100) / 100e6, rel=1e-3)


def test_cpu_shares_span_the_window_from_the_last_sample_before_to_the_first_after():
    """busy and stolen over [start, end] come from the samples that bracket it; (busy,
    stolen, total) are CPU seconds so far."""
    sampler = harness.CpuSampler()
    sampler.samples = [
        (10.0, (0.0, 0.0, 0.0)),
        (10.1, (0.1, 0.0, 0.2)),
        (10.2, (0.3, 0.1, 0.4)),
        (10.3, (0.3, 0.1, 0.6)),
    ]
    assert sampler.shares(10.15, 10.2) == pytest.approx((0.2 / 0.2, 0.1 / 0.2))  # 10.1-10.2
    assert sampler.shares(10.05, 10.25) == pytest.approx((0.3 / 0.6, 0.1 / 0.6))  # 10.0-10.3
    assert all(share != share for share in sampler.shares(9.0, 10.2))  # nan: none before


def test_cpu_sampler_reads_the_host_while_in_its_block():
    with harness.CpuSampler(every=0.005) as sampler:
        sum(range(10**7))  # keep a core busy for a while
    first, last = sampler.samples[0], sampler.samples[-1]
    assert len(sampler.samples) >= 2 and last[0] > first[0]
    busy, stolen = harness.cpu_shares(first[1], last[1])
    assert 0 < busy <= 1 and 0 <= stolen <= busy


def test_alike_transfers_share_their_instant_and_size_and_count_k_as_messages_do():
    # two 0 -> 1 at 0 (k by time order: the later is k = 1), one 2 -> 1 at 0 of another size
    pattern = patterns.Transfers(((0.5, 0, 1, MB), (0.0, 0, 1, MB), (0.0, 2, 1, 3 * MB)), 3)
    assert pattern.alike() == {(0, 1, 0): (0.0, MB), (0, 1, 1): (0.5, MB), (2, 1, 0): (0.0, 3 * MB)}
    assert set(patterns.fan_in(4, MB).alike().values()) == {(0.0, MB)}


def test_ranked_matches_the_kth_to_end_among_alike_transfers_and_others_with_themselves():
    # a fan-in of 3 whose real order is not the simulated one, and a lone later transfer that
    # ends first simulated and last measured: ranked with itself, not among the fan-in's
    pattern = patterns.Transfers(((0.0, 1, 0, MB), (0.0, 2, 0, MB), (0.0, 3, 0, MB)), 4)
    pattern = patterns.Transfers((*pattern.schedule, (1.0, 0, 1, MB)), 4)
    sim = {(1, 0, 0): 0.3, (2, 0, 0): 0.2, (3, 0, 0): 0.1, (0, 1, 0): 0.05}
    real = {(1, 0, 0): 0.11, (2, 0, 0): 0.33, (3, 0, 0): 0.22, (0, 1, 0): 0.4}
    result = harness.Result("r", sim, real, 1.5, 1.4)
    ranked = [(0.05, 0.4), (0.1, 0.11), (0.2, 0.22), (0.3, 0.33)]
    assert sorted(errors.ranked(result, pattern)) == ranked
    assert sorted(result.pairs()) == [(0.05, 0.4), (0.1, 0.22), (0.2, 0.33), (0.3, 0.11)]


def test_simulate_replays_a_kept_measurement_on_any_network(tmp_path):
    """A measurement kept under out/real is simulated again on the network given: here one
    made by the simulation itself, so the same network gives it back to the digit, and half
    the goodput (no latency) twice its time; out/sim is replaced each time."""
    pattern = patterns.fan_in(2, MB)
    make = lambda goodput: Network(
        "1Gbit/s", goodput=goodput, nodes={0: {"bandwidth": "100Mbit/s"}}
    )
    run(
        harness.experiment("f", pattern, make(1.0)),
        out=tmp_path / "real",
        progress=False,
        plot=False,
    )
    same = harness.simulate("f", pattern, make(1.0), tmp_path)
    assert same.sim == same.real and same.sim_last == same.real_last
    assert same.sim_last == pytest.approx(2 * 8 * (MB + 100) / 100e6, rel=1e-3)
    assert same.busy != same.busy  # no cpu.json: nan
    (tmp_path / "cpu.json").write_text('{"busy": 0.25, "stolen": 0.0}')
    half = harness.simulate("f", pattern, make(0.5), tmp_path)
    assert half.sim_last == pytest.approx(2 * same.real_last, rel=1e-9)
    assert (half.busy, half.stolen) == (0.25, 0.0)
    with pytest.raises(FileNotFoundError, match="holds no real run of 'g'"):
        harness.simulate("g", pattern, make(1.0), tmp_path)


def test_real_tcp_against_itself_compares_each_measurement_with_the_one_before():
    """Two measurements of a fan-in of 2 whose flows swapped places: paired, the second run
    is 100% and 50% off the first; by rank among alike messages it is the same run."""
    pattern = patterns.fan_in(2, MB)
    runs = [
        harness.Result("f", {}, {(1, 0, 0): 0.1, (2, 0, 0): 0.2}, 0.2, 0.2),
        harness.Result("f", {}, {(1, 0, 0): 0.2, (2, 0, 0): 0.1}, 0.2, 0.2),
        harness.Result("f", {}, {(1, 0, 0): 0.3, (2, 0, 0): 0.1}, 0.3, 0.3),
    ]
    paired, by_rank = errors.against_itself(runs, pattern)
    assert sorted(paired) == pytest.approx([0.0, 0.5, 0.5, 1.0])  # run 2 vs 1, run 3 vs 2
    assert sorted(by_rank) == pytest.approx([0.0, 0.0, 0.0, 0.5])
    assert [len(e) for e in errors.against_itself(runs[:1], pattern)] == [0, 0]
    assert errors.relative([(1.1, 1.0), (0.5, 1.0)]) == pytest.approx([0.1, 0.5])
