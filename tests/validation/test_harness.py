"""The fidelity harness's own parts that need no namespaces: the replay of a real run's send
instants and the pairing of messages by (src, dst, k)."""

import csv

import pytest

from netsim import Network, run
from validation import harness, patterns

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
