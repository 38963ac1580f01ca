"""Simulated compute time of one SGD step.

seconds = base x slowdown_i x jitter, where
- base is a constant (``step_time="0.58s"``), or batch x FLOPs per sample x 3 / device FLOP/s
  (forward plus a backward of about twice the forward), or, opt-in, the real measured wall time
  of the step (``calibrate=True``: faithful to this machine, but not reproducible);
- slowdown_i is node i's slowness factor (2 = its steps take twice as long): 1, times
  exp(N(0, heterogeneity^2)), times ``straggler_factor`` for a seeded ``stragglers`` fraction of
  the workers, times any explicit per-node or per-role factor in ``slowdown``;
- jitter is exp(N(0, jitter^2)) drawn per step from the node's seeded generator, as real machines
  never take exactly the same time twice.

An update a node applies from what it received (``node.apply``: a parameter server's step, the
averaged step of all-reduce, SGP's and AD-PSGD's; ``node.update()``: a merge of received models,
P2PPull's, GoSGD's, RWM's, D-PSGD's average, a FedAvg server's) takes ``update_time`` x
slowdown_i seconds (x any Slow fault on), 0 unless set (no jitter). The node does nothing else
meanwhile: what it sends leaves when the update ends, and whatever its roles wait for is taken
no earlier (see netsim/node.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field

import numpy as np

from netsim.checks import admits, check_fields
from netsim.units import parse_time


class ComputeError(ValueError):
    pass


_FLOPS = re.compile(r"^\s*([0-9.eE+-]+)\s*([kKMGTP]?)(?:FLOP/?s|FLOPS|flop/?s)?\s*$")
_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}


def parse_flops(value: float | str) -> float:
    """'180GFLOP/s' -> 1.8e11; numbers pass through."""
    if isinstance(value, (int, float)):
        rate = float(value)
    else:
        match = _FLOPS.match(str(value))
        if not match:
            raise ComputeError(f"cannot read device speed {value!r}: write e.g. '180GFLOP/s'")
        rate = float(match.group(1)) * _PREFIX[match.group(2)]
    if not rate > 0 or math.isinf(rate):
        raise ComputeError(f"device speed must be a positive FLOP/s figure, got {value!r}")
    return rate


@dataclass(frozen=True)
class Compute:
    """How long a step takes on the simulated clock (see the module docstring)."""

    step_time: float | str | None = None
    device_flops: float | str = "1TFLOP/s"
    calibrate: bool = False
    jitter: float = 0.0
    heterogeneity: float = 0.0
    stragglers: float = 0.0
    straggler_factor: float = 1.0
    slowdown: Mapping[int | str, float] = field(default_factory=dict)
    update_time: float | str = 0.0  # s a node's apply() takes (x its slowdown); 0: none
    # the field's old name, which read as the opposite of what it did: refused while users
    # move over (an InitVar, so it is not a setting and config.json never shows it)
    speed: InitVar[Mapping[int | str, float] | None] = None

    def __post_init__(self, speed) -> None:
        if speed is not None:
            raise ComputeError(
                "Compute(speed=...) is now slowdown=...: a factor of 4 makes a step take 4x longer"
            )

    def validate(self) -> None:
        check_fields(self, "compute", ComputeError)  # types first: the checks below compare
        if self.step_time is not None and not parse_time(self.step_time, "compute.step_time") > 0:
            raise ComputeError(f"compute.step_time must be > 0, got {self.step_time!r}")
        parse_flops(self.device_flops)
        parse_time(self.update_time, "compute.update_time")
        for name in ("jitter", "heterogeneity", "stragglers"):
            if not getattr(self, name) >= 0:
                raise ComputeError(f"compute.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.stragglers > 1:
            raise ComputeError(f"compute.stragglers is a fraction in [0, 1], got {self.stragglers}")
        if not self.straggler_factor > 0:
            raise ComputeError("compute.straggler_factor must be > 0 (2.0 = twice as slow)")
        for key, factor in self.slowdown.items():
            if not admits(float, factor) or not factor > 0:
                raise ComputeError(f"compute.slowdown[{key!r}] must be > 0, got {factor!r}")

    def base_seconds(self, batch: int, flops_per_sample: float) -> float:
        if self.step_time is not None:
            return parse_time(self.step_time)
        return batch * flops_per_sample * 3.0 / parse_flops(self.device_flops)

    def slowdowns(self, roles: list[str], rng: np.random.Generator) -> np.ndarray:
        """Per-node slowness factors, drawn once per run from the run's seeded generator."""
        n = len(roles)
        factors = (
            np.exp(rng.normal(0.0, self.heterogeneity, n)) if self.heterogeneity else np.ones(n)
        )
        workers = [i for i, role in enumerate(roles) if role == "worker"]
        slow = rng.permutation(workers)[: round(self.stragglers * len(workers))]
        factors[slow] *= self.straggler_factor
        for key, factor in self.slowdown.items():
            for i, role in enumerate(roles):
                if key == i or key == role:
                    factors[i] *= factor
        return factors

    def update_seconds(self, slowdown: float) -> float:
        """Seconds of one update (``node.apply``) on a node of this slowdown."""
        return parse_time(self.update_time) * slowdown

    def step_seconds(self, base: float, slowdown: float, rng: np.random.Generator, measured=None):
        """Seconds of one step; ``measured`` is the real wall time, used when calibrating."""
        seconds = measured if self.calibrate and measured is not None else base
        if self.jitter:
            seconds *= math.exp(rng.normal(0.0, self.jitter))
        return float(seconds * slowdown)
