"""Faults: crashes, cut links, partitions, slow intervals, loss bursts and churn, declared up
front (the setting ``faults=[...]``) and seeded by the run's seed.

Times are simulated seconds or strings such as "5s"; an interval [at, until) holds at ``at``
and no longer at ``until``.

- ``Crash(node, at, restart=None, state="keep")``: node goes offline at ``at``; with
  ``restart=s`` it comes back s seconds later, with its parameters kept ("keep") or set back
  to x0 with its optimizer state (momentum) and ``node.state`` cleared ("reset").
- ``LinkDown(a, b, at, until)``: the link between a and b carries nothing, either way.
- ``Partition([group, ...], at, until)``: messages between nodes of different groups are
  dropped; the nodes no group names form one more group together.
- ``Slow(node, factor, at, until)``: a step the node starts in the interval takes factor
  times as long.
- ``LossBurst(p, at, until)``: every message sent in the interval is lost with probability p
  (besides any edge loss), drawn from the faults' own seeded stream.
- ``Churn(trace="availability.csv")``: the nodes the trace names are online only within its
  rows (node, t_on, t_off): a CSV with that header, times in seconds; a node it does not name
  is always online. ``Churn(fraction=f, session="60s")``: every worker alternates online
  sessions and offline periods, drawn as exponential durations of means ``session`` and
  session * f / (1 - f), starting online at t = 0, so each is offline a fraction f of the
  time in the long run (10% churn: about a tenth of the workers offline at any moment);
  seeded per node by the run's seed. Churn keeps the parameters (state="keep") unless told.

An offline node sends nothing, receives nothing and does not train: its roles stop (a step
in progress is lost, its mailbox emptied) and start again from their beginning when it comes
back. A message dropped by a fault is recorded with its reason: "offline" (its sender or
receiver was offline when it was sent, or its receiver when it arrived), "link down",
"partition" (at send, never entering the network) or "loss" (a loss burst, at arrival).
Faults written as text (``--set faults=...``) are read by netsim/network/fault_text.py.
"""

from __future__ import annotations

import csv
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

from netsim.checks import check_fields
from netsim.units import UnitError, parse_time


class FaultError(ValueError):
    """A fault that cannot happen in the run (one line: which fault, what to fix)."""


STATES = ("keep", "reset")


@dataclass(frozen=True)
class Crash:
    node: int
    at: float | str
    restart: float | str | None = None  # seconds offline; None: never comes back
    state: str = "keep"  # "keep" its parameters or "reset" them to x0


@dataclass(frozen=True)
class LinkDown:
    a: int
    b: int
    at: float | str
    until: float | str


@dataclass(frozen=True)
class Partition:
    groups: list | tuple
    at: float | str
    until: float | str


@dataclass(frozen=True)
class Slow:
    node: int
    factor: float
    at: float | str
    until: float | str


@dataclass(frozen=True)
class LossBurst:
    p: float
    at: float | str
    until: float | str


@dataclass(frozen=True)
class Churn:
    trace: str | None = None  # a CSV of online sessions: node, t_on, t_off
    fraction: float = 0.0  # or: the long-run fraction of time each worker is offline
    session: float | str = "60s"  # mean online session (exponential)
    state: str = "keep"


KINDS = (Crash, LinkDown, Partition, Slow, LossBurst, Churn)


@dataclass
class Plan:
    """A run's faults checked and in seconds, for nodes 0..n-1."""

    offline: list = field(default_factory=list)  # (node, t_off, t_on or inf, state)
    links: list = field(default_factory=list)  # (u, v, at, until), u < v
    partitions: list = field(default_factory=list)  # ({node: group}, at, until)
    slow: list = field(default_factory=list)  # (node, factor, at, until)
    bursts: list = field(default_factory=list)  # (p, at, until)
    churn: tuple | None = None  # (fraction, mean session s, state) for every worker

    def __bool__(self) -> bool:
        return any((self.offline, self.links, self.partitions, self.slow, self.bursts)) or bool(
            self.churn
        )

    def offline_during(self, node: int, start: float, end: float) -> bool:
        """Whether a declared offline interval of node overlaps [start, end)."""
        return any(i == node and a < end and start < b for i, a, b, _ in self.offline)


def plan(faults, roles: list[str]) -> Plan:
    """Checks every fault against the run's nodes (node i plays roles[i]); FaultError names
    the first bad one as faults[k]."""
    if not isinstance(faults, (list, tuple)):
        raise FaultError(f"faults is a list such as [Crash(0, at='5s')], got {faults!r}")
    out, n = Plan(), len(roles)
    for k, fault in enumerate(faults):
        where = f"faults[{k}] = {fault!r}"
        if not isinstance(fault, KINDS):
            names = ", ".join(kind.__name__ for kind in KINDS)
            raise FaultError(f"{where}: a fault is one of {names} (from netsim.faults)")
        check_fields(fault, f"faults[{k}]", FaultError)
        try:
            _add(out, fault, n, roles, where)
        except UnitError as error:
            raise FaultError(f"{where}: {error}") from None
    return out


def _add(out: Plan, fault, n: int, roles: list[str], where: str) -> None:
    if isinstance(fault, Churn):
        return _churn(out, fault, n, where)
    if isinstance(fault, Crash):
        node, at = _node(fault.node, n, where), parse_time(fault.at, "at")
        back = math.inf if fault.restart is None else at + parse_time(fault.restart, "restart")
        if fault.restart is not None and not back > at:
            raise FaultError(f"{where}: restart is the seconds offline, > 0")
        out.offline.append((node, at, back, _state(fault.state, where)))
        return
    at, until = _interval(fault, where)
    if isinstance(fault, LinkDown):
        a, b = _node(fault.a, n, where), _node(fault.b, n, where)
        if a == b:
            raise FaultError(f"{where}: a link joins two different nodes")
        out.links.append((min(a, b), max(a, b), at, until))
    elif isinstance(fault, Partition):
        out.partitions.append((_groups(fault.groups, n, where), at, until))
    elif isinstance(fault, Slow):
        if not fault.factor > 0:
            raise FaultError(f"{where}: factor must be > 0 (2 = steps take twice as long)")
        out.slow.append((_node(fault.node, n, where), float(fault.factor), at, until))
    else:
        if not 0 <= fault.p <= 1:
            raise FaultError(f"{where}: p is a probability in [0, 1]")
        out.bursts.append((float(fault.p), at, until))


def _interval(fault, where: str) -> tuple[float, float]:
    at, until = parse_time(fault.at, "at"), parse_time(fault.until, "until")
    if not until > at:
        raise FaultError(f"{where}: until must be after at")
    return at, until


def _node(node, n: int, where: str) -> int:
    if isinstance(node, numbers.Integral) and not isinstance(node, bool) and 0 <= node < n:
        return int(node)
    raise FaultError(f"{where}: no node {node!r} in this run; nodes are 0..{n - 1}")


def _state(state: str, where: str) -> str:
    if state not in STATES:
        raise FaultError(f"{where}: state is 'keep' or 'reset', got {state!r}")
    return state


def _groups(groups, n: int, where: str) -> dict[int, int]:
    side: dict[int, int] = {}
    for g, group in enumerate(groups):
        if not isinstance(group, (list, tuple, set, frozenset, range)):
            raise FaultError(f"{where}: groups is a list of lists of node ids")
        for node in group:
            node = _node(node, n, where)
            if node in side:
                raise FaultError(f"{where}: node {node} is in two groups")
            side[node] = g
    rest = len(groups)  # the nodes no group names: one more group
    return {i: side.get(i, rest) for i in range(n)}


def _churn(out: Plan, churn: Churn, n: int, where: str) -> None:
    state = _state(churn.state, where)
    if churn.trace is None:
        if not 0 <= churn.fraction < 1:
            raise FaultError(f"{where}: fraction is the share of time offline, in [0, 1)")
        session = parse_time(churn.session, "session")
        if not session > 0:
            raise FaultError(f"{where}: session is the mean online time, > 0")
        if out.churn is not None:
            raise FaultError(f"{where}: give one Churn(fraction=...) per run")
        if churn.fraction > 0:
            out.churn = (float(churn.fraction), session, state)
        return
    if churn.fraction:
        raise FaultError(f"{where}: give a trace or a fraction, not both")
    sessions: dict[int, list[tuple[float, float]]] = {}
    for line, node, on, off in read_trace(churn.trace, where):
        row = f"{where}: {churn.trace}, line {line}"
        node = _node(node, n, row)
        if not off > on:
            raise FaultError(f"{row}: t_off must be after t_on")
        sessions.setdefault(node, []).append((on, off))
    for node, spans in sorted(sessions.items()):
        spans.sort()
        start = 0.0
        for on, off in spans:
            if on < start:
                raise FaultError(f"{where}: node {node}'s sessions overlap in {churn.trace}")
            if on > start:
                out.offline.append((node, start, on, state))
            start = off
        out.offline.append((node, start, math.inf, state))


def read_trace(path: str, where: str) -> list[tuple[int, int, float, float]]:
    """(line, node, t_on, t_off) of every row of an availability trace."""
    try:
        with open(Path(path), newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise FaultError(f"{where}: cannot read the trace ({error.strerror})") from None
    if not rows or [c.strip() for c in rows[0]] != ["node", "t_on", "t_off"]:
        raise FaultError(f"{where}: {path} must start with the header node,t_on,t_off")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            node, on, off = (c.strip() for c in row)
            out.append((line, int(node), parse_time(float(on)), parse_time(float(off))))
        except (ValueError, UnitError):
            raise FaultError(
                f"{where}: {path}, line {line}: {','.join(row)!r} is not node,t_on,t_off "
                "(an id and two times in seconds >= 0)"
            ) from None
    return out
