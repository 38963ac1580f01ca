"""A group of flows connected through shared links: maxmin.py's unit of work."""

from collections.abc import Callable

import numpy as np


class Group:
    """Flows connected through shared links, one entry per flow in parallel arrays (one
    column of links), last brought up to date at t."""

    def __init__(self, width: int, t: float):
        self.links = np.empty((width, 0), dtype=np.intp)  # links[:, i]: flow i's link ids
        self.bits = np.empty(0)  # left to move at t
        self.rate = np.empty(0)  # bits/s since t; 0 until first shared
        self.weight = np.empty(0)  # shares in proportion, under unfair sharing (else all 1)
        self.ids = np.empty(0, dtype=np.int64)  # keys of on_end
        self.on_end: dict[int, Callable[[], None]] = {}
        self.new: list[tuple[tuple[int, ...], float, int, float]] = []  # since the last reshare
        self.t = t
        self.generation = 0  # bumped at every reshare or merge; older wake-ups are stale
        self.ended = 0  # flows ended since the group was last checked for a split

    def __len__(self) -> int:
        return len(self.on_end)  # flows in the arrays and new ones alike

    def advance(self, now: float):
        if now != self.t:
            self.bits -= self.rate * (now - self.t)
            self.t = now

    def add_new(self):
        """Append the flows started since the last reshare, not moving yet."""
        if self.new:
            links, bits, ids, weights = zip(*self.new, strict=True)
            links = np.array(list(zip(*links, strict=True)), dtype=np.intp)
            if len(self.ids):
                self.links = np.concatenate([self.links, links], axis=1)
                self.bits = np.concatenate([self.bits, bits])
                self.rate = np.concatenate([self.rate, np.zeros(len(bits))])
                self.ids = np.concatenate([self.ids, ids])
                self.weight = np.concatenate([self.weight, weights])
            else:
                self.links, self.bits, self.ids = links, np.array(bits), np.array(ids)
                self.rate, self.weight = np.zeros(len(bits)), np.array(weights)
            self.new = []

    def take(self, keep: np.ndarray):
        """Keep only the flows where keep is True."""
        self.links = self.links.compress(keep, axis=1)  # a[:, mask] would be F-ordered
        self.bits, self.rate, self.ids = self.bits[keep], self.rate[keep], self.ids[keep]
        self.weight = self.weight[keep]
