"""Byte and message counters of a network: per node and direction, per edge, per kind.

Data (raw tensor bytes) and metadata (everything else on the wire) are counted apart.
A message is counted once, when its fate is known, under (src, dst, kind, drop reason); every
view (per node, edge, kind, reason) is summed from those on demand, so that counting is one
dictionary update per message however many views there are.
"""

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from netsim.network.message import Message

# the fates of messages that their senders sent: what faults drop at send is counted as sent,
# as the sender does not know
_SENT = ("", "loss", "offline", "link down", "partition")


@dataclass
class Tally:
    """Messages and their bytes, split into raw tensor data and everything else."""

    messages: int = 0
    data: int = 0
    metadata: int = 0

    @property
    def bytes(self) -> int:
        return self.data + self.metadata

    def add(self, other: "Tally"):
        self.messages += other.messages
        self.data += other.data
        self.metadata += other.metadata

    def to_dict(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "data_bytes": self.data,
            "metadata_bytes": self.metadata,
        }


def _total(tallies: list[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


class Counters:
    """What crossed the network.

    sent: messages their senders sent (lost ones too, and those faults dropped, which the
    sender cannot tell from lost), counted when their fate is known, per source node, per
    directed edge (src, dst) and per kind. received: delivered messages per destination node.
    dropped: per reason ("queue", "loss", and the faults' "offline", "link down",
    "partition"). A message a node sends to itself never touches the network and is not
    counted.
    """

    def __init__(self, n: int):
        self.n = n
        # (src, dst, kind, reason) -> (messages, data, metadata): tuples of ints, which the
        # garbage collector stops tracking, since a large run has a key per pair of nodes.
        self._counts: dict[tuple[int, int, str, str], tuple[int, int, int]] = {}

    def count(self, msg: Message):
        """Count msg, delivered or dropped (msg.drop_reason)."""
        key = (msg.src, msg.dst, msg.kind, msg.drop_reason)
        messages, data, metadata = self._counts.get(key, (0, 0, 0))
        size, data_bytes = msg.size, msg.data_bytes
        self._counts[key] = (messages + 1, data + data_bytes, metadata + size - data_bytes)

    def _view(self, part: Callable[[tuple], Any], reasons: tuple[str, ...]) -> dict:
        """Tallies summed by part(src, dst, kind, reason), over the given drop reasons."""
        view = {}
        for key, counts in self._counts.items():
            if key[3] in reasons:
                view.setdefault(part(key), Tally()).add(Tally(*counts))
        return view

    @property
    def sent(self) -> list[Tally]:
        by_src = self._view(itemgetter(0), _SENT)
        return [by_src.get(i, Tally()) for i in range(self.n)]

    @property
    def received(self) -> list[Tally]:
        by_dst = self._view(itemgetter(1), ("",))
        return [by_dst.get(i, Tally()) for i in range(self.n)]

    @property
    def edges(self) -> dict[tuple[int, int], Tally]:
        return self._view(itemgetter(0, 1), _SENT)

    @property
    def kinds(self) -> dict[str, Tally]:
        return self._view(itemgetter(2), _SENT)

    @property
    def dropped(self) -> dict[str, Tally]:
        return self._view(itemgetter(3), ("queue", *_SENT[1:]))

    def sent_bytes(self, node: int) -> int:
        return self.sent[node].bytes

    def received_bytes(self, node: int) -> int:
        return self.received[node].bytes

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers, for summary.json."""
        sent, received = self.sent, self.received
        return {
            "sent": _total(sent).to_dict(),
            "received": _total(received).to_dict(),
            "dropped": {reason: t.to_dict() for reason, t in self.dropped.items()},
            "kinds": {kind: t.to_dict() for kind, t in self.kinds.items()},
            "nodes": [
                {"node": i, "sent": s.to_dict(), "received": r.to_dict()}
                for i, (s, r) in enumerate(zip(sent, received, strict=True))
            ],
            "edges": [{"src": u, "dst": v, **t.to_dict()} for (u, v), t in self.edges.items()],
        }
