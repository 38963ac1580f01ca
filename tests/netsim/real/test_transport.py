"""A node's links on loopback TCP, without node processes: frames written from the payload's
own memory arrive whole and in order, and a peer nobody listens at loses the message."""

import asyncio
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from netsim import Network
from netsim.network.message import Message
from netsim.real.transport import Transport


def transport(me: int, delivered: list, reports: list) -> Transport:
    network = Network("1Gbit/s").resolve(["worker"] * 3)
    clock = asyncio.get_running_loop().time
    return Transport(
        me, network, np.random.default_rng(me), clock, delivered.append,
        lambda *row: reports.append(row),
    )  # fmt: skip


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def exchange():
    got, reports = [], []
    sender, receiver = transport(0, [], reports), transport(1, got, reports)
    port = await receiver.listen("127.0.0.1", 0)
    sender.addresses = {1: ("127.0.0.1", port), 2: ("127.0.0.1", closed_port())}
    big = torch.randn(1_000_000)  # 4 MB: the walking decoder
    sent = [
        sender.send(Message(0, 1, "x", {"x": big, "k": 0})),
        sender.send(Message(0, 1, "x", {"x": torch.arange(5), "k": 1})),
        sender.send(Message(0, 1, "x", {"x": big * 2, "k": 2, "note": "last"})),
    ]
    lost = await sender.send(Message(0, 2, "x", {"x": big}))
    await asyncio.gather(*sent)
    for _ in range(200):
        if len(got) == 3:
            break
        await asyncio.sleep(0.01)
    await sender.close()
    await receiver.close()
    return big, got, lost, reports


def test_frames_arrive_whole_and_in_order_and_an_unreachable_peer_loses_the_message():
    big, got, lost, reports = asyncio.run(exchange())
    assert [m.k for m in got] == [0, 1, 2] and got[2].note == "last"
    assert torch.equal(got[0].x, big) and torch.equal(got[2].x, big * 2)
    assert torch.equal(got[1].x, torch.arange(5))
    got[0].x.add_(1)  # received tensors are the receiver's own, writable memory
    assert lost.dropped and lost.drop_reason == "unreachable"
    assert ("lost", 0, 2, 0, "unreachable") in reports
    arrived = [row for row in reports if row[0] == "arrived"]
    assert [row[3] for row in arrived] == [0, 1, 2]  # the k-th frame from the sender


_MALLINFO = """
import ctypes
from netsim.real import frames
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
first = bytearray(80_000_000)
print(libc.mallinfo2().hblkhd >= 80_000_000, frames.reuse_large_buffers())
del first
second = bytearray(80_000_000)
print(libc.mallinfo2().hblkhd < 80_000_000)
"""


def test_large_buffers_come_from_the_heap_once_a_node_process_asks():
    # glibc's mallinfo2 counts the bytes of blocks mapped on their own (hblkhd): an 80 MB
    # buffer is one before, and none after
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    found = subprocess.run(
        [sys.executable, "-c", _MALLINFO], capture_output=True, text=True, timeout=60
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["True", "True", "True"]


_LAST_REPORT = """
import asyncio, socket, sys
from netsim.real import frames
async def main(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    frames.write(writer, bytes(300_000))  # a node's last report: its model
    await frames.finish(writer)
sys.exit(asyncio.run(main(int(sys.argv[1]))))
"""


def test_a_node_processs_last_report_arrives_whole_before_it_exits():
    """A process that sends a frame and ends its asyncio.run() right after: every byte reaches
    a reader slower than the sender (4 kB at a time, 10 ms apart, small socket buffers), as a
    node's final model reaches a coordinator busy with the other nodes'. drain() returns once
    under 16 kB are left in the process, and with close() alone those were lost."""
    import time

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen()
    child = subprocess.Popen(
        [sys.executable, "-c", _LAST_REPORT, str(server.getsockname()[1])],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    conn, _ = server.accept()
    received = 0
    with conn:
        conn.settimeout(30)
        while chunk := conn.recv(4096):
            received += len(chunk)
            time.sleep(0.01)
    server.close()
    assert child.wait(timeout=30) == 0, child.stderr.read()
    assert received == 4 + 300_000
