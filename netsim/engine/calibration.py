"""Choosing how to compute the steps in flight: by rule (execution="auto"), or by timing
(execution="calibrate").

``rule`` is the default because it is deterministic: the same settings pick the same mode on any
machine under any load, so the same seed gives byte-identical results (the modes differ in the
last bits of float rounding). It is what calibration picks on an idle machine (measured on 2 CPU
cores, docs/performance.md): with fewer than 2 workers, eager steps (BatchNorm, measured
compute) or only the loop possible, the loop; for chains of Linear and ReLU, ``stacked`` (2 to
2.5 x the loop); for chains of convolutions of up to GROUPED_MAX parameters, ``grouped`` (1.7 x
for small_cnn); the loop for larger CNNs, whose steps are compute-bound (one big grouped
convolution is slower than several ordinary ones). vmap is never picked by rule: on CPU it
loses to these, and on CUDA it is untimed here (``calibrate`` times it there).

``choose`` times each candidate mode on scratch copies of node 0's row, with batches from a
generator of its own, so the run's state and random streams are untouched. One step through the
loop sets how many nodes' steps are timed: as many as fit in about 50 ms of loop time (at most
64, at least 2), so calibration stays a small cost even for models whose steps are slow, which
are compute-bound and gain little from batching anyway. A batched mode is kept only if it beats
the loop by 10%, so the choice is stable on a quiet machine; on a busy one it may change from
one invocation to the next, and with it the last bits of every result. The choice is made once
per process and workload, so the runs of an experiment share it.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from netsim.engine.execution import NEEDS, Ticket
from netsim.engine.grouped import conv_chain
from netsim.engine.stacked import chain

_CALIBRATED: dict[tuple, tuple[str, dict[str, float]]] = {}
_GAIN = 1.1  # a batched mode must beat the loop by this factor to be chosen
_BUDGET = 0.05  # s of loop steps timed per candidate


GROUPED_MAX = 300_000  # parameters: small_cnn (20,490) and the CIFAR CNN (293,834) gain


def rule(steps) -> str:
    """The mode for steps (an execution.Steps) by model and population (module docstring)."""
    if len(steps.candidates) == 1 or len(steps.sim.workers) < 2 or not steps.defer:
        return "loop"
    if "stacked" in steps.candidates:
        return "stacked"
    if "grouped" in steps.candidates and steps.sim.X.shape[1] <= GROUPED_MAX:
        return "grouped"
    return "loop"


def unfit(template: nn.Module, classify: bool) -> dict[str, str]:
    """{mode: why it cannot compute this model's steps} for each batched mode it cannot use,
    from the model's structure alone (Steps also checks each kernel against the model)."""
    if any(True for _ in template.buffers()):
        return dict.fromkeys(("stacked", "grouped", "vmap"), "it has buffers (BatchNorm)")
    modes = {}
    if not classify or chain(template) is None:
        modes["stacked"] = NEEDS["stacked"]
    if not classify or conv_chain(template) is None:
        modes["grouped"] = NEEDS["grouped"]
    return modes


def choose(steps) -> tuple[str, dict[str, float]]:
    """The mode for steps (an execution.Steps) and the seconds each candidate took."""
    sim = steps.sim
    key = (
        sim.settings.model,
        sim.X.shape[1],
        tuple(sim.raw_train.shape[1:]),
        sim.settings.batch,
        str(sim.X.device),
        min(len(sim.workers), 64),
        tuple(steps.candidates),
        steps.defer,
    )
    if key not in _CALIBRATED:
        timings: dict[str, float] = {}
        _CALIBRATED[key] = _calibrate(steps, timings), timings
    return _CALIBRATED[key]


def _calibrate(steps, timings: dict[str, float]) -> str:
    sim = steps.sim
    workers = len(sim.workers)
    if len(steps.candidates) == 1 or workers < 2 or not steps.defer:
        return "loop"
    batch = min(sim.settings.batch, len(sim.raw_train))
    rng = np.random.default_rng(0)
    saved = sim.X, sim.G, steps._modules, steps.mode
    scratch = lambda k: (
        sim.X[:1].repeat(k, 1),
        torch.zeros(k, sim.X.shape[1], device=sim.X.device),
    )
    tickets = lambda k: [Ticket(i, rng.integers(0, len(sim.raw_train), batch)) for i in range(k)]

    def timed(mode: str, k: int) -> float:
        steps.mode = mode
        started = time.perf_counter()
        (steps._loop if mode == "loop" else steps._batched)(tickets(k))
        if sim.X.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started

    try:
        steps._modules = {}
        sim.X, sim.G = scratch(1)
        timed("loop", 1)  # first calls: allocations and kernel selection
        one = min(timed("loop", 1) for _ in range(2))
        k = int(min(64, max(2, min(workers, _BUDGET // max(one, 1e-6)))))
        sim.X, sim.G = scratch(k)
        for mode in steps.candidates:
            try:
                first = timed(mode, k)
            except RuntimeError:  # an operation vmap cannot batch
                continue
            loop = timings.get("loop")
            if loop is not None and first > 3 * loop:  # clearly slower, even if warming up
                timings[mode] = first
                continue
            timings[mode] = min(timed(mode, k) for _ in range(2))
    finally:
        sim.X, sim.G, steps._modules, steps.mode = saved
    best = min(timings, key=timings.get)
    return best if timings[best] * _GAIN < timings["loop"] else "loop"
