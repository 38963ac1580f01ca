"""Peer-to-peer pull averaging (Cui 2019, Algorithm 1), with optional gradient compression.

    worker i, after each local SGD step:
        pick a peer j among its neighbours; request j's current model
        if the reply arrives within `timeout`:  x_i <- (x_i + x_j) / 2
        else: skip this step's averaging (a slow or lost reply never stalls training)
    serve j: answer each request with x_j as it is now (mid-step: from before that step)

With ``compress=True`` a reply carries, per layer, only the entries of x_j - r_ij whose magnitude
reaches the layer's mean magnitude (values plus int32 indices), where r_ij is what i already holds
of j; the unsent rest stays in x_j - r_ij and goes out later (error feedback). The first reply, and
any reply after a lost one, is the full model, so both sides always agree on r_ij. Without
compression, ``share`` (netsim.algorithms.sharing) decides what a reply carries; entries that did
not arrive count as i's own values.

``peers``: "random" (the paper's: a uniform draw each step) or "round_robin" (i's neighbours
in turn, starting after i in id order: on a complete graph, with workers in step, no peer is
asked twice while another waits).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netsim.algorithms import ops, sharing
from netsim.units import parse_time


@dataclass(frozen=True)
class P2PPull:
    timeout: float | str = "1s"
    compress: bool = False
    share: Any = field(default_factory=sharing.Full)  # what an uncompressed reply carries
    peers: str = "random"  # or "round_robin"
    needs_connected: ClassVar[bool] = True
    sends: ClassVar[dict[str, str]] = {
        "pull": "worker to a peer (random or in turn): have, the version of its model it holds",
        "model": "reply: x, or the fields of share; compressed: idx, values, version",
    }
    records: ClassVar[dict[str, str]] = {}

    def check(self, workers: int) -> None:
        ops.check_peers("P2PPull", workers)
        parse_time(self.timeout, "P2PPull.timeout")
        if self.peers not in ("random", "round_robin"):
            raise ops.AlgorithmError(
                f"P2PPull.peers is 'random' or 'round_robin', got {self.peers!r}"
            )

    def layout(self, graph):
        return ops.peers(graph)

    def global_model(self, X, roles):
        return ops.worker_mean(X, roles)

    async def worker(self, node):
        held = {}  # compress: peer -> (version, i's copy r_ij of peer j's model)
        timeout = parse_time(self.timeout)
        out = node.out_neighbors
        turn = [j for j in out if j > node.id] + [j for j in out if j < node.id]
        pulls = 0
        while not node.done:
            await node.train()
            for late in node.drain("model"):  # a reply that missed its timeout
                if self.compress:
                    _update(held, late)
            if self.peers == "random":
                peer = int(node.rng.choice(out))
            else:
                peer, pulls = turn[pulls % len(turn)], pulls + 1
            node.send(peer, "pull", have=held.get(peer, (-1, None))[0])
            reply = await node.recv("model", timeout=timeout)
            if reply is None:
                continue
            if not self.compress:
                x_j, mask = self.share.decode(reply.payload, node.x)
                sharing.masked_average_(node.x, 0.5, [(x_j, mask, 0.5)])
            elif _update(held, reply):
                node.x.add_(held[reply.src][1]).mul_(0.5)

    async def serve(self, node):
        sent = {}  # compress: requester -> (version, r_ij as the requester holds it)
        states = defaultdict(dict)  # requester -> the sharing method's state for it
        while True:
            request = await node.recv("pull")
            version, ref = sent.get(request.src, (-1, None))
            if not self.compress:
                state = states[request.src]
                node.send(request.src, "model", **self.share.encode(node.x, state, node.rng))
                if hasattr(self.share, "after_averaging"):  # next reply: change since this one
                    self.share.after_averaging(node.x, state)
            elif ref is None or request.have != version:
                sent[request.src] = (version + 1, node.x.clone())
                node.send(request.src, "model", x=node.x, version=version + 1)
            else:
                idx, values = ops.mean_threshold(node.x - ref, node.segments)
                ref[idx.long()] += values
                sent[request.src] = (version + 1, ref)
                node.send(request.src, "model", idx=idx, values=values, version=version + 1)


def _update(held: dict, reply) -> bool:
    """Brings i's copy of the replying peer's model up to date; False if the reply is unusable."""
    version, ref = held.get(reply.src, (-1, None))
    if "x" in reply.payload:
        held[reply.src] = (reply.version, reply.x)
        return True
    if ref is None or reply.version != version + 1:
        return False
    ref[reply.idx.long()] += reply.values
    held[reply.src] = (reply.version, ref)
    return True
