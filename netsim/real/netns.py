"""Test hosts in network namespaces: one per node, joined by veth pairs to a bridge, each
node's uplink and downlink shaped by Linux traffic control from the run's ``Network``.

Node i lives in namespace ``<prefix>i`` with address 10.<a>.<b>.<i+1>/16 on its end of a
veth pair; the other end is a port of a bridge in the root namespace, where the coordinator
listens on 10.<a>.255.254. The uplink is a token bucket (``tc ... htb``) on the node's end
(what it sends), the downlink one on the bridge's end (what the bridge sends it), each at the
node's NIC rate in the ``Network`` (its ``bandwidth``/``up``/``down``, without ``goodput``:
the bucket counts whole Ethernet frames, as a real link does, while the model's goodput
factor says how much of that rate a TCP payload gets; the fidelity harness measures it).

Packets under 128 bytes (TCP's ACKs) go ahead of bulk data in each bucket, as on a real host,
whose default qdisc (fq_codel) serves sparse flows first. A plain FIFO bucket (tbf) held a
node's ACKs behind its own queue of outgoing data, so a node that sent and received at once
slowed its peers' flows into it: a ring of 8 at 100 Mbit/s came out 19-34% slower than
simulated, 3-11% with the ACKs first (docs/fidelity.md). This kernel has neither fq_codel nor
fq.
Latency cannot come from the kernel here (netem is missing), so the real runtime's senders
hold frames for the edge's latency, as on loopback.

Each namespace's TCP congestion control is set (``congestion``, Cubic unless told), not taken
from the host: a new namespace inherits the root namespace's, and a VM tuned for BBR (this
one was) measured the all-to-all of 8 at 25 Mbit/s 10% slower than Cubic did (docs/fidelity.md).

Everything is torn down on leaving the context, whatever happened inside it. Without root or
iproute2, ``why_not()`` says why in one line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import replace

from netsim.network.spec import Network

# A token bucket lets its burst through at once after an idle spell, which a real link never
# does; but a bucket smaller than what the rate drains per timer tick (about 1 ms here)
# cannot reach its rate (64 kB held 1 Gbit/s to 450 Mbit/s; 256 kB gave 925). So the burst
# is two ticks' worth of the rate: messages after idle arrive up to 2 ms early, at any rate.
_BURST_SECONDS = 0.002
_FRAME = 1514  # bytes: a full Ethernet frame
_MIN_BURST = 4 * _FRAME  # bytes: a few full frames
# htb lets a packet go once its bucket is not empty, and TCP hands a veth packets of up to
# 64 kB (GSO) that are cut into frames later: below 256 Mbit/s (a bucket of 2 ms under 64 kB)
# the sender cuts them into frames itself, so the bucket meters frames (64 kB at 100 Mbit/s
# came 31% early otherwise). Above it, GSO stays: frames cost the 2 cores too much there.
_GSO_MAX = 65536


# Linux's default (CONFIG_DEFAULT_TCP_CONG) and what the fidelity figures are measured with
CONGESTION = "cubic"
_AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control"
_CONGESTION = "/proc/sys/net/ipv4/tcp_congestion_control"  # per namespace
# the ones a namespace other than the root one may take (host-wide)
_ALLOWED = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"


class NamespaceError(RuntimeError):
    pass


def congestion_controls() -> list[str]:
    """The TCP congestion controls this kernel offers (loaded ones), e.g. reno, cubic, bbr."""
    try:
        with open(_AVAILABLE) as handle:
            return handle.read().split()
    except OSError:
        return []


def congestion_error(name: str) -> str | None:
    """None where this kernel offers the congestion control name, else a line saying so."""
    if name in (offered := congestion_controls()):
        return None
    listed = ", ".join(offered) or "(none listed)"
    return f"TCP congestion control {name!r} is not available in this kernel: use one of {listed}"


def congestion_here() -> str | None:
    """The congestion control this process's new TCP connections get (its namespace's); None
    where the kernel does not say (not Linux)."""
    try:
        with open(_CONGESTION) as handle:
            return handle.read().strip()
    except OSError:
        return None


def congestion_in(namespace: str) -> str:
    """The congestion control new TCP connections get in namespace ("" for the root one)."""
    argv = ["cat", _CONGESTION]
    if namespace:
        argv = ["ip", "netns", "exec", namespace, *argv]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def _write_in(namespace: str, path: str, value: str) -> None:
    """Writes value into path (a /proc/sys file) as seen from inside namespace."""
    _run(["ip", "netns", "exec", namespace, "sh", "-c", 'echo "$1" > "$2"', "-", value, path])


def why_not() -> str | None:
    """None if this process can make namespaces and shape links, else the reason, in a line."""
    if os.geteuid() != 0:
        return "network namespaces and tc need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    probe = f"nsprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _shape(["ip", "netns", "exec", probe], "lo", 1e9)
    except NamespaceError as error:
        return f"cannot shape a link in a namespace: {error}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def has_qdisc(kind: str) -> bool:
    """Whether the kernel offers the queueing discipline ``kind`` (netem is often missing)."""
    probe = f"nsq{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        result = subprocess.run(["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo",
                                 "root", kind], capture_output=True)  # fmt: skip
        return result.returncode == 0
    except NamespaceError:
        return False
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class Namespaces:
    """``with Namespaces(roles, network) as hosts:`` hosts[i] is node i's address."""

    def __init__(
        self,
        roles: list[str],
        network: Network,
        prefix: str | None = None,
        congestion: str | None = CONGESTION,
    ):
        n = len(roles)
        if n > 250:
            raise NamespaceError(f"{n} namespaces: at most 250 nodes fit one test network")
        if congestion is not None and (why := congestion_error(congestion)) is not None:
            raise NamespaceError(why)
        self.congestion = congestion  # None: the root namespace's, whatever it is
        self.n, self.nics = n, replace(network, goodput=1.0).resolve(roles).nics
        self.prefix = prefix or f"ns{os.getpid() % 10000}x"
        self.bridge = f"br{os.getpid() % 100000}"
        self.gateway = "10.77.255.254"
        self.addresses = [f"10.77.0.{i + 1}" for i in range(n)]
        self._made: list[tuple[str, ...]] = []
        self._allowed: str | None = None  # the host's allowed list, while widened

    def __enter__(self) -> list[str]:
        # a SIGTERM (a batch scheduler, a plain kill) unwinds through __exit__ like Ctrl-C
        self._sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _terminate)
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self.addresses

    def __exit__(self, *exc) -> None:
        self.close()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    def namespace(self, i: int) -> str:
        return f"{self.prefix}{i}"

    def command(self, i: int, argv: Sequence[str]) -> list[str]:
        """argv run inside node i's namespace."""
        return ["ip", "netns", "exec", self.namespace(i), *argv]

    def _build(self) -> None:
        # a second set on the same subnet would take half of the first one's routes
        listed = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
        for line in listed.stdout.splitlines():
            if f" {self.gateway}/" in line:
                device = line.split()[1]
                raise NamespaceError(
                    f"another set of test namespaces is up ({self.gateway} on {device}): one "
                    f"set at a time; wait for it to end, or remove it with `ip link del {device}`"
                )
        if self.congestion is not None:
            self._allow(self.congestion)
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", "del", self.bridge))
        _ip("addr", "add", f"{self.gateway}/16", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, nic in enumerate(self.nics):
            ns, inside, outside = self.namespace(i), f"v{i}n", f"{self.bridge}p{i}"
            _ip("netns", "add", ns)
            self._made.append(("netns", "del", ns))
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            self._made.append(("link", "del", outside))
            _ip("link", "set", inside, "netns", ns)
            _ip("link", "set", outside, "master", self.bridge, "up")
            in_ns = lambda *args, ns=ns: _ip("netns", "exec", ns, "ip", *args)
            in_ns("addr", "add", f"{self.addresses[i]}/16", "dev", inside)
            in_ns("link", "set", inside, "up")
            in_ns("link", "set", "lo", "up")
            if self.congestion is not None:
                _write_in(ns, _CONGESTION, self.congestion)
            _shape(["ip", "netns", "exec", ns], inside, nic.up)  # what node i sends
            _shape([], outside, nic.down)  # what the bridge hands node i

    def _allow(self, name: str) -> None:
        """A namespace other than the root one may only take a congestion control the host
        allows (net.ipv4.tcp_allowed_congestion_control; on some kernels cubic is not): name
        is added to the list while the namespaces live, and the list is put back at close."""
        with open(_ALLOWED) as handle:
            allowed = handle.read().strip()
        if name in allowed.split():
            return
        try:
            with open(_ALLOWED, "w") as handle:
                handle.write(f"{allowed} {name}")
        except OSError as error:
            raise NamespaceError(
                f"TCP congestion control {name!r} is not allowed in namespaces here "
                f"(net.ipv4.tcp_allowed_congestion_control: {allowed}) and could not be "
                f"allowed ({error.strerror}): allow it, or ask for one of {allowed}"
            ) from None
        self._allowed = allowed

    def close(self) -> None:
        """Removes everything made, newest first, and puts back the host's allowed
        congestion controls if they were widened; never raises."""
        for args in reversed(self._made):
            subprocess.run(["ip", *args], capture_output=True)
        self._made.clear()
        if self._allowed is not None:
            try:
                with open(_ALLOWED, "w") as handle:
                    handle.write(self._allowed)
            except OSError:
                pass
            self._allowed = None


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def _shape(prefix: list[str], device: str, rate_bits: float) -> None:
    """A token bucket of rate_bits on device's egress: an htb class with two leaves, ACKs
    (IP packets under 128 bytes) served first, everything else after (pfifo, the device's
    txqueuelen deep: 1000 frames)."""
    if rate_bits == float("inf"):
        return
    rate, acks = int(rate_bits), max(int(rate_bits) // 20, 8000)
    burst = str(max(_MIN_BURST, int(rate_bits * _BURST_SECONDS / 8)))
    bucket = ["burst", burst, "cburst", burst]
    if int(burst) < _GSO_MAX:  # a 64 kB GSO packet would leave at once, bigger than the bucket
        _run([*prefix, "ip", "link", "set", "dev", device, "gso_max_size", str(_FRAME)])
    tc = [*prefix, "tc"]
    _run([*tc, "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "20"])
    _run([*tc, "class", "add", "dev", device, "parent", "1:", "classid", "1:1", "htb",
          "rate", f"{rate}bit", *bucket])  # fmt: skip
    for leaf, share, prio in (("1:10", acks, "0"), ("1:20", rate - acks, "1")):
        _run([*tc, "class", "add", "dev", device, "parent", "1:1", "classid", leaf, "htb",
              "rate", f"{share}bit", "ceil", f"{rate}bit", "prio", prio, *bucket])  # fmt: skip
    # the IP header's total length (bytes 2-3) below 128
    _run([*tc, "filter", "add", "dev", device, "parent", "1:", "protocol", "ip", "prio", "1",
          "u32", "match", "u16", "0x0000", "0xff80", "at", "2", "flowid", "1:10"])  # fmt: skip


def _ip(*args: str) -> None:
    _run(["ip", *args])


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise NamespaceError(f"{' '.join(argv)}: {result.stderr.strip()}")
