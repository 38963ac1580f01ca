"""The network a run is simulated on: NICs, links and their validation (the runtime is fabric.py).

Flow-level model in the style of SimGrid (Velho, Schnorr, Casanova, Legrand, "On the
validity of flow-level TCP network models for grid and cloud simulations", ACM TOMACS
2013). Every node has a NIC whose uplink and downlink (bits/s) plug into a non-blocking
switch; an edge may add latency, its own capacity (per direction), loss and payload noise.
A message of S = msg.size bytes pays its edge's latency, then is a flow of 8 S bits through
the sender's uplink, the edge (if it has a capacity) and the receiver's downlink:

- "maxmin": concurrent flows share capacity max-min fairly (progressive filling), recomputed
  once per instant at which flows start or end, over only the flows and links connected to
  them, of which only the earliest end is scheduled (maxmin.py);
- "fifo": whole messages take turns on each NIC direction: a message holds the sender's
  uplink, then the receiver's downlink, and transmits at the smallest capacity on its path.

Under "maxmin", ``unfairness`` = sigma > 0 gives each message a weight exp(N(0, sigma^2)),
drawn when its flow starts from a stream of the run's seed, and shares capacity by weighted
max-min: TCP flows through one bottleneck do not split it evenly, one runs ahead while the
others wait, which max-min's common end hides (docs/fidelity.md measures it: "tcp"). With
``unfairness_among`` = "together" a message's weight counts only among flows that start
together: within ``ramp`` seconds (the same instant without a ramp) of another running flow on
one of its links (the sender's uplink, the edge's capacity if it has one, the receiver's
downlink), and then the other's weight counts too; a flow that starts alone, or behind flows
older than that, keeps weight 1. Under Cubic the flows that race each other's slow start split
a link unevenly and a newcomer behind established flows ramps in behind them
(docs/fidelity.md, "Uneven shares among flows that start together").
Under "maxmin", ``ramp`` = T > 0 makes a flow's weight start at 2^-RAMP_STEPS and double every
T / RAMP_STEPS seconds until it is 1: a TCP flow that starts while another crosses its link
gets little of it at first (slow start against a full window), so of two flows a few tens of
ms apart the older ends well before max-min's even split would let it (measured: "tcp").

Under "maxmin", ``acks`` = a > 0 makes each flow of rate r also send a r of ACKs over the
links back, the receiver's uplink and the sender's downlink (and the edge's other direction),
ahead of data: TCP's ACKs share a NIC with the data it sends, which slows a node that sends
and receives at once (a ring, an all-to-all, a server that sends models while gradients come
in); measured: "tcp".

Under "maxmin", ``connections`` = "pair" carries the messages from one node to another over
one connection, as a runtime with a TCP connection per peer does (netsim's real one does): a
message whose connection is busy waits behind the messages already on it, in order, and then
goes on in the same flow, with the weight and ramp the flow has reached, so two messages to
one peer take one flow's share of a link, not two, and the first ends before the second
starts. With the default "message" each message is a flow of its own. Under "fifo" the
messages of a pair already take turns, in order.

A message counts against the sender's uplink queue from send until its transfer ends, and
against the receiver's downlink queue from when it enters that link until then.
"""

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from netsim.checks import check_fields
from netsim.units import UnitError, parse_bytes, parse_rate, parse_time

_SHARINGS = ("maxmin", "fifo")
_CONNECTIONS = ("message", "pair")
_AMONG = ("all", "together")
_NODE_KEYS = ("bandwidth", "up", "down", "queue")
_EDGE_KEYS = ("latency", "bandwidth", "loss", "noise")
_GOODPUT = (lambda g: 0 < g <= 1, "in (0, 1], e.g. 0.956, or 'tcp'")
# TCP over Ethernet: 1448 payload bytes (MSS with timestamps) per 1514-byte frame. Measured
# through tbf in namespaces with plain sockets: 0.960 at 100 Mbit/s (docs/fidelity.md).
TCP_GOODPUT = 1448 / 1514
# sigma of the log-weights that reproduces how TCP flows into one shaped NIC finish under
# Linux's default TCP, Cubic (fan-ins of 2, 4 and 8 into 300 Mbit/s, benchmarks/unfairness.py;
# docs/fidelity.md). Under BBR the same fan-ins fitted 0.5.
TCP_UNFAIRNESS = 0.65
# A new TCP flow into a busy link gets little of it at first: it starts in slow start while the
# flows already there keep their windows. Under "maxmin" with ``ramp`` = T > 0, a flow's weight
# starts at 2^-RAMP_STEPS and doubles every T / RAMP_STEPS seconds until it is 1. TCP_RAMP fits
# when the first of two 6.65 MB flows into a 300 Mbit/s NIC ends, the second starting 10-170 ms
# later, on connections that carried a message a second before, as a training run's do, under
# Linux's default TCP, Cubic (benchmarks/ramp.py --warm; docs/fidelity.md). Under BBR the
# newcomer got its share within 10 ms, and into a 1 Gbit/s NIC those pairs fit no ramp.
RAMP_STEPS = 5
TCP_RAMP = 0.2
# TCP's ACKs on the way back, in bytes on the wire per byte of data on the wire: Linux sent a
# 66-byte ACK per 1.75 frames of 1514 bytes (TcpOutSegs less the data segments and their
# retransmissions, counted with nstat in each namespace; rings and all-to-alls of 8 at 25 and
# 100 Mbit/s, 1.4 to 3 frames per ACK, pooled; docs/fidelity.md). Its delayed ACK covers two
# frames, but it ACKs at once early in a flow.
TCP_ACKS = 66 / (1.75 * 1514)
_UNFAIRNESS = (lambda s: 0 <= s <= 10, "sigma in [0, 10], e.g. 0.5, or 'tcp'")
_ACKS = (lambda a: 0 <= a < 1, "in [0, 1), e.g. 0.025, or 'tcp'")
_LOSS = (lambda p: 0 <= p <= 1, "a probability in [0, 1], e.g. 0.01")
_NOISE = (lambda s: 0 <= s < math.inf, "a finite sigma >= 0, e.g. 0.01")


class NetworkError(ValueError):
    """An invalid Network spec."""


@dataclass(frozen=True)
class Edge:
    """One edge, the same in both directions."""

    latency: float  # s, one way
    bandwidth: float | None  # bits/s per direction with goodput applied; None: NICs only
    loss: float  # probability that a message is dropped at arrival
    noise: float  # sigma of the Gaussian noise added to floating tensors at delivery


@dataclass(frozen=True)
class Nic:
    """One node's network card."""

    up: float  # bits/s with goodput applied
    down: float
    queue: int | None  # bytes per direction; None: unlimited


@dataclass(frozen=True)
class ResolvedNetwork:
    """A Network checked and in SI units, for nodes 0..len(nics)-1."""

    sharing: str
    nics: tuple[Nic, ...]
    default: Edge
    edges: Mapping[tuple[int, int], Edge]  # keyed (smaller id, larger id)
    unfairness: float = 0.0  # sigma of the flows' log-weights under maxmin; 0: fair
    ramp: float = 0.0  # s for a new flow's weight to grow from 2^-RAMP_STEPS to 1; 0: none
    acks: float = 0.0  # share of a flow's rate its ACKs take of the links back; 0: none
    connections: str = "message"  # maxmin: a flow per message, or one per sender and receiver
    unfairness_among: str = "all"  # whose weights count: every flow's, or racing flows' only

    def edge(self, u: int, v: int) -> Edge:
        return self.edges.get((min(u, v), max(u, v)), self.default)


@dataclass(frozen=True)
class Network:
    """The network of a run: defaults for every NIC and edge, plus overrides.

    nodes: {node id or role name: {"bandwidth" | "up" | "down" | "queue": value}}; a role
    name applies to every node with that role, an id beats a role, "up" and "down" beat
    "bandwidth". edges: {(u, v): {"latency" | "bandwidth" | "loss" | "noise": value}}, for
    both directions. Example: Network("1Gbit/s", "5ms", nodes={"server": {"bandwidth":
    "300Mbit/s"}}).
    """

    bandwidth: float | str = "1Gbit/s"  # NIC capacity, uplink and downlink, bits/s
    latency: float | str = 0.0  # one-way latency of every edge, s
    sharing: str = "maxmin"  # or "fifo"
    goodput: float | str = 1.0  # scales every capacity; "tcp": TCP_GOODPUT (1448/1514)
    unfairness: float | str = 0.0  # maxmin: sigma of flows' log-weights; "tcp": TCP_UNFAIRNESS
    unfairness_among: str = "all"  # maxmin: "all" flows, or flows that start "together"
    ramp: float | str = 0.0  # maxmin: s for a new flow to reach its full weight; "tcp": TCP_RAMP
    acks: float | str = 0.0  # maxmin: share of a flow's rate taken on the links back; "tcp"
    connections: str = "message"  # maxmin: "message" (a flow each) or "pair" (one connection)
    queue: float | str | None = None  # bytes per NIC direction, overflow drops; None: unlimited
    loss: float = 0.0  # per-edge probability of dropping a message
    noise: float = 0.0  # per-edge sigma of Gaussian noise on floating payload tensors
    nodes: Mapping = field(default_factory=dict)
    edges: Mapping = field(default_factory=dict)

    def resolve(self, roles: list[str]) -> ResolvedNetwork:
        """Check every field for nodes 0..len(roles)-1 (node i plays roles[i]); SI units."""
        check_fields(self, "Network", NetworkError)
        if self.sharing not in _SHARINGS:
            raise NetworkError(f"Network.sharing = {self.sharing!r}: use one of {_SHARINGS}")
        unfair = self.unfairness
        unfair = (
            TCP_UNFAIRNESS
            if unfair == "tcp"
            else _number("Network.unfairness", unfair, _UNFAIRNESS)
        )
        if unfair and self.sharing != "maxmin":
            raise NetworkError(
                f"Network.unfairness = {self.unfairness!r} weights max-min sharing: use "
                f"sharing='maxmin', or unfairness=0 with sharing={self.sharing!r}"
            )
        if self.unfairness_among not in _AMONG:
            raise NetworkError(
                f"Network.unfairness_among = {self.unfairness_among!r}: use one of {_AMONG}"
            )
        if self.unfairness_among != "all" and not unfair:
            raise NetworkError(
                f"Network.unfairness_among = {self.unfairness_among!r} says which flows "
                "Network.unfairness weights: set unfairness > 0 (e.g. 'tcp'), or leave it 'all'"
            )
        ramp = TCP_RAMP if self.ramp == "tcp" else _unit(parse_time, "Network.ramp", self.ramp)
        if ramp and self.sharing != "maxmin":
            raise NetworkError(
                f"Network.ramp = {self.ramp!r} weights max-min sharing: use "
                f"sharing='maxmin', or ramp=0 with sharing={self.sharing!r}"
            )
        acks = TCP_ACKS if self.acks == "tcp" else _number("Network.acks", self.acks, _ACKS)
        if acks and self.sharing != "maxmin":
            raise NetworkError(
                f"Network.acks = {self.acks!r} shares max-min links: use sharing='maxmin', "
                f"or acks=0 with sharing={self.sharing!r}"
            )
        if self.connections not in _CONNECTIONS:
            raise NetworkError(
                f"Network.connections = {self.connections!r}: use one of {_CONNECTIONS}"
            )
        tcp = self.goodput == "tcp"
        goodput = TCP_GOODPUT if tcp else _number("Network.goodput", self.goodput, _GOODPUT)
        rate = lambda where, value: _unit(parse_rate, where, value) * goodput
        queue = lambda where, value: None if value is None else _unit(parse_bytes, where, value)
        parsers = {
            "bandwidth": rate,
            "up": rate,
            "down": rate,
            "queue": queue,
            "latency": partial(_unit, parse_time),
            "loss": partial(_number, rule=_LOSS),
            "noise": partial(_number, rule=_NOISE),
        }
        bandwidth = rate("Network.bandwidth", self.bandwidth)
        nics = [Nic(bandwidth, bandwidth, queue("Network.queue", self.queue))] * len(roles)
        # Role overrides first, so that an id override wins over its node's role.
        for key, spec in sorted(self.nodes.items(), key=lambda item: not isinstance(item[0], str)):
            where = f"Network.nodes[{key!r}]"
            parsed = _parse_spec(where, spec, _NODE_KEYS, parsers)
            if "bandwidth" in parsed:
                bandwidth = parsed.pop("bandwidth")
                parsed = {"up": bandwidth, "down": bandwidth} | parsed
            for i in _node_ids(where, key, roles):
                nics[i] = replace(nics[i], **parsed)
        default = Edge(
            _unit(parse_time, "Network.latency", self.latency),
            None,
            _number("Network.loss", self.loss, _LOSS),
            _number("Network.noise", self.noise, _NOISE),
        )
        edges = {}
        for key, spec in self.edges.items():
            where = f"Network.edges[{key!r}]"
            parsed = _parse_spec(where, spec, _EDGE_KEYS, parsers)
            uv = _edge_key(where, key, len(roles))
            if uv in edges:
                raise NetworkError(f"{where}: given twice, as (u, v) and (v, u); give it once")
            edges[uv] = replace(default, **parsed)
        return ResolvedNetwork(
            self.sharing,
            tuple(nics),
            default,
            edges,
            unfair,
            ramp,
            acks,
            self.connections,
            self.unfairness_among,
        )


def _unit(parse: Callable, where: str, value):
    try:
        return parse(value)
    except UnitError as error:
        raise NetworkError(f"{where}: {error}") from None


def _number(where: str, value, rule: tuple[Callable[[float], bool], str]) -> float:
    ok, description = rule
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and ok(float(value)):
        return float(value)
    raise NetworkError(f"{where} = {value!r}: use a number {description}")


def _parse_spec(where: str, spec, allowed: tuple[str, ...], parsers: dict) -> dict:
    if not isinstance(spec, Mapping):
        raise NetworkError(f"{where} = {spec!r}: use a dict with keys from {allowed}")
    for key in spec:
        if key not in allowed:
            raise NetworkError(f"{where}: unknown key {key!r}; use keys from {allowed}")
    return {key: parsers[key](f"{where}[{key!r}]", value) for key, value in spec.items()}


def _is_node(key, n: int) -> bool:
    return isinstance(key, numbers.Integral) and not isinstance(key, bool) and 0 <= key < n


def _node_ids(where: str, key, roles: list[str]) -> list[int]:
    if isinstance(key, str):
        # A role absent from this run (no server in a single-machine run) matches no node; the
        # experiment checks that every role key names a role of at least one of its runs.
        return [i for i, role in enumerate(roles) if role == key]
    if not _is_node(key, len(roles)):
        raise NetworkError(f"{where}: use a node id in 0..{len(roles) - 1} or a role name")
    return [int(key)]


def _edge_key(where: str, key, n: int) -> tuple[int, int]:
    if isinstance(key, tuple) and len(key) == 2 and all(_is_node(k, n) for k in key):
        u, v = sorted(int(k) for k in key)
        if u != v:
            return u, v
    raise NetworkError(f"{where}: use a pair (u, v) of two different node ids in 0..{n - 1}")
