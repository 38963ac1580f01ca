"""Elastic membership for a collective: which workers form the group, agreed by rendezvous,
as elastic Horovod and torchrun re-form a job when a worker dies or comes back (Sergeev and
Del Balso 2018; PyTorch's elastic agent), here without a rendezvous server.

    group: the members (ids in order) and an epoch; at first every worker, epoch 0
    a rendezvous for epoch E is entered when a step's message did not come within the
    timeout (E = epoch + 1), at a step's start when a hello waits from a worker outside
    the group or for a newer epoch (E = the larger of epoch + 1 and the hello's), or by a
    worker coming back:
        send hello(E, k) to every other worker, alive or not
        collect hellos for E; one for a later epoch makes that the E (hellos sent again);
        stop once every worker's came, or none for the wait: timeout + the last step's
        compute (a peer enters at the start of its next step)
        the members: self and the hellos' senders; epoch <- E; k <- the largest step heard
        root <- the member at that step with the lowest id; the root sends x and its
        optimizer's state (momentum) to the others ("sync"), who copy them (or, if they do
        not come within the wait, keep theirs)
    probe: while the group is short of some workers, its lowest member sends each missing
        worker a hello every timeout, so that groups cut apart by a partition merge when
        it heals (the hello makes them rendezvous; a dead worker's is dropped)

Members that enter a rendezvous within a wait of each other, as a missing peer makes them,
agree on the group, the epoch, the root and so on the model, step and schedule. Where they
do not (a link down between two workers that both reach the others, hellos lost), the first
step of the new epoch times out and they rendezvous again; each such step still applies the
worker's own gradient, so the run moves on.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple


class Group(NamedTuple):
    members: tuple[int, ...]
    epoch: int

    @property
    def id(self) -> int:
        """A checksum of the members: groups formed apart may share an epoch number."""
        return zlib.crc32(b",".join(b"%d" % i for i in self.members))


class Membership:
    def __init__(self, node, timeout: float):
        self.node, self.timeout = node, timeout
        self.group = Group(tuple(range(node.world_size)), 0)
        self.pace = 0.0  # the last step's compute time, s
        self.probe_at = node.now + timeout

    def news(self) -> list:
        """The hellos waiting if one calls for a rendezvous (from a worker outside the group,
        or for a newer epoch), else none."""
        epoch, members = self.group.epoch, self.group.members
        hellos = self.node.drain("hello")
        return hellos if any(m.e > epoch or m.src not in members for m in hellos) else []

    def probe(self, k: int) -> None:
        """The lowest member's hello to each missing worker, once a timeout."""
        node, members = self.node, self.group.members
        if len(members) < node.world_size and members[0] == node.id and node.now >= self.probe_at:
            self._hello([j for j in range(node.world_size) if j not in members], k)
            self.probe_at = node.now + self.timeout

    async def rendezvous(self, k: int, hellos: list = ()) -> int:
        """Forms a new group with the workers that answer (``hellos``: those already taken);
        returns the group's step."""
        node, n = self.node, self.node.world_size
        wait, hellos = self.timeout + self.pace, list(hellos)
        target = max([self.group.epoch + 1, *(m.e for m in hellos)])
        others = [j for j in range(n) if j != node.id]
        self._hello(others, k, target)
        heard = {node.id: k}
        while len(heard) < n:  # until every worker's hello or none for the wait
            m = hellos.pop(0) if hellos else await node.recv("hello", timeout=wait)
            if m is None:
                break
            if m.e > target:  # others went further: join theirs
                target, heard = m.e, {node.id: k}
                self._hello(others, k, target)
            if m.e == target:
                heard[m.src] = m.k
        members = tuple(sorted(heard))
        root = max(members, key=lambda i: (heard[i], -i))
        self.group = Group(members, target)
        self.probe_at = node.now + self.timeout
        node.record("group", len(members))
        if root == node.id:
            for j in members:
                if j != node.id:
                    node.send(j, "sync", x=node.x, e=target, **node.optimizer_state())
        else:
            deadline = node.now + wait
            while (m := await node.recv("sync", timeout=deadline - node.now)) is not None:
                if m.src == root and m.e == target:
                    node.x.copy_(m.x)
                    node.load_optimizer_state({"momentum": m.momentum, "started": m.started})
                    break
        return heard[root]

    def _hello(self, peers: list[int], k: int, epoch: int | None = None) -> None:
        epoch = self.group.epoch + 1 if epoch is None else epoch
        for j in peers:
            self.node.send(j, "hello", e=epoch, k=k)
