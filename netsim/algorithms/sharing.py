"""Model-sharing methods of decentralizepy (Dresevic 2022, "Model sharing and communication
techniques in decentralized systems"), orthogonal to the algorithm that uses them.

A sharing method decides what a node puts in a model message and how a receiver rebuilds a
full parameter vector from it:

    payload = share.encode(x, state, rng)          # sender; state: a dict the caller keeps per node
    x_j, m_j = share.decode(payload, x_i)          # receiver; m_j: entries that arrived, None = all
    x_i <- masked_average(x_i, w_ii, [(x_j, m_j, w_ij), ...])

Payload fields: "x" the values (float32), "idx" their positions (int32), "seed" the int that
regenerates the positions. A full model is "x" alone, the same message netsim's other
algorithms send. Where nothing arrived, the receiver keeps its own values, as decentralizepy
does (it writes the received entries into a copy of its own state_dict).

- Full: the whole model.
- Partial(alpha): PartialModel, TopK by change. The alpha fraction of parameters whose change is
  largest is sent as values plus indices, so each entry costs 8 bytes instead of 4.
- RandomAlpha(alpha_list, metadata_cap): each round alpha is drawn from alpha_list; above
  metadata_cap, where indices would cost more than they save, the full model is sent.
- SubSampling(alpha): a random alpha fraction chosen by a seed; the seed replaces the indices.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import torch

from netsim.algorithms.ops import AlgorithmError


def _check_alpha(owner: str, alpha: float) -> None:
    if not 0 < alpha <= 1:
        raise AlgorithmError(f"{owner} alpha must be in (0, 1], got {alpha}")


def _count(alpha: float, x: torch.Tensor) -> int:
    return round(alpha * x.numel())


def _scatter(payload: dict, idx: torch.Tensor, base: torch.Tensor):
    """base with payload["x"] written at idx, and the mask of those entries."""
    idx = idx.to(base.device, torch.long)
    x = base.clone()
    x[idx] = payload["x"]
    mask = torch.zeros_like(base, dtype=torch.bool)
    mask[idx] = True
    return x, mask


@dataclass(frozen=True)
class Full:
    """The whole model; the payload views x, and node.send snapshots it."""

    name: ClassVar[str] = "full"

    def encode(self, x: torch.Tensor, state: dict, rng: np.random.Generator) -> dict:
        return {"x": x}

    def decode(self, payload: dict, base: torch.Tensor):
        return payload["x"], None


@dataclass(frozen=True)
class Partial:
    """decentralizepy's PartialModel: send the round(alpha * P) entries whose change is largest.

    state["ref"] is decentralizepy's init_model: the model at the end of the last sharing
    round, i.e. after averaging (set by after_averaging; without that call, the model at the
    last encode). It starts as the zero vector unless the caller passes the initial model to
    after_averaging before the first local step, as decentralizepy starts from the initial
    model. delta = x - ref is the change from training since the last round.

    - accumulation=False: the score is delta, the change since the model was last shared,
      which in decentralizepy means since the last round, not since each entry was sent.
    - accumulation=True: state["acc"] (decentralizepy's accumulated_changes) adds up delta
      over rounds and the sent entries are reset to zero, so an entry's score is its training
      change since it was last *sent*; change due to averaging is not counted.
    - accumulate_averaging_changes=True (with accumulation; decentralizepy's legacy mode): the
      score is acc + delta; the sent entries of acc are reset, then acc gains the whole change
      since the last round, training plus averaging (delta here, x_averaged - x_sent in
      after_averaging). So a sent entry restarts from this round's change, not from zero, and
      an unsent one accumulates every change since the start of the round it was last sent in.

    The indices sent are sorted, as decentralizepy sends them.
    """

    alpha: float
    accumulation: bool = False
    accumulate_averaging_changes: bool = False
    name: ClassVar[str] = "partial"

    def __post_init__(self):
        _check_alpha("Partial", self.alpha)
        if self.accumulate_averaging_changes and not self.accumulation:
            raise AlgorithmError(
                "Partial accumulate_averaging_changes=True needs accumulation=True: it says "
                "what the accumulated change includes"
            )

    def encode(self, x: torch.Tensor, state: dict, rng: np.random.Generator) -> dict:
        delta = x - state["ref"] if "ref" in state else x.clone()
        state["ref"] = x.clone()
        if not self.accumulation:
            score = delta
        elif self.accumulate_averaging_changes:
            acc = state.setdefault("acc", torch.zeros_like(x))
            score = acc + delta
        else:
            acc = state.setdefault("acc", torch.zeros_like(x))
            acc += delta
            score = acc
        idx = score.abs().topk(_count(self.alpha, x)).indices.sort().values
        if self.accumulation:
            acc[idx] = 0
            if self.accumulate_averaging_changes:
                acc += delta
        return {"x": x[idx], "idx": idx.to(torch.int32)}

    def after_averaging(self, x: torch.Tensor, state: dict) -> None:
        """Reports the model right after averaging: the reference for the next round."""
        # Before the first encode there is no change to count: x is the initial model.
        if self.accumulate_averaging_changes and "acc" in state:
            state["acc"] += x - state["ref"]
        state["ref"] = x.clone()

    def decode(self, payload: dict, base: torch.Tensor):
        return _scatter(payload, payload["idx"], base)


@dataclass(frozen=True)
class RandomAlpha:
    """decentralizepy's RandomAlpha: Partial (no accumulation) with alpha drawn each round.

    alpha is drawn uniformly from alpha_list with the node's rng (decentralizepy seeds
    Python's random with uid + round). When alpha > metadata_cap the full model is sent with
    no indices, since 8 bytes per sent entry would then cost more than the 4 bytes per entry
    of the whole model.
    """

    alpha_list: tuple = (0.1, 0.2, 0.3, 0.4, 0.5, 1.0)
    metadata_cap: float = 0.5
    name: ClassVar[str] = "random_alpha"

    def __post_init__(self):
        for alpha in self.alpha_list:
            _check_alpha("RandomAlpha alpha_list", alpha)

    def encode(self, x: torch.Tensor, state: dict, rng: np.random.Generator) -> dict:
        alpha = float(rng.choice(self.alpha_list))
        if alpha > self.metadata_cap:
            state["ref"] = x.clone()
            return {"x": x}
        return Partial(alpha).encode(x, state, rng)

    def after_averaging(self, x: torch.Tensor, state: dict) -> None:
        """Reports the model right after averaging: the reference for the next round."""
        state["ref"] = x.clone()

    def decode(self, payload: dict, base: torch.Tensor):
        if "idx" not in payload:
            return payload["x"], None
        return _scatter(payload, payload["idx"], base)


def _subsample(seed: int, P: int, k: int, device) -> torch.Tensor:
    """The k positions chosen by seed: the first k of a CPU torch.Generator's randperm(P).

    A CPU generator gives the same positions whatever device the model lives on.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(P, generator=generator)[:k].sort().values.to(device)


@dataclass(frozen=True)
class SubSampling:
    """decentralizepy's SubSampling: round(alpha * P) random entries, named by a seed.

    The sender draws an int64 seed from its rng and sends the chosen values plus the seed; the
    receiver regenerates the positions with a CPU torch.Generator seeded with it (_subsample),
    and their number from the length of "x". decentralizepy keeps each entry with probability
    alpha, so its count varies; here it is exactly round(alpha * P), so bytes follow alpha.
    """

    alpha: float
    name: ClassVar[str] = "subsampling"

    def __post_init__(self):
        _check_alpha("SubSampling", self.alpha)

    def encode(self, x: torch.Tensor, state: dict, rng: np.random.Generator) -> dict:
        seed = int(rng.integers(2**63))
        idx = _subsample(seed, x.numel(), _count(self.alpha, x), x.device)
        return {"x": x[idx], "seed": seed}

    def decode(self, payload: dict, base: torch.Tensor):
        idx = _subsample(payload["seed"], base.numel(), len(payload["x"]), base.device)
        return _scatter(payload, idx, base)


def masked_average(
    self_x: torch.Tensor,
    self_weight: float,
    received: list[tuple[torch.Tensor, torch.Tensor | None, float]],
) -> torch.Tensor:
    """Per-coordinate weighted average where a coordinate that did not arrive counts as own.

        x_i <- w_ii x_i + sum_j w_ij (m_j * x_j + (1 - m_j) * x_i)

    received holds (x_j, m_j, w_ij) from decode; m_j None means every entry arrived. So a
    neighbour's weight on a missing coordinate goes to the receiver's own value and the weights
    still sum to w_ii + sum_j w_ij, which is decentralizepy's rule for partial models (it
    averages state_dicts in which the missing entries are the receiver's own). With every mask
    full this is the plain weighted average w_ii x_i + sum_j w_ij x_j. Returns a new tensor.
    """
    x = self_x * self_weight
    for x_j, m_j, w_ij in received:
        x.add_(x_j if m_j is None else torch.where(m_j, x_j, self_x), alpha=w_ij)
    return x


def masked_average_(
    self_x: torch.Tensor,
    self_weight: float,
    received: list[tuple[torch.Tensor, torch.Tensor | None, float]],
) -> torch.Tensor:
    """masked_average written into self_x, with no temporary when every entry arrived."""
    if any(m_j is not None for _, m_j, _ in received):
        return self_x.copy_(masked_average(self_x, self_weight, received))
    self_x.mul_(self_weight)
    for x_j, _, w_ij in received:
        self_x.add_(x_j, alpha=w_ij)
    return self_x


METHODS = {method.name: method for method in (Full, Partial, RandomAlpha, SubSampling)}


def build(name: str, **kwargs):
    """The sharing method called name ("full", "partial", "random_alpha", "subsampling")."""
    if name not in METHODS:
        raise AlgorithmError(f"unknown sharing method {name!r}; known: {', '.join(METHODS)}")
    method = METHODS[name]
    known = [f.name for f in fields(method)]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise AlgorithmError(
            f"sharing {name!r} has no setting {unknown[0]!r}; it takes {', '.join(known) or 'none'}"
        )
    return method(**kwargs)
