"""The coordinator of a real run: node processes, the barrier, t0, rows, evaluations, the end.

It listens on a control port, starts a process per node (netsim/real/process.py) here or
waits for those of a hosts file (hosts.py), sends each the run, waits until every node
listens (the barrier) and announces a common t0 a moment ahead. Then it is the run's
recorder: step, record and message rows come from the nodes (a message's row joins its
sender's and its receiver's reports) into a simulation's results folder, times in seconds
since t0. Evaluations are the simulation's (engine/evaluation.py) on snapshots of every
node's parameters. The run ends as in simulation: every driving role done, the first worker
done (``stop="first"``), ``until``, or a stall under faults (watchdog.py). A failing node
stops the run; its traceback is shown once; rows so far are kept.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

from netsim import interrupts
from netsim.algorithms import hooks
from netsim.engine.evaluation import Evaluator, evaluate
from netsim.network.faults import plan
from netsim.real import frames, hosts
from netsim.real.ledger import Ledger
from netsim.real.watchdog import Watchdog
from netsim.results.recorder import Recorder, stopped_by
from netsim.units import parse_time
from netsim.workload import Workload, resolve_device

_START_TIMEOUT = 120.0  # s for every node to build its workload and listen
_STOP_TIMEOUT = 30.0  # s for every node to send its final parameters


class RealRunError(RuntimeError):
    """A real run that could not start or finish: the message says which node and why."""


class Coordinator:
    def __init__(self, name, settings, graph, run_dir: Path, progress, where):
        self.name, self.settings, self.algorithm = name, settings, settings.algorithm
        self.graph, self.role_names = hooks.layout(self.algorithm, graph)
        self.roles = [names[0] for names in self.role_names]
        self.where = where  # hosts.Placement: which host runs which node, on which port
        self.device = resolve_device(settings.device)
        self.work = work = Workload(settings, self.roles, self.device)
        self.workers, self.sampled, self.local_test = work.workers, work.sampled, work.local_test
        self.evaluator = Evaluator(
            work.template.to(self.device), work.dataset, self.device, settings.eval_subset
        )
        self.engine = None
        n = len(self.roles)
        self.X, self.B = work.x0.repeat(n, 1), work.b0.repeat(n, 1)
        self.online = [True] * n if settings.faults else None  # as the nodes' records say
        self.until = parse_time(settings.until) if settings.until is not None else None
        self.watchdog = Watchdog(plan(settings.faults, self.roles), self.roles, settings.seed)
        config = settings.describe() | {
            "run": name,
            "roles": self.roles,
            "workers": len(self.workers),
            "parameters": work.x0.numel(),
            "runtime": "real",
            "execution": "loop",  # one node per process: nothing to batch
        }
        self.recorder = Recorder(run_dir, config, self.roles, progress)
        self.drives = hooks.drives(self.algorithm)
        self.driving = {
            i for i, names in enumerate(self.role_names) if set(names) & set(self.drives)
        }
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.addresses: dict[int, tuple[str, int]] = {}
        self.tcp: dict[int, str | None] = {}  # each node's TCP congestion control
        self.ledger = Ledger(self.recorder)
        self.snapshots: dict[int, tuple] = {}
        self.finals: dict[int, tuple] = {}
        self.t0 = math.inf
        self.now = lambda: -math.inf  # frames.Clock(t0) once t0 is known
        self.ready = asyncio.Event()
        self.end = asyncio.get_running_loop().create_future()
        self.pending_eval: float | None = None
        self.procs: list[subprocess.Popen] = []
        self.agents: list[asyncio.StreamWriter] = []
        self.closed = False

    # -- the run -----------------------------------------------------------------------
    async def run(self) -> dict:
        started = time.perf_counter()
        try:
            server = await asyncio.start_server(self._serve, self.where.bind, self.where.port)
        except OSError as error:
            where = f"{self.where.bind}:{self.where.port} ({error.strerror})"
            raise RealRunError(f"cannot listen on {where}: pick another --port") from None

        port = server.sockets[0].getsockname()[1]
        try:
            self.procs = self.where.launch(port, len(self.roles))
            await self._until(self.ready.wait(), _START_TIMEOUT, "start")
            self.t0 = time.time() + 0.2
            self.now = frames.Clock(self.t0)
            for writer in self.writers.values():
                frames.send(writer, "start", self.addresses, self.t0)
            tcp = [self.tcp[i] for i in range(len(self.roles))]
            self.recorder.config(t0=self.t0, tcp=tcp, **self.where.describe(self.addresses))
            evaluate(self, "subset", 0.0)
            timer = asyncio.ensure_future(self._timers())
            await self.end
            timer.cancel()
            t_end = self.now()
            for writer in self.writers.values():
                frames.send(writer, "stop")
            await self._until(self._all_final(), _STOP_TIMEOUT, "stop")
        except BaseException as exc:  # a node failed, or Ctrl-C: stop the others, keep the rows
            self.closed = True  # rows still on their way are not written to closed files
            with interrupts.stopping(exc):  # a second Ctrl-C or SIGTERM waits until it is kept
                for writer in self.writers.values():
                    frames.send(writer, "stop")
                self.ledger.close()
                label, wall = hooks.label(self.algorithm), time.perf_counter() - started
                summary = self.recorder.summary(self.name, label, max(self.now(), 0.0), wall)
                self.recorder.close(summary | {"runtime": "real"}, stopped=stopped_by(exc))
            raise
        finally:
            server.close()
            for writer in self.agents:  # the run is over: agents reap their nodes
                writer.close()
            hosts.reap(self.procs)
        self.ledger.close()
        for i, (x, b, _) in self.finals.items():
            self.X[i], self.B[i] = x, b
        evaluate(self, "test", t_end)
        label = hooks.label(self.algorithm)
        summary = self.recorder.summary(self.name, label, t_end, time.perf_counter() - started)
        summary["runtime"] = "real"
        memory = [self.finals[i][2] for i in sorted(self.finals)]
        for key in memory[0]:  # peak_rss_mb, and pss_mb where the OS tells it
            values = [m[key] for m in memory]
            summary["node_" + key] = {"max": max(values), "total": sum(values), "per_node": values}
        self.recorder.close(summary)
        return summary

    async def _until(self, awaitable, timeout: float, phase: str) -> None:
        waiting = asyncio.ensure_future(awaitable)
        watched = [waiting] if self.end.done() else [waiting, self.end]  # a failure ends it
        done, _ = await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.end.done() and self.end.exception() is not None:
            waiting.cancel()
            raise self.end.exception()
        if not done:
            waiting.cancel()
            have = self.addresses if phase == "start" else self.finals
            missing = sorted(set(range(len(self.roles))) - set(have))
            became = self.where.where_stuck(self.procs, missing)
            await asyncio.sleep(1.0)  # their stacks reach stderr before the error
            raise RealRunError(
                f"run {self.name!r}: nodes {missing} did not {phase} within {timeout:.0f} s "
                f"({became})"
            )

    async def _all_final(self) -> None:
        while len(self.finals) < len(self.roles):
            await asyncio.sleep(0.01)

    async def _timers(self) -> None:
        """until, evaluations every eval_every seconds when eval_every is a time, and under
        faults without until the stall check (watchdog.py) every second."""
        every = self.settings.eval_every
        period = parse_time(every) if isinstance(every, str) else None
        next_eval = period if period else math.inf
        watch = 1.0 if self.settings.faults and self.until is None else math.inf
        while True:
            due = min(next_eval, math.inf if self.until is None else self.until, self.now() + watch)
            await asyncio.sleep(max(0.0, due - self.now()) if due < math.inf else 3600)
            if watch < math.inf and self.watchdog.stalled(now := self.now()):
                why = f"run {self.name!r} stalled at t={now:.3f}s: {self.watchdog.why(now)}"
                return self._finish(RealRunError(why))
            if self.until is not None and self.now() >= self.until:
                self._finish()
                return
            if self.now() >= next_eval:
                self._ask_snapshots()
                next_eval += period

    def _finish(self, error: BaseException | None = None) -> None:
        if not self.end.done() and error is None:
            self.end.set_result(None)
        elif not self.end.done():
            self.end.set_exception(error)

    # -- what the nodes say ------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._converse(reader, writer)
        except asyncio.CancelledError:  # the run was interrupted: its end handles the nodes
            pass
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM, in this connection's task
            interrupts.end_with(stop, self.end)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        node = None
        while (message := await frames.receive(reader)) is not None and not self.closed:
            op, *args = message
            if op == "agent":  # a host's agent asks which nodes it starts
                frames.send(writer, "nodes", self.where.nodes_of(args[0]), self.where.last)
                self.agents.append(writer)
                continue
            if op == "hello":
                node = args[0]
                self.writers[node] = writer
                frames.send(writer, "modules", hosts.experiment_modules(self.algorithm))
                job = {"settings": self.settings, "graph": self.graph, "roles": self.role_names}
                job |= {"drives": self.drives, "plan": self.watchdog.schedule.plan}  # all nodes'
                frames.send(writer, "job", job)
            elif op in ("sent", "arrived", "lost"):
                getattr(self.ledger, op)(*args)
                self.watchdog.saw(op, args)
            else:
                getattr(self, "_on_" + op)(*args)
        if node is not None and node not in self.finals and not (self.end.done() or self.closed):
            code = self.where.exit_code(self.procs, node)
            why = f"node {node}'s process ended unexpectedly (exit status {code})"
            self._finish(RealRunError(f"run {self.name!r}: {why}"))

    def _on_ready(self, node: int, address: tuple[str, int], tcp: str | None) -> None:
        self.addresses[node], self.tcp[node] = address, tcp
        if len(self.addresses) == len(self.roles):
            self.ready.set()

    def _on_error(self, node: int, what: str, text: str) -> None:
        if text:
            print(text, file=sys.stderr, end="" if text.endswith("\n") else "\n")
        self._finish(RealRunError(f"run {self.name!r}: {what}"))

    def _on_step(self, node: int, step: int, t_start: float, t_end: float, loss: float) -> None:
        self.watchdog.progress(t_end, t_end - t_start)
        reached = self.recorder.steps_reached()
        self.recorder.step(node, step, t_start, t_end, loss)
        now = self.recorder.steps_reached()
        if now > reached:
            if self.settings.lr_schedule != "constant":
                for writer in self.writers.values():
                    frames.send(writer, "reached", now)
            every = self.settings.eval_every
            if isinstance(every, int) and now % every == 0:
                self._ask_snapshots()
        stop = hooks.stop(self.algorithm, self.settings.stop)
        budget = self.settings.steps
        if stop == "first" and self.roles[node] == "worker" and budget and step >= budget:
            self._finish()

    def _on_drove(self, node: int) -> None:
        self.driving.discard(node)
        if not self.driving:
            self._finish()

    def _on_record(self, t: float, node: int, name: str, value: float) -> None:
        if name == "offline" and self.online is not None:  # the evaluated model may be an
            self.online[node] = not value  # online node's (AllReduceSGD)
        self.recorder.record(t, node, name, value)

    def _ask_snapshots(self) -> None:
        if self.pending_eval is not None or self.end.done():
            return
        self.pending_eval = self.now()
        self.snapshots.clear()
        for writer in self.writers.values():
            frames.send(writer, "snapshot", self.pending_eval)

    def _on_snapshot(self, node: int, t: float, x: torch.Tensor, b: torch.Tensor) -> None:
        self.snapshots[node] = (x, b)
        if len(self.snapshots) == len(self.roles) and self.pending_eval is not None:
            for i, (x, b) in self.snapshots.items():
                self.X[i], self.B[i] = x, b
            evaluate(self, "subset", self.pending_eval)
            self.pending_eval = None

    def _on_final(self, node: int, x: torch.Tensor, b: torch.Tensor, memory: dict) -> None:
        self.finals[node] = (x, b, memory)

    def global_model(self) -> torch.Tensor:
        return hooks.global_model(self.algorithm, self.X, self.roles, self.online)

    def global_buffers(self) -> torch.Tensor:
        if self.B.shape[1] == 0:
            return self.B[0]
        return hooks.global_model(self.algorithm, self.B, self.roles, self.online)


def run(name, settings, graph, run_dir: Path, progress, where) -> dict:
    """Runs one run of an experiment for real; returns its summary (as a simulation's)."""

    async def main():
        return await Coordinator(name, settings, graph, run_dir, progress, where).run()

    return asyncio.run(main())
