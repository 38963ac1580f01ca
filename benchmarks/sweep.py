"""A 4-run sweep in the local process pool against the same runs one after another.

The runs: GoSGD on six agents from experiments/gossip_fmnist.py (run gosgd_iid) with four
seeds, `steps` steps each. "In sequence" is `--jobs 1` (every run in this process, torch on
every core, as a plain run); "pool" is the default, one worker per core, each computing with
its share of the cores' threads. A third line runs the sequence on one thread, the pool's
workers' count on 2 cores: the pool's gain from running runs side by side alone, apart from
what a thread count costs (torch's threads spin while they wait, and lose much on a machine
whose cores other processes also use). Each repeat writes into a fresh folder, so no run is
skipped as done; repeats alternate the three so that drifting machine load hits them alike.
The ratios of the medians are printed: how many times faster the pool finishes the sweep.

Other processes on the machine take cores from the pool, so the script first measures what
the machine gives: a pure-Python loop in one process against one loop per core side by side.
On an idle 2-core machine that is 2x; the pool cannot beat it.

    python benchmarks/sweep.py [--steps 300] [--repeats 1] [--set model=logistic ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from netsim import data, sweep  # noqa: E402
from netsim.__main__ import load  # noqa: E402
from netsim.executor import cores  # noqa: E402

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "gossip_fmnist.py"
SEEDS = 4


def _loop(_=None) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def capacity() -> float:
    """How many times one process's work the machine does in one process's time, with one
    busy process per core side by side."""
    alone = _loop()
    with multiprocessing.get_context("spawn").Pool(cores()) as pool:
        pool.map(_loop, range(cores()))  # started, so that the timing leaves out the starts
        started = time.perf_counter()
        pool.map(_loop, range(cores()))
        side_by_side = time.perf_counter() - started
    return cores() * alone / side_by_side


def timed(steps: int, jobs: int | None, threads: int | None = None, sets=()) -> float:
    experiment = load(str(EXPERIMENT))
    experiment.override([f"steps={steps}", "device='cpu'", *sets])
    if not data.available("fashion_mnist"):
        experiment.override(["data='synthetic_fmnist'"])
    experiment.select(["gosgd_iid"])
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            sweep(experiment, seeds=SEEDS, out=out, jobs=jobs, progress=False, plot=False)
            return time.perf_counter() - started
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a setting of the runs, as python -m netsim takes it: model=logistic",
    )  # fmt: skip
    args = parser.parse_args()
    ways = {
        f"in sequence ({torch.get_num_threads()} threads)": {"jobs": 1},
        "in sequence (1 thread)": {"jobs": 1, "threads": 1},
        "pool": {"jobs": None},
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    gives = [capacity()]
    for _ in range(args.repeats):
        for way, kwargs in ways.items():
            times[way].append(timed(args.steps, **kwargs, sets=args.set))
    gives.append(capacity())
    settings = "".join(f", {setting}" for setting in args.set)
    print(f"{SEEDS} runs of gosgd_iid, {args.steps} steps each{settings}, {cores()} cores")
    print(
        f"  the machine does {gives[0]:.2f}x (before) and {gives[1]:.2f}x (after) one "
        f"process's work with {cores()} side by side: the most the pool can gain"
    )
    for way, seconds in times.items():
        shown = ", ".join(f"{s:.1f}" for s in seconds)
        print(f"  {way:<26} median {statistics.median(seconds):6.1f} s   ({shown})")
    pool = statistics.median(times["pool"])
    for way in list(ways)[:2]:
        ratio = statistics.median(times[way]) / pool
        print(f"the pool is {ratio:.2f}x faster than the same runs {way}")


if __name__ == "__main__":  # the pool's workers import this file again: run once
    main()
