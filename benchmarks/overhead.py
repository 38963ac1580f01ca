"""netsim's overhead over a bare PyTorch loop, measured side by side in one process.

Both do the same work: `steps` SGD steps of the single-machine run of experiments/ps_vs_p2p.py
(same model, batch size, optimizer and data, batches gathered by indexing in-memory tensors),
then one evaluation on the full test set. netsim adds the simulated clock, the node verbs, the
recorder writing every step to CSV, and its evaluation schedule (the default subset evaluations
are included). Repeats alternate the two so that drifting machine load hits both alike; the
ratio of medians is printed.

    python benchmarks/overhead.py [--steps 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from netsim import data, run  # noqa: E402
from netsim.__main__ import load  # noqa: E402

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "ps_vs_p2p.py"


def netsim_run(steps: int, out: Path) -> float:
    experiment = load(str(EXPERIMENT))
    experiment.override([f"steps={steps}", "device='cpu'"])
    experiment.select(["single"])
    started = time.perf_counter()
    run(experiment, out=out, progress=False, plot=False)
    return time.perf_counter() - started


def bare_loop(steps: int, settings) -> float:
    started = time.perf_counter()
    dataset = data.load(settings.data)
    torch.manual_seed(settings.seed)
    model = models.build(settings.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    rng = np.random.default_rng(settings.seed)
    order = torch.from_numpy(rng.permutation(len(dataset.y_train)))
    for step in range(steps):
        start = (step * settings.batch) % (len(order) - settings.batch)
        idx = order[start : start + settings.batch]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(dataset.x_train[idx]), dataset.y_train[idx])
        loss.backward()
        optimizer.step()
        loss.item()
    with torch.inference_mode():
        model.eval()
        correct = sum(
            (model(dataset.x_test[i : i + 2000]).argmax(1) == dataset.y_test[i : i + 2000]).sum()
            for i in range(0, len(dataset.y_test), 2000)
        )
    assert 0 <= int(correct) <= len(dataset.y_test)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    experiment = load(str(EXPERIMENT))
    settings = dict(experiment.resolve())["single"]
    data.load(settings.data)  # both sides share the per-process data cache
    bare, sim = [], []
    with tempfile.TemporaryDirectory() as out:
        bare_loop(10, settings)  # warm-up: first-call costs of torch kernels
        for _ in range(args.repeats):
            bare.append(bare_loop(args.steps, settings))
            sim.append(netsim_run(args.steps, Path(out)))
    b, s = statistics.median(bare), statistics.median(sim)
    print(
        f"model {settings.model}, batch {settings.batch}, {args.steps} steps, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"bare PyTorch loop : {b:7.2f} s  ({1000 * b / args.steps:.1f} ms/step)")
    print(f"netsim single run : {s:7.2f} s  ({1000 * s / args.steps:.1f} ms/step)")
    print(f"overhead ratio    : {s / b:7.3f}  (netsim / bare)")


if __name__ == "__main__":
    main()
