"""Runs a traffic pattern through netsim and through ns-3 on the same messages and pairs them.

netsim simulates the pattern first (validation/harness.py's experiment); its messages.csv
gives every message's send time, size in bytes and completion time, and the same messages,
at the same offsets from the first send, then run through ns-3 (validation/ns3_model.py) on
the same NIC rates and latency. The Network should use ns-3's TCP goodput
(ns3_model.GOODPUT) so that both move the same payload per second of line rate.
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from netsim import Network, run
from validation import harness, ns3_model

_KEYS = ("src", "dst", "bytes", "t_send", "t_arrive")


@dataclass
class Result:
    flow: list[float]  # netsim's completion time per message, s, in order of sending
    packet: list[float | None]  # ns-3's; None: not finished
    flow_last: float  # last arrival - first send, s
    packet_last: float  # nan if a message did not finish
    drops: int  # packets ns-3's switch dropped

    def pairs(self) -> list[tuple[float, float]]:
        return [(f, p) for f, p in zip(self.flow, self.packet, strict=True) if p is not None]


def messages(name: str, pattern, network: Network, out: Path) -> list[dict]:
    """The pattern simulated by netsim: its messages (src, dst, bytes, t_send, t_arrive)."""
    with contextlib.redirect_stderr(io.StringIO()):  # "1 point per curve": nothing trains
        run(harness.experiment(name, pattern, network), out=out, progress=False, plot=False)
    with open(out / name / name / "messages.csv") as handle:
        rows = [
            {k: float(v) if k.startswith("t_") else int(v) for k, v in row.items() if k in _KEYS}
            for row in csv.DictReader(handle)
        ]
    return sorted(rows, key=lambda r: r["t_send"])


def compare(
    name: str, pattern, network: Network, out: Path, queue: int | str = "bdp", hystart=True
) -> Result:
    """The pattern in netsim and ns-3; queue: drop-tail packets per port, or "bdp" (a
    bandwidth-delay product at the fastest NIC and the default latency)."""
    rows = messages(name, pattern, network, Path(out))
    resolved = network.resolve(["worker"] * pattern.nodes)
    goodput = float(network.goodput)
    up = [nic.up / goodput for nic in resolved.nics]  # the wire's rate
    down = [nic.down / goodput for nic in resolved.nics]
    latency = resolved.default.latency
    if queue == "bdp":
        queue = ns3_model.bdp_packets(max(up), latency)
    t0 = rows[0]["t_send"]
    transfers = [(r["t_send"] - t0, r["src"], r["dst"], r["bytes"]) for r in rows]
    packet, drops = ns3_model.simulate(transfers, up, down, latency, int(queue), hystart)
    flow = [r["t_arrive"] - r["t_send"] for r in rows]
    last = lambda times: max(t + d for (t, *_), d in zip(transfers, times, strict=True))
    packet_last = float("nan") if None in packet else last(packet)
    return Result(flow, packet, last(flow), packet_last, drops)
