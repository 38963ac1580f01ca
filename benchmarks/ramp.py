"""How much of a busy link a newly started TCP flow gets, and the Network(ramp=T) that
reproduces it.

Two senders at 1 Gbit/s send S bytes each into one receiver whose NIC is shaped to 300 Mbit/s
(htb, network namespaces: netsim/real/netns.py), the second starting d seconds after the first.
The second flow ends at 2 S / C whatever the sharing (the link never idles); what the sharing
decides is when the first one ends. Max-min splits the link evenly from d on, so the first ends
at 2 S / C - d. Measured, it ends earlier: the newcomer starts in slow start while the first
flow keeps its window, and takes a while to get its half. Under Network(ramp=T) a flow's
weight starts at 2^-RAMP_STEPS and doubles every T / RAMP_STEPS seconds, so that a young flow
gets less of a link than an older one; the simulation replays the measured send instants.

With --warm each sender first sends S once, about 1 s before its measured flow (node 1 at 0,
node 2 at 0.3 s, the pair from 1.3 s; for a flow that takes a time a alone at the NIC's rate
longer than 0.2 s, node 2 at a + 0.1 and the pair a + 0.8 later, so that the warm-ups are
through), as a parameter server's workers push every step: the connections are then warm
(their receive windows grown), and the newcomer gets its share sooner than on a new one.
With --compete the two warm-ups start WARM_LAG apart whatever their length and share the
link, as a parameter server's workers' pushes do, and the pair starts 0.8 s after both.

With --together SEEDS the simulation also weighs the two flows by Network(unfairness="tcp",
unfairness_among="together"): the second starts within T of the first, so they race, and each
run's simulated end is the mean over SEEDS draws (measured, which flow wins is chance too).

Prints, per offset, the first flow's measured end (mean and range of the repeats) against
max-min's and each T's on a grid, the mean absolute error per T, and the T with the least
(netsim.network.spec's TCP_RAMP holds the value measured for docs/fidelity.md).

    sudo .venv/bin/python benchmarks/ramp.py [--repeats R] [--offsets 0.01,0.05,...] [--mb S]
        [--rate 300Mbit/s] [--warm] [--compete] [--grid 0,0.1,0.2,...] [--out]
        [--together SEEDS]

With --out the two flows leave one sender instead (node 0, its uplink at --rate, to nodes 1
and 2): a parameter server's replies meet on its own uplink, where the queue is the sender's.

The real runs' TCP is Cubic unless --congestion says otherwise (cubic, bbr, reno, or host: the
host's own). Needs root and tc's htb; says so in one line otherwise. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import simpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim import Network  # noqa: E402
from netsim.network.fabric import Fabric  # noqa: E402
from netsim.network.message import Message  # noqa: E402
from netsim.real import netns  # noqa: E402
from netsim.units import parse_rate  # noqa: E402
from validation import harness, patterns  # noqa: E402

OFFSETS = (0.01, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.17)  # s
GRID = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)  # T, s
WARM_LAG, WARM_IDLE = 0.3, 1.0  # s: node 2's warm-up after node 1's, the pair after node 2's


def network(ramp: float = 0.0, rate: str = "300Mbit/s", together: bool = False) -> Network:
    """The pair's network; together: with Network(unfairness="tcp", unfairness_among=
    "together"), so that flows starting within T of each other split the link unevenly."""
    unfair = {"unfairness": "tcp", "unfairness_among": "together"} if together else {}
    return Network("1Gbit/s", goodput="tcp", nodes={0: {"bandwidth": rate}}, ramp=ramp, **unfair)


def flows(out: bool = False) -> tuple[tuple[int, int], tuple[int, int]]:
    """(src, dst) of the first flow and of the second: into node 0, or with out out of it."""
    return ((0, 1), (0, 2)) if out else ((1, 0), (2, 0))


def pair(
    size: int,
    offset: float,
    warm: bool = False,
    rate: str = "300Mbit/s",
    out=False,
    compete=False,
):
    """Node 1 sends node 0 size bytes at 0, node 2 the same at offset (out: node 0 sends them
    to 1 and 2); warm: both first send size bytes, the first at 0 and the second WARM_LAG
    later, and the pair starts WARM_IDLE after that (each stretched for a flow that takes
    longer than 0.2 s alone: the module's note). compete: the warm-ups WARM_LAG apart
    whatever their length, so that they share the link, and the pair once both are through."""
    alone = 8 * size / parse_rate(rate)
    lag = WARM_LAG if compete else max(WARM_LAG, alone + 0.1)
    through = 2 * alone if compete else alone
    start = lag + max(WARM_IDLE, through + 0.8) if warm or compete else 0.0
    first, second = flows(out)
    ups = ((0.0, *first, size), (lag, *second, size)) if warm or compete else ()
    return patterns.Transfers((*ups, (start, *first, size), (start + offset, *second, size)), 3)


def measured(
    size: int,
    offset: float,
    rate: str,
    warm: bool = False,
    congestion: str | None = netns.CONGESTION,
    out: bool = False,
    compete: bool = False,
) -> tuple[float, float, float]:
    """One real run: (the second flow's measured start, the first's end, the second's end),
    each in seconds after the first flow's start."""
    warm = warm or compete
    pattern = pair(size, offset, warm, rate, out, compete)
    result = harness.measure("ramp", pattern, network(rate=rate), congestion=congestion)
    first, second = ((*f, int(warm)) for f in flows(out))  # after the warm-ups
    start = result.real_sent[second] - result.real_sent[first]
    return start, result.real[first], start + result.real[second]


def simulated(
    size: int,
    start: float,
    ramp: float,
    rate: str = "300Mbit/s",
    out: bool = False,
    together: bool = False,
    seed: int = 0,
) -> tuple[float, float]:
    """The ends of the two flows, simulated, the second starting at start (before the first
    where start < 0, as a real sender can), in seconds after the first's start; together:
    under network()'s together, its weights drawn from the seed."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    fabric = Fabric(env, network(ramp, rate, together), ["worker"] * 3, rng, lambda m: 0)
    blob = torch.zeros(size, dtype=torch.uint8)
    msgs = [Message(*flow, "data", {"blob": blob}) for flow in flows(out)]
    first = max(0.0, -start)
    for msg, at in zip(msgs, (first, first + start), strict=True):
        env.timeout(at).callbacks.append(lambda _, msg=msg: fabric.transmit(msg))
    env.run()
    return msgs[0].t_arrive - first, msgs[1].t_arrive - first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="real runs per offset")
    parser.add_argument("--offsets", default=",".join(map(str, OFFSETS)), help="seconds")
    parser.add_argument("--mb", type=float, default=6.65, help="S in MB (default: McMahan's)")
    parser.add_argument("--rate", default="300Mbit/s", help="the receiver's NIC")
    parser.add_argument("--warm", action="store_true", help="each sender sends S 1 s before")
    parser.add_argument("--out", action="store_true", help="both flows out of node 0")
    parser.add_argument(
        "--compete", action="store_true", help="--warm, the warm-ups sharing the link"
    )
    parser.add_argument("--grid", default=",".join(map(str, GRID)), help="the T's fitted, s")
    parser.add_argument(
        "--together",
        type=int,
        default=0,
        metavar="SEEDS",
        help='simulate with unfairness="tcp" among flows that start together, each run '
        "averaged over SEEDS seeds",
    )
    harness.congestion_flag(parser)
    args = parser.parse_args()
    try:
        offsets = [float(x) for x in args.offsets.split(",")]
        grid = [float(x) for x in args.grid.split(",")]
    except ValueError:
        given = f"--offsets {args.offsets!r}, --grid {args.grid!r}"
        print(f"ramp: {given}: give seconds, comma-separated, e.g. 0.05,0.1", file=sys.stderr)
        return 2
    congestion = harness.real_runs("ramp", args.congestion)
    size = round(args.mb * 10**6)
    runs = {d: [] for d in offsets}
    for d in offsets:  # each run as it is measured: the second flow's start, each flow's end
        for _ in range(args.repeats):
            found = measured(size, d, args.rate, args.warm, congestion, args.out, args.compete)
            runs[d].append(found)
            print(f"offset {d} s: " + ", ".join(f"{t:.4f}" for t in runs[d][-1]), flush=True)
    errors = {ramp: [] for ramp in grid}
    print(
        f"{'offset':>8} {'start':>7} {'measured':>9} {'range':>11} "
        + " ".join(f"{f'T={t}':>8}" for t in grid)
    )
    for offset, rows in runs.items():
        start, first = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
        seeds = range(max(args.together, 1))
        together = args.together > 0
        ends = {
            t: np.mean(
                [
                    simulated(size, r[0], t, args.rate, args.out, together, seed)[0]
                    for r in rows
                    for seed in seeds
                ]
            )
            for t in grid
        }
        for t, end in ends.items():
            errors[t].append(end / first - 1)
        cells = " ".join(f"{end / first - 1:>+8.1%}" for end in ends.values())
        low, high = (f(r[1] for r in rows) * 1000 for f in (min, max))
        span = f"{low:.0f}-{high:.0f}ms"
        where = f"{offset * 1000:>6.0f}ms {start * 1000:>5.1f}ms {first * 1000:>7.1f}ms"
        print(f"{where} {span:>11} {cells}")
    mean = {t: float(np.mean(np.abs(e))) for t, e in errors.items()}
    print(f"{'mean |error|':>38} " + " ".join(f"{m:>8.1%}" for m in mean.values()))
    best = min(mean, key=mean.get)
    print(f"best T: {best} s (mean absolute error {mean[best]:.1%}; T=0 is max-min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
