"""One node process: ``python -m netsim worker --connect HOST:PORT --node I --listen HOST:PORT``.

It says hello to the coordinator, receives the run (settings, graph, roles), builds its own
copy of the workload (the same data share and x0 as in simulation: netsim/workload.py),
listens for peers, reports ready, and at the common t0 runs its roles. Rows (steps, sends,
arrivals, records) stream to the coordinator as they happen. It stops when told to, when a
role fails (the traceback goes to the coordinator, which shows it once), or when the
coordinator goes away (no orphans: a node never outlives its run).
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import resource
import signal
import sys
import time
import traceback

import torch

from netsim import specfile
from netsim.engine.execution import Steps
from netsim.engine.population import SGD, zeros
from netsim.real import frames, netns
from netsim.real.lives import Lives
from netsim.real.node import RealNode
from netsim.real.outages import Schedule
from netsim.real.transport import Transport
from netsim.units import parse_time
from netsim.workload import Workload, resolve_device


class NodeProcess:
    """The engine's view of this node (a population of one row) and its links."""

    def __init__(self, job: dict, i: int, writer: asyncio.StreamWriter):
        self.settings, self.graph = job["settings"], job["graph"]
        self.roles = [names[0] for names in job["roles"]]
        self.role_names = job["roles"][i]
        self.drives = set(job["drives"])
        self.until = parse_time(self.settings.until) if self.settings.until is not None else None
        self.clock = frames.Clock(time.time())  # until the coordinator gives the run's t0
        self.reached = 0  # steps every worker reached, as the coordinator last said
        self._writer = writer
        device = resolve_device(self.settings.device)
        self.work = Workload(self.settings, self.roles, device)
        self.X = self.work.x0[None].clone()
        self.G = zeros(self.X.shape, device)
        self.B = self.work.b0[None].clone()
        # what the engine reads of a simulation
        self.loss_fn, self.raw_train = self.work.loss_fn, self.work.raw_train
        self.dataset_train, self.segments = self.work.dataset_train, self.work.segments
        self.engine = Steps(self, self.work.template, "loop", defer=False)
        self.optimizer = SGD(self.X, self.G, self.settings.momentum, self.settings.weight_decay)
        self.node = RealNode(
            self, i, self.roles[i], self.work.local_data(i), self.work.slowdowns[i]
        )
        self.faults = Schedule(job["plan"], self.roles, self.settings.seed, i)
        self.lives: Lives | None = None  # once the run starts
        network = self.settings.network.resolve(self.roles)
        rng = self.work.node_rng(i, 3)
        self.transport = Transport(
            i, network, rng, lambda: self.node.now, self.node.deliver, self.report
        )
        self.transport.faults, self.transport.offline = self.faults, self.offline

    def offline(self) -> bool:
        """Whether this node is offline now (its roles stopped by the fault plan)."""
        return self.lives is not None and self.lives.gone

    def lr(self) -> float:
        return self.work.lr(self.reached)

    def report(self, *row) -> None:
        frames.send(self._writer, *row)


def main(connect: str, node: int, listen: str) -> int:
    """The node process's entry point; its exit status is 0 unless it failed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops every node itself
    # a node that does not start or stop in time is asked where it is (hosts.Placement.where_stuck):
    # SIGUSR1 prints its threads' stacks even when its event loop is blocked, SIGUSR2 its tasks'
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    torch.set_num_threads(1)  # one process per node: threads would only fight over cores
    frames.reuse_large_buffers()  # a message's buffers without a page fault per 4 kB
    return asyncio.run(_run(connect, node, listen))


def _print_tasks(node: int) -> None:
    """Prints where each of this node's asyncio tasks waits (SIGUSR2)."""
    print(f"node {node}: its asyncio tasks, where each waits:", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


async def _run(connect: str, i: int, listen: str) -> int:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, _print_tasks, i)
    host, port = connect.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    frames.send(writer, "hello", i, os.getpid())
    message = await frames.receive(reader)
    if message is None:
        return 1
    for name, source in message[1].items():  # the experiment file's own classes
        specfile.define(name, source, name)
    job = (await frames.receive(reader))[1]
    try:
        world = NodeProcess(job, i, writer)
        listen_host, listen_port = listen.rsplit(":", 1)
        try:
            port = await world.transport.listen(listen_host, int(listen_port))
        except OSError as error:
            raise OSError(f"node {i} cannot listen on {listen}: {error.strerror}") from None
    except Exception as error:  # set-up failed: say why, once (a busy port needs no traceback)
        text = "" if isinstance(error, OSError) else traceback.format_exc()
        frames.send(writer, "error", i, f"{type(error).__name__}: {error}", text)
        await frames.finish(writer)
        return 1
    # the TCP its connections get, for config.json: another moves bytes differently
    frames.send(writer, "ready", i, (listen_host, port), netns.congestion_here())
    message = await frames.receive(reader)
    if message is None or message[0] != "start":
        return 1
    _, world.transport.addresses, t0 = message
    world.clock = frames.Clock(t0)
    await asyncio.sleep(max(0.0, -world.clock()))
    return await _serve(world, reader, writer)


async def _serve(world: NodeProcess, reader, writer) -> int:
    failed = asyncio.get_running_loop().create_future()
    world.lives = lives = Lives(world, failed)
    lives.start()
    faults = asyncio.ensure_future(lives.follow(world.faults))
    control = asyncio.ensure_future(_control(world, reader))
    await asyncio.wait([control, failed], return_when=asyncio.FIRST_COMPLETED)
    faults.cancel()
    await lives.stop()
    await world.transport.close()
    if failed.done():
        world.report("error", world.node.id, *failed.result())
    elif control.result() == "stop":
        world.report("final", world.node.id, world.X[0].clone(), world.B[0].clone(), _memory())
    await frames.finish(writer)
    return 1 if failed.done() else 0


async def _control(world: NodeProcess, reader) -> str:
    """Handles the coordinator's messages until it says stop (or goes away)."""
    while (message := await frames.receive(reader)) is not None:
        op = message[0]
        if op == "stop":
            return "stop"
        if op == "reached":
            world.reached = message[1]
        elif op == "snapshot":
            world.report(
                "snapshot", world.node.id, message[1], world.X[0].clone(), world.B[0].clone()
            )
    return "gone"


def _memory() -> dict[str, float]:
    """This process's peak resident memory, and (Linux) its proportional share now (PSS:
    pages shared with the other node processes, torch's libraries above all, count once)."""
    memory = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10}
    try:
        for line in open("/proc/self/smaps_rollup"):
            if line.startswith("Pss:"):
                memory["pss_mb"] = int(line.split()[1]) / 2**10
    except OSError:
        pass
    return memory
