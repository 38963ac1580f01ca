"""netsim against a plain per-node PyTorch loop doing the same D-PSGD steps, side by side.

Each side of each case runs in a fresh process (so peak memory is its own); the data set is
loaded before either side's clock starts. netsim's time is its whole `netsim.run` call: set-up,
calibration, the simulated network, mixing, recording and its default evaluation. The plain
loop is described in harness.py. Targets (issue 5, 2 CPU cores):

- cnn16: McMahan CNN, 16 nodes, D-PSGD: netsim at most 1.10 x the plain loop's time;
- mlp64 / mlp256: the 784-200-10 MLP, 64 nodes at batch 32 and 256 nodes at batch 16: netsim
  at least 1.5 x faster than the plain loop.

    python benchmarks/training.py [--quick] [--cases cnn16,mlp64,mlp256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics

from harness import Case, fresh, machine

CASES = {
    "cnn16": Case("cnn16", "mcmahan_cnn", 16, 32, rounds=20, local_steps=5),
    "mlp64": Case("mlp64", "mlp1", 64, 32, rounds=20, local_steps=5),
    "mlp256": Case("mlp256", "mlp1", 256, 16, rounds=10, local_steps=5),
}
QUICK = {"cnn16": 4, "mlp64": 6, "mlp256": 4}  # rounds with --quick
TARGET = {"cnn16": ("<=", 1.10), "mlp64": (">=", 1.5), "mlp256": (">=", 1.5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the sides N times")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--execution", default="auto", help="netsim's execution setting")
    args = parser.parse_args()
    print(machine())
    header = f"{'case':8} {'steps':>7} {'plain s':>8} {'netsim s':>9} {'speed-up':>9}  target"
    rows = []
    for name in args.cases.split(","):
        case = CASES[name]
        if args.quick:
            case = Case(**(case.__dict__ | {"rounds": QUICK[name]}))
        plain, ours = [], []
        for _ in range(args.repeats):
            plain.append(fresh("plain", case, args.device))
            ours.append(fresh("netsim", case, args.device, args.execution))
        p = statistics.median(r["wall_time_s"] for r in plain)
        n = statistics.median(r["wall_time_s"] for r in ours)
        sign, bound = TARGET[name]
        value = n / p if sign == "<=" else p / n
        met = value <= bound if sign == "<=" else value >= bound
        what = "netsim/plain" if sign == "<=" else "plain/netsim"
        rows.append(
            f"{name:8} {case.steps * case.nodes:>7} {p:8.2f} {n:9.2f} {p / n:8.2f}x  "
            f"{what} {value:.2f} {sign} {bound} {'met' if met else 'NOT met'}; "
            f"netsim {ours[0]['execution']}, {ours[0]['peak_rss_mb']:.0f} MB vs "
            f"{plain[0]['peak_rss_mb']:.0f} MB; accuracy {ours[0]['final_accuracy']:.3f} vs "
            f"{plain[0]['final_accuracy']:.3f}"
        )
        print(rows[-1] if len(rows) > 1 else f"{header}\n{rows[-1]}", flush=True)


if __name__ == "__main__":
    main()
