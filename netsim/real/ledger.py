"""The ledger of a real run's messages: senders' and receivers' reports joined into rows.

A sender reports each message as it sends it ("sent": sizes, t_send, and k, its place among
the frames to that receiver, or None when the edge's loss dropped it at once); the receiver
reports each frame it reads ("arrived": sender, k, t_arrive, and "offline" when it dropped the
frame because it was offline). The two reports come over
different connections, so either can come first. A message whose link broke is "lost"; one
still on its way when the run ends is written as sent and not delivered ("in flight").
"""

from __future__ import annotations

import math


class Row:
    """A messages.csv row, read by the recorder as it reads a simulated Message."""

    def __init__(self, src, dst, kind, size, data_bytes, t_send, reason):
        self.src, self.dst, self.kind, self.size = src, dst, kind, size
        self.data_bytes, self.t_send, self.t_arrive = data_bytes, t_send, math.nan
        self.dropped, self.drop_reason = bool(reason), reason


class Ledger:
    def __init__(self, recorder):
        self.recorder = recorder
        self._sent: dict[tuple[int, int, int], Row] = {}
        self._arrived: dict[tuple[int, int, int], tuple[float, str]] = {}

    def sent(self, src, dst, kind, size, data_bytes, t_send, k, reason) -> None:
        row = Row(src, dst, kind, size, data_bytes, t_send, reason)
        if k is None:
            self.recorder.message(row)
        elif (arrived := self._arrived.pop((src, dst, k), None)) is not None:
            self._arrive(row, *arrived)
        else:
            self._sent[src, dst, k] = row

    def arrived(self, src: int, dst: int, k: int, t_arrive: float, reason: str = "") -> None:
        row = self._sent.pop((src, dst, k), None)
        if row is None:  # the receiver spoke first
            self._arrived[src, dst, k] = (t_arrive, reason)
            return
        self._arrive(row, t_arrive, reason)

    def _arrive(self, row: Row, t_arrive: float, reason: str) -> None:
        row.t_arrive = t_arrive
        row.dropped, row.drop_reason = bool(reason), reason
        self.recorder.message(row)

    def lost(self, src: int, dst: int, k: int, reason: str) -> None:
        row = self._sent.pop((src, dst, k), None)
        if row is not None:
            row.dropped, row.drop_reason = True, reason
            self.recorder.message(row)

    def close(self) -> None:
        """Messages sent and not delivered when the run ended."""
        for row in self._sent.values():
            row.dropped, row.drop_reason = True, "in flight"
            self.recorder.message(row)
        self._sent.clear()
