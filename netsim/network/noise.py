"""Gaussian noise on a message's floating payload: what a noisy edge does to what it carries."""

from __future__ import annotations

import numpy as np
import torch


def noisy(value, sigma: float, rng: np.random.Generator):
    """value with N(0, sigma^2) added to every floating tensor in it, out of place.

    One snapshot can ride in several messages (a send burst shares it), so noise on one edge
    must never reach the copy another recipient gets. The fabric adds it at delivery, the
    real runtime's senders before sending.
    """
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        seed = int(rng.integers(2**63))
        generator = torch.Generator(device=value.device).manual_seed(seed)
        noise = torch.randn(
            value.shape, generator=generator, dtype=value.dtype, device=value.device
        )
        return value.add(noise, alpha=sigma)
    if isinstance(value, dict):
        return {key: noisy(item, sigma, rng) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(noisy(item, sigma, rng) for item in value)
    return value
