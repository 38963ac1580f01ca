"""How unevenly real TCP flows share one bottleneck, and the Network(unfairness=sigma) that
reproduces it.

n senders at 1 Gbit/s send S bytes each at once into one receiver whose NIC is shaped to
300 Mbit/s (htb, network namespaces: netsim/real/netns.py). Max-min sharing ends every flow
at the same instant, n S / C; measured, some flows finish far earlier and the last one at
that instant (the link never idles). Each run's completion times, sorted and divided by
n S / C, are the order statistics; their means over the repetitions are compared with the
simulation's under weighted max-min, each flow weighted exp(N(0, sigma^2)), for sigma on a
grid, and the sigma with the least squared difference is printed (netsim.network.spec's
TCP_UNFAIRNESS holds the value measured for docs/fidelity.md).

    sudo .venv/bin/python benchmarks/unfairness.py [--repeats R] [--fan-ins 2,4,8]

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
from validation import harness, patterns  # noqa: E402

SIZE = 6_650_000  # bytes: the McMahan CNN's model, as in ps_vs_p2p
GRID = np.round(np.arange(0.0, 1.51, 0.05), 2)


def network(sigma: float = 0.0) -> Network:
    return Network(
        "1Gbit/s", goodput="tcp", nodes={0: {"bandwidth": "300Mbit/s"}}, unfairness=sigma
    )


def measured(n: int, repeats: int, congestion: str | None = netns.CONGESTION) -> np.ndarray:
    """(repeats, n): each real run's sorted completion times over max-min's common end."""
    rows = []
    for _ in range(repeats):
        pattern = patterns.fan_in(n, SIZE)
        result = harness.measure(f"fan_in_{n}", pattern, network(), congestion=congestion)
        rows.append(np.sort(list(result.real.values())) / max(result.sim.values()))
    return np.array(rows)


def simulated(n: int, sigma: float, seeds: int) -> np.ndarray:
    """(seeds, n): the same, simulated with unfairness sigma (one fabric per seed)."""
    rows = []
    for seed in range(seeds):
        env = simpy.Environment()
        done: list[Message] = []
        fabric = Fabric(
            env, network(sigma), ["worker"] * (n + 1), np.random.default_rng(seed), done.append
        )
        blob = torch.zeros(SIZE, dtype=torch.uint8)
        for src in range(1, n + 1):
            fabric.transmit(Message(src, 0, "data", {"blob": blob}))
        env.run()
        rows.append(sorted(m.t_arrive - m.t_send for m in done))
    rows = np.array(rows)
    return rows / rows.max()  # the common end of max-min: the last finisher's, at any sigma


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="real runs per fan-in")
    parser.add_argument("--fan-ins", default="2,4,8", help="numbers of senders")
    parser.add_argument("--seeds", type=int, default=400, help="simulated runs per sigma")
    harness.congestion_flag(parser)
    args = parser.parse_args()
    congestion = harness.real_runs("unfairness", args.congestion)
    fan_ins = [int(n) for n in args.fan_ins.split(",")]
    real = {n: measured(n, args.repeats, congestion) for n in fan_ins}
    for n, rows in real.items():
        print(f"fan-in {n}: measured order statistics / max-min's end, mean over {len(rows)} runs:")
        print("   " + " ".join(f"{v:.3f}" for v in rows.mean(axis=0)))
        print("   spread (sd): " + " ".join(f"{v:.3f}" for v in rows.std(axis=0)))
    errors = []
    for sigma in GRID:
        sims = {n: simulated(n, sigma, args.seeds).mean(axis=0) for n in fan_ins}
        errors.append(sum(((sims[n] - real[n].mean(axis=0)) ** 2).sum() for n in fan_ins))
        print(
            f"sigma {sigma:.2f}: squared error {errors[-1]:.4f}; "
            + "; ".join(" ".join(f"{v:.3f}" for v in sims[n]) for n in fan_ins)
        )
    best = GRID[int(np.argmin(errors))]
    print(f"best sigma: {best:.2f} (least squared difference of the mean order statistics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
