"""Speed of the network kernel alone: no model, no data, only Fabric on a SimPy clock.

Every message carries a realistic payload, a float32 tensor (20,000 floats, 80 kB, in the fifo
case; 2,000 to 40,000 in the max-min cases so that flows end at different times), and its wire
size is computed exactly as in a real run. NICs are 1 Gbit/s, latency 1 ms. The cases:

- fifo: 1,000 nodes each send a stream of messages to random peers (exponential gaps,
  staggered); rate = simulated messages per wall-second.
- maxmin random: 1,000 flows kept in flight among 1,000 nodes with random ends; each finished
  flow is replaced by a new one, so max-min sharing is recomputed at every start and finish;
  rate = flow start + finish events per wall-second.
- maxmin server: the same, but every flow goes into node 0's downlink (a parameter server):
  the worst case, one bottleneck shared by every flow in flight.
- the two max-min cases with Network(acks="tcp"): each reshare iterates max-min until the
  ACKs' loads settle, and the links back join flows into larger groups.

Before the cases the heap of imports (torch alone holds ~200,000 objects) is frozen out of
Python's garbage collector with gc.freeze(), as a long simulation should do after its setup:
otherwise every full collection rescans it, about a fifth of the fifo time. `--no-freeze`
measures without. The "gc" column is the share of the time spent collecting.

Seeds are fixed; each case runs `repeats` times and the best and median rates are printed.

    python benchmarks/network.py [--quick] [--repeats 3] [--no-freeze]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import simpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim.network import Network  # noqa: E402
from netsim.network.fabric import Fabric  # noqa: E402
from netsim.network.message import Message  # noqa: E402

NETWORK = {"bandwidth": "1Gbit/s", "latency": "1ms"}


def fifo(nodes: int, messages: int, seed: int = 0) -> tuple[simpy.Environment, list[int]]:
    """Each node sends messages // nodes messages; the clock and a count of those done."""
    env, rng = simpy.Environment(), np.random.default_rng(seed)
    x = torch.zeros(20_000)
    done = [0]
    fabric = Fabric(
        env,
        Network(**NETWORK, sharing="fifo"),
        ["worker"] * nodes,
        np.random.default_rng(seed),
        lambda msg: done.__setitem__(0, done[0] + 1),
    )
    per_node = messages // nodes
    # Each node sends to random peers other than itself, with exponential gaps of mean 2 ms:
    # links 32% busy, below the 59% at which a sender held up by one busy receiver (fifo's
    # head-of-line blocking) makes queues grow without end. Times are rounded to 10 us, so
    # that one driver event sends all the messages due at once and costs little.
    peers = (np.arange(nodes)[:, None] + rng.integers(1, nodes, (nodes, per_node))) % nodes
    times = np.round(np.cumsum(rng.exponential(2e-3, (nodes, per_node)), axis=1), 5).ravel()
    order = np.argsort(times, kind="stable")
    firsts = np.flatnonzero(np.diff(times[order], prepend=-1.0))
    due = [
        tuple((i // per_node, int(peers.flat[i]), i % per_node) for i in batch.tolist())
        for batch in np.split(order, firsts[1:])
    ]
    gaps = np.diff(times[order][firsts], prepend=0.0).tolist()

    def send(event: simpy.Timeout):
        batch = event.value
        for src, dst, k in due[batch]:
            fabric.transmit(Message(src, dst, "model", {"x": x, "step": k}))
        if batch + 1 < len(due):
            env.timeout(gaps[batch + 1], batch + 1).callbacks.append(send)

    env.timeout(gaps[0], 0).callbacks.append(send)
    return env, done


def maxmin(nodes: int, flows: int, total: int, server: bool, seed: int = 0, acks=0.0):
    """Keep `flows` flows in flight until `total` have ended; the clock and a count of flow
    starts and ends. server: every flow goes from a worker into node 0; else random ends."""
    env, rng = simpy.Environment(), np.random.default_rng(seed)
    tensors = [torch.zeros(int(n)) for n in np.geomspace(2_000, 40_000, 64)]
    src = rng.integers(1 if server else 0, nodes, total)
    dst = np.zeros(total, dtype=int) if server else (src + rng.integers(1, nodes, total)) % nodes
    size = rng.integers(0, len(tensors), total).tolist()
    src, dst = src.tolist(), dst.tolist()
    started, events = [0], [0]

    def start():
        k = started[0]
        started[0] += 1
        fabric.transmit(Message(src[k], dst[k], "model", {"x": tensors[size[k]]}))

    def replace(_msg):
        events[0] += 2  # its start and its end
        if started[0] < total:
            start()

    network = Network(**NETWORK, sharing="maxmin", acks=acks)
    fabric = Fabric(env, network, ["worker"] * nodes, np.random.default_rng(seed), replace)
    for _ in range(flows):
        start()
    return env, events


def timed(env: simpy.Environment) -> tuple[float, float]:
    """Run env to its end; the wall seconds it took, and those spent collecting garbage."""
    collecting, started = [0.0], [0.0]

    def clock(phase: str, _info: dict):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - started[0]

    gc.callbacks.append(clock)
    begin = time.perf_counter()
    env.run()
    wall = time.perf_counter() - begin
    gc.callbacks.remove(clock)
    return wall, collecting[0]


def python_speed(n: int = 2_000_000) -> float:
    """Iterations per second of the plainest Python loop, best of three: a yardstick for
    comparing these rates across machines, since the kernel's cost is Python's."""
    best = math.inf
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - started)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and flows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-freeze", action="store_true", help="leave the import heap in gc")
    args = parser.parse_args()
    messages, total = (20_000, 3_000) if args.quick else (200_000, 20_000)
    cases = [
        ("fifo", "messages", 100_000, lambda: fifo(1_000, messages)),
        ("maxmin random", "events", 10_000, lambda: maxmin(1_000, 1_000, total, server=False)),
        ("maxmin server", "events", 10_000, lambda: maxmin(1_001, 1_000, total, server=True)),
        (
            "maxmin random, acks",
            "events",
            1_000,
            lambda: maxmin(1_000, 1_000, total, server=False, acks="tcp"),
        ),
        (
            "maxmin server, acks",
            "events",
            1_000,
            lambda: maxmin(1_001, 1_000, total, server=True, acks="tcp"),
        ),
    ]
    if not args.no_freeze:
        gc.collect()
        gc.freeze()
    print(
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, Python "
        f"{platform.python_version()}, simpy {simpy.__version__}, numpy {np.__version__}, "
        f"gc.freeze() {'no' if args.no_freeze else 'yes'}; best and median of {args.repeats}"
    )
    print(
        f"this interpreter's speed: {python_speed() / 1e6:.1f} M loop iterations/s "
        "(`for i in range(n): s += i`; it varies over time on shared machines, and a rate "
        "here scales with it)"
    )
    print(f"fifo: 1,000 nodes, {messages:,} messages of 80 kB")
    print(f"maxmin: 1,000 flows in flight, {total:,} flows of 8-160 kB")
    header = ("case", "count", "wall s", "gc", "best /s", "median /s", "target /s", "")
    rows = []
    for name, unit, target, case in cases:
        runs = []
        for _ in range(args.repeats):
            env, count = case()
            runs.append((count, *timed(env)))
        rates = [count[0] / wall for count, wall, _ in runs]
        wall, collecting = min((wall, collecting) for _, wall, collecting in runs)
        rows.append(
            (
                name,
                f"{runs[0][0][0]:,} {unit}",
                f"{wall:.2f}",
                f"{collecting / wall:.0%}",
                f"{max(rates):,.0f}",
                f"{statistics.median(rates):,.0f}",
                f"{target:,}",
                "pass" if statistics.median(rates) >= target else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = zip(row, widths, strict=True)
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)))


if __name__ == "__main__":
    main()
