"""Choosing how to compute the steps in flight (execution="auto"): a short calibration.

Each candidate mode is timed on scratch copies of node 0's row, with batches from a generator
of its own, so the run's state and random streams are untouched. One step through the loop
sets how many nodes' steps are timed: as many as fit in about 50 ms of loop time (at most 64,
at least 2), so calibration stays a small cost even for models whose steps are slow, which
are compute-bound and gain little from batching anyway. A batched mode is kept only if it
beats the loop by 10%, so the choice is stable. The choice is made once per process and
workload, so the runs of an experiment share it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from netsim.engine.execution import Ticket

_CALIBRATED: dict[tuple, tuple[str, dict[str, float]]] = {}
_GAIN = 1.1  # a batched mode must beat the loop by this factor to be chosen
_BUDGET = 0.05  # s of loop steps timed per candidate


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
