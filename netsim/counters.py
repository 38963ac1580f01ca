"""Byte and message counters of a network: per node and direction, per edge, per kind.

Data (raw tensor bytes) and metadata (everything else on the wire) are counted apart.
"""

from dataclasses import dataclass

from netsim.message import Message


@dataclass
class Tally:
    """Messages and their bytes, split into raw tensor data and everything else."""

    messages: int = 0
    data: int = 0
    metadata: int = 0

    @property
    def bytes(self) -> int:
        return self.data + self.metadata

    def add(self, msg: Message):
        self.messages += 1
        self.data += msg.data_bytes
        self.metadata += msg.size - msg.data_bytes

    def to_dict(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "data_bytes": self.data,
            "metadata_bytes": self.metadata,
        }


def _total(tallies: list[Tally]) -> Tally:
    return Tally(
        *(sum(getattr(t, name) for t in tallies) for name in ("messages", "data", "metadata"))
    )


class Counters:
    """What crossed the network.

    sent: transfers that used bandwidth (lost messages too), counted when the transfer ends,
    per source node, per directed edge (src, dst) and per kind. received: delivered messages
    per destination node. dropped: per reason ("queue", "loss"). A message a node sends to
    itself never touches the network and is not counted.
    """

    def __init__(self, n: int):
        self.sent = [Tally() for _ in range(n)]
        self.received = [Tally() for _ in range(n)]
        self.edges: dict[tuple[int, int], Tally] = {}
        self.kinds: dict[str, Tally] = {}
        self.dropped: dict[str, Tally] = {}

    def sent_bytes(self, node: int) -> int:
        return self.sent[node].bytes

    def received_bytes(self, node: int) -> int:
        return self.received[node].bytes

    def count_sent(self, msg: Message):
        self.sent[msg.src].add(msg)
        self.edges.setdefault((msg.src, msg.dst), Tally()).add(msg)
        self.kinds.setdefault(msg.kind, Tally()).add(msg)

    def count_outcome(self, msg: Message):
        if msg.dropped:
            self.dropped.setdefault(msg.drop_reason, Tally()).add(msg)
        else:
            self.received[msg.dst].add(msg)

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers, for summary.json."""
        return {
            "sent": _total(self.sent).to_dict(),
            "received": _total(self.received).to_dict(),
            "dropped": {reason: t.to_dict() for reason, t in self.dropped.items()},
            "kinds": {kind: t.to_dict() for kind, t in self.kinds.items()},
            "nodes": [
                {"node": i, "sent": s.to_dict(), "received": r.to_dict()}
                for i, (s, r) in enumerate(zip(self.sent, self.received, strict=True))
            ],
            "edges": [{"src": u, "dst": v, **t.to_dict()} for (u, v), t in self.edges.items()],
        }
