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

``peers``: "random" (the paper's: a uniform draw each step) or "ring" (a pre-designed
schedule: at its k-th pull worker i asks the k-th of its neighbours in ring order starting
after i, i+1, i+2, ... mod n, so on a complete graph with workers in step every worker is asked
by exactly one other at each round and no peer is asked twice while another waits;
"round_robin" is the same schedule under its former name).

``weighting``: "equal" (Algorithm 1's 1/2-1/2) or "loss", the paper's contribution weighting,
for which it gives no formula. Each worker keeps the mean training loss of its last
LOSS_WINDOW steps (fewer at the start), l_i; a reply carries the peer's, l_j, and

    x_i <- (1 - w) x_i + w x_j,   w = l_i / (l_i + l_j)

that is, each model weighted by the inverse of its loss. Equal losses give 1/2-1/2; a peer whose
loss is a tenth of i's gets 10/11. The rule is chosen because it is symmetric (j merging i uses
1 - w), scale-free (losses in any unit give the same w), a convex combination (w in (0, 1): it
never extrapolates past either model) and needs one float per reply (8 bytes). A peer that has
not trained yet, or two zero losses, give 1/2. Unlike equal weights it does not keep the
workers' average: mass moves towards the better models, which is the point.

Under faults (netsim.faults) the timeout is what keeps it going: a pull to a peer that is
offline, behind a cut link or a partition, or lost, goes unanswered, and i trains on after
``timeout`` (a reply that comes later is read at the next step, for compression's copy,
and not averaged). Nothing is conserved that a lost message could take away. A node that
comes back starts its roles again: with compression its copies r_ij are gone, and its
first pull of each peer asks for the full model.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netsim.algorithms import ops, sharing
from netsim.units import parse_time


@dataclass(frozen=True)
class P2PPull:
    timeout: float | str = "1s"
    compress: bool = False
    share: Any = field(default_factory=sharing.Full)  # what an uncompressed reply carries
    peers: str = "random"  # or "ring" (the pre-designed schedule)
    weighting: str = "equal"  # or "loss" (contribution weighting)
    needs_connected: ClassVar[bool] = True
    sends: ClassVar[dict[str, str]] = {
        "pull": "worker to a peer (random or in turn): have, the version of its model it holds",
        "model": "reply: x, or the fields of share; compressed: idx, values, version; "
        "weighting='loss': and loss, the peer's recent training loss",
    }
    records: ClassVar[dict[str, str]] = {
        "weight": "weighting='loss' only: w, the weight of the peer's model in each merge",
    }

    def check(self, workers: int) -> None:
        ops.check_peers("P2PPull", workers)
        parse_time(self.timeout, "P2PPull.timeout")
        if self.peers not in ("random", "ring", "round_robin"):
            raise ops.AlgorithmError(f"P2PPull.peers is 'random' or 'ring', got {self.peers!r}")
        if self.weighting not in ("equal", "loss"):
            raise ops.AlgorithmError(
                f"P2PPull.weighting is 'equal' or 'loss', got {self.weighting!r}"
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
        losses = node.state["losses"] = deque(maxlen=LOSS_WINDOW)  # read by serve
        while not node.done:
            losses.append(await node.train())
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
            w = 0.5
            if self.weighting == "loss":
                w = weight(recent(losses), reply.loss)
                node.record("weight", w)
            if not self.compress:
                with node.update():  # busy for compute.update_time, if set
                    x_j, mask = self.share.decode(reply.payload, node.x)
                    sharing.masked_average_(node.x, 1 - w, [(x_j, mask, w)])
            elif _update(held, reply):
                with node.update():
                    node.x.mul_(1 - w).add_(held[reply.src][1], alpha=w)

    async def serve(self, node):
        sent = {}  # compress: requester -> (version, r_ij as the requester holds it)
        states = defaultdict(dict)  # requester -> the sharing method's state for it
        while True:
            request = await node.recv("pull")
            version, ref = sent.get(request.src, (-1, None))
            extra = {}
            if self.weighting == "loss":  # nan: not trained yet
                extra["loss"] = recent(node.state.get("losses", ()))
            if not self.compress:
                state = states[request.src]
                payload = self.share.encode(node.x, state, node.rng) | extra
                node.send(request.src, "model", **payload)
                if hasattr(self.share, "after_averaging"):  # next reply: change since this one
                    self.share.after_averaging(node.x, state)
            elif ref is None or request.have != version:
                sent[request.src] = (version + 1, node.x.clone())
                node.send(request.src, "model", x=node.x, version=version + 1, **extra)
            else:
                idx, values = ops.mean_threshold(node.x - ref, node.segments)
                ref[idx.long()] += values
                sent[request.src] = (version + 1, ref)
                node.send(
                    request.src, "model", idx=idx, values=values, version=version + 1, **extra
                )


LOSS_WINDOW = 10  # steps whose mean training loss is a worker's recent loss


def recent(losses) -> float:
    """The mean of the recent training losses; nan before the first step."""
    return sum(losses) / len(losses) if losses else math.nan


def weight(mine: float, theirs: float) -> float:
    """The weight of the peer's model: mine / (mine + theirs) (module docstring); 1/2 when
    either is unknown or both are 0."""
    total = mine + theirs
    if not (math.isfinite(total) and total > 0):
        return 0.5
    return mine / total


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
