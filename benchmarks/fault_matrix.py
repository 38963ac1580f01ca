"""The fault matrix: every algorithm (SGD aside: it has no network) without faults and under a
crash, a crash and restart, a cut link, a 50% loss burst, a partition that heals and churn.

Eight workers (a server too for the parameter servers and FedAvg), logistic regression on
Fashion-MNIST (its synthetic stand-in when the files are absent), 200 steps of 50 ms, faults
between 2 s and 6 s: worker 1 crashes at 2 s for good, or for 3 s and back from x0; the link
0-1 is down; every message is lost with p = 0.5; workers {0..3} are cut from {4..7}; churn
keeps each worker offline 20% of the time in sessions of 2 s on average. Every algorithm that
waits does so for at most 0.25 s (FedAvg's server: 30 s a round). Prints a markdown table of
the final test accuracy of each, with the messages dropped and why (docs/results.md); the
CI runs the same matrix at a tiny scale (tests/netsim/algorithms/test_fault_matrix.py).

    python benchmarks/fault_matrix.py [--out /tmp/fault_matrix]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim import Compute, Experiment, Network, Run, run  # noqa: E402
from netsim.algorithms import (  # noqa: E402
    ADPSGD,
    DPSGD,
    RWM,
    SGP,
    AllReduceSGD,
    AsyncPS,
    FedAvg,
    GoSGD,
    P2PPull,
    SyncPS,
)
from netsim.faults import Churn, Crash, LinkDown, LossBurst, Partition  # noqa: E402

WAIT = "0.25s"
ALGORITHMS = {
    "SyncPS": (SyncPS(timeout=WAIT), {}),
    "AsyncPS": (AsyncPS(timeout=WAIT), {"momentum": 0.0}),
    "AllReduceSGD": (AllReduceSGD(timeout=WAIT), {}),
    "P2PPull": (P2PPull(timeout=WAIT), {}),
    "GoSGD": (GoSGD(p=0.5), {}),
    "SGP": (SGP(timeout=WAIT), {}),
    "DPSGD": (DPSGD(timeout=WAIT), {}),
    "ADPSGD": (ADPSGD(timeout=WAIT), {}),
    "RWM": (RWM(timeout=WAIT), {}),
    "FedAvg": (FedAvg(rounds=4, C=0.5, E=1, timeout="30s"), {"steps": None, "momentum": 0.0}),
}
FAULTS = {
    "none": [],
    "crash": [Crash(1, at="2s")],
    "crash+restart": [Crash(1, at="2s", restart="3s", state="reset")],
    "link down": [LinkDown(0, 1, at="2s", until="6s")],
    "50% loss burst": [LossBurst(0.5, at="2s", until="6s")],
    "partition, heal": [Partition([[0, 1, 2, 3]], at="2s", until="6s")],
    "churn 20%": [Churn(fraction=0.2, session="2s")],
}


def experiment() -> Experiment:
    return Experiment(
        name="fault_matrix",
        data="fashion_mnist",
        model="logistic",
        batch=32,
        lr=0.05,
        momentum=0.9,
        workers=8,
        topology="k_regular",
        degree=4,
        steps=200,
        eval_every="2s",
        network=Network(bandwidth="100Mbit/s", latency="5ms"),
        compute=Compute(step_time="50ms", jitter=0.05),
        seed=0,
        runs=[
            Run(f"{name}_{k}", algorithm, faults=faults, **extra)
            for name, (algorithm, extra) in ALGORITHMS.items()
            for k, faults in enumerate(FAULTS.values())
        ],
    )


def drops(folder: Path) -> Counter:
    with open(folder / "messages.csv", newline="") as handle:
        return Counter(r["reason"] for r in csv.DictReader(handle) if r["dropped"] == "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/fault_matrix")
    args = parser.parse_args()
    summaries = run(experiment(), out=args.out, progress=False, plot=False)
    print("| algorithm | " + " | ".join(FAULTS) + " |")
    print("| --- |" + " ---: |" * len(FAULTS))
    for name in ALGORITHMS:
        cells = []
        for k in range(len(FAULTS)):
            summary = summaries[f"{name}_{k}"]
            why = drops(Path(args.out) / "fault_matrix" / f"{name}_{k}")
            why.pop("in flight", None)
            lost = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
            cells.append(f"{100 * summary['final_accuracy']:.2f}" + (f" ({lost})" if lost else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
