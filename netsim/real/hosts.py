"""Where a real run's nodes live: this host, or the hosts of a hosts file, each with an agent.

On one host the coordinator starts every node process itself, on loopback, on ports the OS
picks. With ``--hosts FILE`` (one ``host[:port]`` per line; ``#`` starts a comment) node i
runs on line i mod H, the k-th node of a line listening on port + k (any free port when the
line gives none), and each host runs an agent, ``python -m netsim worker --connect
COORDINATOR:PORT --host HOST``, which asks the coordinator for its nodes, starts their
processes and waits for them, run after run, until the experiment's last run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netsim.experiment import ConfigError
from netsim.real import frames
from netsim.specfile import SOURCES

LOCAL = ("127.0.0.1", 0)
_AGENT_PATIENCE = 300.0  # s an agent waits for the coordinator (its next run, or the first)


def read_hosts(path: str) -> list[tuple[str, int]]:
    """The (host, base port) of each line of a hosts file; port 0 where a line gives none."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        why = f"--hosts {path}: {error.strerror}; give a file of host[:port] lines"
        raise ConfigError(why) from None
    found = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "0")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"--hosts {path}, line {number}: {text!r} is not host[:port]")
        found.append((host, int(port)))
    if not found:
        raise ConfigError(f"--hosts {path} names no host: write one host[:port] per line")
    return found


@dataclass
class Placement:
    """Which host runs which node, how the coordinator is reached, and who starts nodes."""

    hosts: list[tuple[str, int]] = field(default_factory=lambda: [LOCAL])
    bind: str = "127.0.0.1"  # where the coordinator listens
    port: int = 0  # the coordinator's control port (0: any free one)
    agents: bool = False  # nodes started by agents on their hosts, not by the coordinator
    last: bool = True  # this run is the experiment's last: agents may leave after it
    # argv of node i's process -> the command that starts it (e.g. inside its namespace)
    wrap: Callable[[int, list[str]], list[str]] | None = None

    def listen(self, i: int) -> str:
        host, base = self.hosts[i % len(self.hosts)]
        return f"{host}:{base + i // len(self.hosts) if base else 0}"

    def launch(self, port: int, n: int) -> list[subprocess.Popen]:
        """Starts the node processes on this host (none when agents start them)."""
        self.port, self.n = port, n
        if self.agents:
            return []
        connect = f"{self.bind}:{port}"
        return [spawn(connect, i, self.listen(i), self.wrap) for i in range(n)]

    def nodes_of(self, host: str) -> list[tuple[int, str]]:
        """The (node, listen address) an agent on host starts."""
        return [(i, self.listen(i)) for i in range(self.n) if self.listen(i).startswith(host + ":")]

    def describe(self, addresses: dict[int, tuple[str, int]]) -> dict:
        return {"hosts": sorted({host for host, _ in addresses.values()})}

    def where_stuck(self, procs: list[subprocess.Popen], nodes: list[int]) -> str:
        """Asks the given nodes' processes on this host to print their threads' and asyncio
        tasks' stacks to their stderr (process.py); those started by agents are not asked.
        Says what became of each: still running (its stacks printed), or its exit status."""
        said = []
        for node in nodes:
            if self.agents or node >= len(procs):
                said.append(f"node {node}: started by an agent")
            elif (code := procs[node].poll()) is not None:
                said.append(f"node {node} exited with status {code} without reporting")
            else:
                for sig in (signal.SIGUSR1, signal.SIGUSR2):
                    try:
                        os.kill(procs[node].pid, sig)
                    except ProcessLookupError:  # it ended meanwhile
                        break
                said.append(f"node {node} still runs: where it waits is printed above")
        return "; ".join(said)

    def exit_code(self, procs: list[subprocess.Popen], node: int):
        if self.agents or node >= len(procs):
            return "unknown: started by an agent"
        try:
            return procs[node].wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "still running"


def spawn(connect: str, node: int, listen: str, wrap=None) -> subprocess.Popen:
    command = [sys.executable, "-m", "netsim", "worker", "--connect", connect]
    command += ["--node", str(node), "--listen", listen]
    # a session of its own: a Ctrl-C at the terminal reaches the coordinator, which stops
    # every node itself (a node also ends when the coordinator's connection goes away)
    return subprocess.Popen(wrap(node, command) if wrap else command, start_new_session=True)


def reap(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """Waits for node processes to end, then terminates and kills what is left."""
    deadline = time.monotonic() + grace
    for signal_name in ("wait", "terminate", "kill"):
        for proc in procs:
            if proc.poll() is None and signal_name != "wait":
                getattr(proc, signal_name)()
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if all(proc.poll() is not None for proc in procs):
            return
        deadline = time.monotonic() + 2.0


def experiment_modules(algorithm) -> dict[str, str]:
    """The experiment file a run's algorithm class was defined in, for the node processes."""
    name = type(algorithm).__module__
    if name == "__main__":
        raise ConfigError(
            f"the real runtime sends {type(algorithm).__name__} to every node process by "
            "reference: define it in an importable module or in the experiment file"
        )
    return {name: SOURCES[name]} if name in SOURCES else {}


def agent(connect: str, host: str) -> int:
    """A host's agent: starts the nodes the coordinator deals to this host, run after run."""
    return asyncio.run(_agent(connect, host))


async def _agent(connect: str, host: str) -> int:
    address, port = connect.rsplit(":", 1)
    while True:
        deadline = time.monotonic() + _AGENT_PATIENCE
        while True:
            try:
                reader, writer = await asyncio.open_connection(address, int(port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    return 0
                await asyncio.sleep(0.2)
        frames.send(writer, "agent", host)
        message = await frames.receive(reader)
        if message is None:
            writer.close()
            continue
        _, nodes, last = message
        procs = [spawn(connect, node, listen) for node, listen in nodes]
        await frames.receive(reader)  # the coordinator closes the stream when the run ends
        writer.close()
        await asyncio.to_thread(reap, procs, 30.0)
        if last:
            return 0
