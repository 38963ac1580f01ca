"""What a node knows about itself, the same in both runtimes (netsim/node.py, netsim/real/node.py).

The verbs that need a clock or a network (train, send, recv, sleep...) are each runtime's own;
this is the rest of the surface an algorithm sees, so that the two cannot drift apart.
"""

from __future__ import annotations

from collections import defaultdict, deque

import networkx as nx
import numpy as np


class NodeState:
    def __init__(self, i: int, role: str, graph: nx.Graph, data, rng: np.random.Generator, work):
        # work: the run's Workload (netsim/workload.py)
        self.id = i
        self.role = role
        self.steps = 0
        self.state: dict = {}  # algorithm state shared by this node's roles; observers may read it
        self.rng = rng
        self._data = data
        self._work = work
        self._mail: dict[str, deque] = defaultdict(deque)
        self._waiting: dict[str, deque] = defaultdict(deque)
        if graph.is_directed():
            self.neighbors = sorted(graph.predecessors(i))
            self.out_neighbors = sorted(graph.successors(i))
        else:
            self.neighbors = self.out_neighbors = sorted(graph.neighbors(i))

    @property
    def segments(self) -> list[tuple[int, int]]:
        """(start, end) of each parameter tensor (layer) within ``node.x``."""
        return self._work.segments

    @property
    def samples(self) -> int:
        """How many training samples this node holds (0 for a server)."""
        return len(self._data.indices) if self._data is not None else 0

    @property
    def batch_size(self) -> int:
        return self._work.settings.batch

    @property
    def degree(self) -> int:
        return len(self.neighbors)

    @property
    def world_size(self) -> int:
        return len(self._work.workers)

    def drain(self, kind: str) -> list:
        """Every message of ``kind`` in the mailbox now, oldest first; never waits."""
        messages = list(self._mail[kind])
        self._mail[kind].clear()
        return messages

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.role}, steps={self.steps})"
