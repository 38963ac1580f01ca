"""The real runtime's cost per message, side by side: how it writes and reads a frame now,
against asyncio's stream writer and msgpack's unpacker doing the same.

- send: one frame of a float32 tensor through a local TCP connection (loopback, no shaping),
  written by frames.send_parts (the tensor's own memory to the socket) and by a StreamWriter's
  writelines + drain (Python 3.11 joins the pieces, then copies what the socket does not take
  at once), while a thread on the other end reads it into one buffer; seconds from the first
  write to the last byte read.
- decode: the same frame's bytes back into a message, by network/unpack.py's walk (one copy
  of the tensor) and by msgpack.unpackb with the same extension hook (msgpack first copies the
  extension's data into a bytes object).

Each case runs `repeats` times, alternating the two ways; the medians and their ratio are
printed. No root, no namespaces: this measures the runtime's CPU, not the network.

    python benchmarks/wire.py [--mb 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import msgpack
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim.network import unpack  # noqa: E402
from netsim.network.message import Message, decode, encode_parts  # noqa: E402
from netsim.real import frames  # noqa: E402


def _drain(server: socket.socket, total: int, done: list[float]) -> None:
    conn, _ = server.accept()
    buffer, got = bytearray(total), 0
    view = memoryview(buffer)
    while got < total:
        got += conn.recv_into(view[got:])
    done.append(time.perf_counter())
    conn.close()


async def _send(parts: list, streams: bool) -> float:
    total = 4 + sum(memoryview(part).nbytes for part in parts)
    server = socket.create_server(("127.0.0.1", 0))
    done: list[float] = []
    reader = threading.Thread(target=_drain, args=(server, total, done))
    reader.start()
    port = server.getsockname()[1]
    if streams:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter()
        length = sum(memoryview(part).nbytes for part in parts).to_bytes(4, "big")
        writer.writelines([length, *parts])
        await writer.drain()
    else:
        sock = await frames.connect("127.0.0.1", port)
        start = time.perf_counter()
        await frames.send_parts(sock, parts)
    await asyncio.to_thread(reader.join)
    (writer.close() if streams else sock.close())
    server.close()
    return done[0] - start


def _decode_by_msgpack(wire) -> Message:
    fields = msgpack.unpackb(wire, ext_hook=unpack._from_ext, strict_map_key=False)
    return Message(fields["src"], fields["dst"], fields["kind"], fields["payload"])


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=64.0, help="the tensor's size in MB")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each way")
    args = parser.parse_args()
    n = int(args.mb * 1e6 / 4)
    msg = Message(0, 1, "model", {"x": torch.randn(n), "w": 0.5})
    parts = encode_parts(msg)
    wire = bytearray(b"".join(parts))
    times: dict[str, list[float]] = {k: [] for k in ("send", "streams", "walk", "msgpack")}
    for _ in range(args.repeats):
        times["send"].append(asyncio.run(_send(parts, streams=False)))
        times["streams"].append(asyncio.run(_send(parts, streams=True)))
        times["walk"].append(_timed(decode, wire))
        times["msgpack"].append(_timed(_decode_by_msgpack, wire))
    med = {k: statistics.median(v) for k, v in times.items()}
    size = f"{len(wire) / 1e6:.1f} MB frame"
    print(f"{size}, median of {args.repeats} (ms)   netsim   the other way   ratio")
    rows = (("send over loopback TCP", "send", "streams"), ("decode", "walk", "msgpack"))
    for label, ours, theirs in rows:
        print(
            f"{label:<30} {med[ours] * 1e3:>8.1f} {med[theirs] * 1e3:>15.1f} "
            f"{med[theirs] / med[ours]:>7.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
