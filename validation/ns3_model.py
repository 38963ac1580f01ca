"""netsim's star of NICs as a packet-level TCP network in ns-3, for benchmarks/ns3_compare.py.

Every node has one point-to-point link to a switch (an IPv4 router): its uplink is the
link's node-side device, at the node's up rate, its downlink the switch-side device, at its
down rate. Each link's delay is half the edge latency, so a packet crosses the switch in one
latency plus two serialisations (store and forward). Each transfer of S bytes is its own TCP
connection, opened before the patterns start (as the real runtime's links are), so its time
holds slow start but no handshake; it is timed from its start to the arrival of its last
byte at the receiving socket.

TCP is ns-3 3.44's default, Cubic, with SACK, timestamps and delayed ACKs (2 segments); IW
10. Changed from ns-3's defaults: segments of 1448 bytes (MTU 1500 less 20 IP, 20 TCP and
12 timestamp bytes; ns-3 defaults to 536), send and receive buffers of 8 MB (ns-3: 128 kB,
which would cap a window below the bandwidth-delay product at 1 Gbit/s), a minimum RTO of
200 ms and a delayed-ACK timeout of 40 ms (Linux's; ns-3: RFC 6298's 1 s and 200 ms, which
together send every segment of a flow stuck at a window of one again after a spurious
timeout). On the wire a full segment is 1502 bytes (a 2-byte
PPP header), so TCP's goodput is 1448/1502 = 0.9640 (netsim's goodput="tcp" is Ethernet's
1448/1514). Queues: the switch's ports are drop-tail FIFOs of `queue` packets (ns-3's
traffic-control layer, FqCoDel by default, removed); a host's own uplink queue is unbounded,
since a host does not drop its own packets (Linux pushes back on the socket instead).

ns3 is an optional dependency (the 'bench' extra); netsim never imports it. Loading it
(cppyy) prints two "Failed to materialize symbols" lines, which are harmless.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version

GOODPUT = 1448 / 1502  # TCP payload per PPP frame at MTU 1500
WARMUP = 0.5  # s: connections open at 0, transfers start at WARMUP + t

_SOURCE = r"""
#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/internet-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/traffic-control-module.h"

namespace netsim_ns3 {
using namespace ns3;

std::vector<Ptr<Socket>> senders;
std::vector<uint64_t> left, got, want;
std::vector<double> start, done;
uint64_t drops;
uint64_t forwarded;

void Forwarded(const Ipv4Header&, Ptr<const Packet>, uint32_t) { forwarded++; }

void Push(uint32_t k, Ptr<Socket> s, uint32_t) {
  while (left[k] > 0 && s->GetTxAvailable() > 0) {
    uint32_t n = std::min<uint64_t>(left[k], s->GetTxAvailable());
    int sent = s->Send(Create<Packet>(n));
    if (sent <= 0) return;
    left[k] -= sent;
  }
}

void Start(uint32_t k) { left[k] = want[k]; Push(k, senders[k], 0); }

void Received(uint32_t k, Ptr<Socket> s) {
  while (Ptr<Packet> p = s->Recv()) got[k] += p->GetSize();
  if (got[k] >= want[k] && done[k] < 0) done[k] = Simulator::Now().GetSeconds() - start[k];
}

void Accepted(uint32_t k, Ptr<Socket> s, const Address&) {
  s->SetRecvCallback(MakeBoundCallback(&Received, k));
}

std::vector<double> Run(const std::vector<double>& up, const std::vector<double>& down,
                        double latency, uint32_t queue, const std::vector<double>& t,
                        const std::vector<int>& src, const std::vector<int>& dst,
                        const std::vector<double>& bytes, double warmup, double until,
                        bool hystart) {
  Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(1448));
  Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(8 << 20));
  Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(8 << 20));
  Config::SetDefault("ns3::TcpSocketBase::MinRto", TimeValue(MilliSeconds(200)));
  Config::SetDefault("ns3::TcpSocket::DelAckTimeout", TimeValue(MilliSeconds(40)));
  Config::SetDefault("ns3::TcpCubic::HyStart", BooleanValue(hystart));
  uint32_t n = up.size(), m = t.size();
  NodeContainer hosts;
  hosts.Create(n);
  Ptr<Node> hub = CreateObject<Node>();
  InternetStackHelper stack;
  stack.Install(hosts);
  stack.Install(hub);
  PointToPointHelper p2p;
  p2p.SetChannelAttribute("Delay", TimeValue(Seconds(latency / 2)));
  p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize",
               QueueSizeValue(QueueSize(QueueSizeUnit::PACKETS, queue)));
  Ipv4AddressHelper addresses("10.0.0.0", "255.255.255.252");
  TrafficControlHelper tc;
  std::vector<Ipv4Address> ip(n);
  for (uint32_t i = 0; i < n; i++) {
    NetDeviceContainer link = p2p.Install(hosts.Get(i), hub);
    link.Get(0)->SetAttribute("DataRate", DataRateValue(DataRate(up[i])));
    link.Get(1)->SetAttribute("DataRate", DataRateValue(DataRate(down[i])));
    DynamicCast<PointToPointNetDevice>(link.Get(0))->GetQueue()->SetMaxSize(
        QueueSize(QueueSizeUnit::PACKETS, 1000000));
    ip[i] = addresses.Assign(link).GetAddress(0);
    tc.Uninstall(link);
    addresses.NewNetwork();
  }
  Ipv4GlobalRoutingHelper::PopulateRoutingTables();
  senders.assign(m, nullptr);
  left.assign(m, 0); got.assign(m, 0); want.assign(m, 0);
  start.assign(m, 0); done.assign(m, -1);
  TypeId tcp = TcpSocketFactory::GetTypeId();
  for (uint32_t k = 0; k < m; k++) {
    uint16_t port = 1024 + k;
    want[k] = (uint64_t)bytes[k];
    start[k] = warmup + t[k];
    Ptr<Socket> sink = Socket::CreateSocket(hosts.Get(dst[k]), tcp);
    sink->Bind(InetSocketAddress(Ipv4Address::GetAny(), port));
    sink->Listen();
    sink->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                            MakeBoundCallback(&Accepted, k));
    senders[k] = Socket::CreateSocket(hosts.Get(src[k]), tcp);
    senders[k]->Bind();
    senders[k]->Connect(InetSocketAddress(ip[dst[k]], port));
    senders[k]->SetSendCallback(MakeBoundCallback(&Push, k));
    Simulator::Schedule(Seconds(start[k]), &Start, k);
  }
  Simulator::Stop(Seconds(until));
  forwarded = 0;
  hub->GetObject<Ipv4L3Protocol>()->TraceConnectWithoutContext(
      "UnicastForward", MakeCallback(&Forwarded));
  Simulator::Run();
  // A full port's queue stops its device, and the traffic-control layer discards (without
  // a trace) what comes next: the packets a drop-tail queue drops.
  drops = forwarded;
  for (uint32_t d = 0; d < hub->GetNDevices(); d++)
    if (auto port = DynamicCast<PointToPointNetDevice>(hub->GetDevice(d)))
      drops -= port->GetQueue()->GetTotalReceivedPackets();
  Simulator::Destroy();
  senders.clear();
  return done;
}
}
"""


@cache
def _ns():
    from ns import ns  # the 'bench' extra; loading compiles ns-3's headers (about 10 s)

    ns.cppyy.cppdef(_SOURCE)
    return ns.cppyy.gbl.netsim_ns3


def available() -> str | None:
    """None if ns-3's Python bindings (the ns3 package) are installed, else why not."""
    try:
        version("ns3")
    except PackageNotFoundError:
        return "ns3 is not installed: pip install -e '.[bench]'"
    return None


def bdp_packets(rate: float, latency: float) -> int:
    """Full-size packets in flight on a path of that rate (bits/s) and one-way latency."""
    return max(1, math.ceil(rate * 2 * latency / 8 / 1502))


def simulate(
    transfers: Sequence[tuple[float, int, int, int]],
    up: Sequence[float],
    down: Sequence[float],
    latency: float,
    queue: int,
    hystart: bool = True,
    until: float = 600.0,
) -> tuple[list[float | None], int]:
    """Each transfer's (t, src, dst, bytes) completion time in s (None if unfinished at
    WARMUP + until) and the packets the switch's ports dropped, over node i's uplink up[i]
    and downlink down[i] (bits/s on the wire) with `latency` s one way and drop-tail switch
    ports of `queue` packets; hystart=False keeps Cubic in slow start until a loss."""
    if len(transfers) > 65535 - 1024:
        raise ValueError(f"{len(transfers)} transfers: each needs its own port, 64,511 at most")
    model = _ns()
    t, src, dst, size = (list(column) for column in zip(*transfers, strict=True))
    done = model.Run(
        [float(r) for r in up],
        [float(r) for r in down],
        float(latency),
        int(queue),
        [float(x) for x in t],
        [int(x) for x in src],
        [int(x) for x in dst],
        [float(x) for x in size],
        WARMUP,
        WARMUP + until,
        hystart,
    )
    return [None if x < 0 else float(x) for x in done], int(model.drops)
