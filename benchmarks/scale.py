"""Scale on one machine: the 16-node reference case, 1,024 nodes, 10,000 nodes.

Each case runs in a fresh process; `process s` is that process's whole life (interpreter,
imports, data loading, the run, the final evaluation), `peak MB` its peak resident memory.

- reference16: the case a one-process-per-node emulator over real TCP took 31-35 s and about
  7 GB for on these 2 cores (16 processes of about 420 MB): 16 nodes, 4-regular graph, D-PSGD,
  30 rounds of 5 local steps at batch 16 on a small CNN. Target: at most 8 s and 1 GB, and the
  bytes each node sends exactly 4 x rounds x the size of one model message.
- ring1024: 1,024 nodes on a ring, D-PSGD, the 784-200-10 MLP, 10 rounds. Target: at most
  60 s and 4 GB.
- gossip10k: 10,000 nodes of logistic regression, GoSGD (p = 0.1) on a 4-regular graph, 20
  steps each with jittered step times. Target: it completes; the time is reported.

    python benchmarks/scale.py [--cases reference16,ring1024,gossip10k] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import torch
from harness import Case, fresh, machine

from netsim.network.message import Message

CASES = {
    "reference16": Case("reference16", "small_cnn", 16, 16, rounds=30, local_steps=5),
    "ring1024": Case("ring1024", "mlp1", 1024, 16, rounds=10, topology="ring"),
    "gossip10k": Case(
        "gossip10k", "logistic", 10_000, 16, rounds=20, algorithm="gosgd", jitter=0.1
    ),
}
TARGET = {"reference16": (8.0, 1024), "ring1024": (60.0, 4096), "gossip10k": (None, None)}


def model_message_bytes(parameters: int) -> int:
    """Bytes on the wire of one D-PSGD model message (degree, round, the flat model)."""
    return Message(0, 1, "model", {"degree": 4, "k": 0, "x": torch.zeros(parameters)}).size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(machine())
    print(f"{'case':12} {'nodes':>6} {'steps':>9} {'process s':>10} {'peak MB':>8}  target")
    for name in args.cases.split(","):
        case = CASES[name]
        result = fresh("netsim", case, args.device)
        seconds, peak = result["process_s"], result["peak_rss_mb"]
        limit_s, limit_mb = TARGET[name]
        verdict = "completed"
        if limit_s is not None:
            met = seconds <= limit_s and peak <= limit_mb
            verdict = f"<= {limit_s:.0f} s and {limit_mb} MB: {'met' if met else 'NOT met'}"
        print(
            f"{name:12} {case.nodes:>6} {case.steps * case.nodes:>9} {seconds:10.1f} "
            f"{peak:8.0f}  {verdict}; {result['execution']}, "
            f"{result['steps_per_flush']:.0f} steps per flush, "
            f"accuracy {result['final_accuracy']:.3f}",
            flush=True,
        )
        if name == "reference16":
            from harness import data, models

            ds = data.load(case.data)
            params = models.count_parameters(
                models.build(case.model, in_channels=1, num_classes=10, image_size=28)
            )
            expected = 4 * case.rounds * model_message_bytes(params)
            sent = result["bytes_sent"] / case.nodes
            print(
                f"{'':12} bytes per node {sent:,.0f}; 4 x {case.rounds} rounds x "
                f"{model_message_bytes(params):,} B = {expected:,}: "
                f"{'equal' if sent == expected else 'DIFFERENT'} ({ds.name}, {params:,} parameters)"
            )


if __name__ == "__main__":
    main()
