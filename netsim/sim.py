"""Simulation: builds the clock, network, population and nodes; starts roles; runs; records.

The population tensor X (nodes x parameters) holds every node's parameters as rows; each node's
nn.Module parameters are views into its row and its gradients views into G, so torch.optim works
unchanged and mixing across nodes is plain tensor algebra on X.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import simpy
import torch
from tqdm import tqdm

from netsim import interrupts, runtime
from netsim.algorithms import hooks
from netsim.engine import calibration
from netsim.engine.evaluation import Evaluator, evaluate
from netsim.engine.execution import Steps
from netsim.engine.population import SGD, zeros
from netsim.experiment import Settings
from netsim.lives import Lives, Stalled
from netsim.network.fabric import Fabric
from netsim.node import Node
from netsim.results.recorder import Recorder, stopped_by
from netsim.units import parse_time
from netsim.workload import Workload, resolve_device


class SimulationError(RuntimeError):
    pass


class Simulation:
    def __init__(self, name: str, settings: Settings, graph, run_dir: Path, progress=True):
        self.name, self.settings, self.algorithm = name, settings, settings.algorithm
        self.seed = settings.seed
        self.env = simpy.Environment()
        self.device = resolve_device(settings.device)
        self.graph, roles = hooks.layout(self.algorithm, graph)
        self.roles = [r[0] for r in roles]
        self.workload = work = Workload(settings, self.roles, self.device)
        self.dataset, self.raw_train, self.lut = work.dataset, work.raw_train, work.lut
        self.workers, self.segments, self.loss_fn = work.workers, work.segments, work.loss_fn
        self.base_step_seconds = work.base_step_seconds
        self.dataset_train, self.node_rng = work.dataset_train, work.node_rng
        self.compute = settings.compute
        self.steps_budget = settings.steps
        self.until = parse_time(settings.until) if settings.until is not None else None

        n = len(self.roles)
        self.X = work.x0.repeat(n, 1)
        self.G = zeros(self.X.shape, self.device)
        self.B = work.b0.repeat(n, 1)
        template = work.template
        self.evaluator = Evaluator(
            template.to(self.device), self.dataset, self.device, settings.eval_subset
        )
        self.local_test = work.local_test
        total = settings.steps * len(self.workers) if settings.steps else None
        self.progress = tqdm(
            total=total,
            desc=name,
            unit="step",
            leave=False,
            disable=not progress,
            dynamic_ncols=True,
        )
        config = settings.describe() | {
            "run": name,
            "roles": self.roles,
            "workers": len(self.workers),
            "parameters": work.x0.numel(),
            "runtime": "sim",
        }
        self.recorder = Recorder(run_dir, config, self.roles, self.progress)
        self.lives = Lives(self)
        self.fabric = Fabric(
            self.env,
            settings.network,
            self.roles,
            np.random.default_rng([self.seed, 3]),
            self._on_message,
            self.lives.outages,
        )
        self.optimizer = SGD(self.X, self.G, settings.momentum, settings.weight_decay)
        # BatchNorm updates its statistics in the forward pass, so such models step eagerly;
        # calibrated compute times need each step's wall time, so those do too
        defer = self.B.shape[1] == 0 and not self.compute.calibrate
        self.engine = Steps(self, template, settings.execution, defer=defer)
        if settings.execution == "auto":
            self.engine.mode = calibration.rule(self.engine)
        elif settings.execution == "calibrate":
            self.engine.mode, self.engine.timings = calibration.choose(self.engine)
        self.recorder.config(execution=self.engine.mode)
        self.nodes = []
        for i, role in enumerate(self.roles):
            self.nodes.append(Node(self, i, role, work.local_data(i), work.slowdowns[i]))
        self.role_names = list(roles)  # each node's roles, the first its kind
        # eval_nodes workers, drawn once so that their curves follow the same nodes
        self.sampled = work.sampled
        self._stop = self.env.event()

    def lr(self) -> float:
        """The learning rate now: constant, or cosine-decayed by the steps every worker reached."""
        return self.workload.lr(self.recorder.steps_reached())

    def budget_spent(self, node: Node) -> bool:
        if self.until is not None and self.env.now >= self.until:
            return True
        return self.steps_budget is not None and node.steps >= self.steps_budget

    def _on_message(self, message) -> None:
        self.recorder.message(message)
        if not message.dropped:
            self.nodes[message.dst].deliver(message)

    def global_model(self) -> torch.Tensor:
        return hooks.global_model(self.algorithm, self.X, self.roles, self._online())

    def _online(self) -> list[bool] | None:
        return None if self.lives.outages is None else [not gone for gone in self.lives.gone]

    def global_buffers(self) -> torch.Tensor:
        if self.B.shape[1] == 0:
            return self.B[0]
        return hooks.global_model(self.algorithm, self.B, self.roles, self._online())

    def evaluate(self, split: str) -> None:
        evaluate(self, split, self.env.now)

    def record_step(self, node: Node, t_start: float, loss: float) -> None:
        reached = self.recorder.steps_reached()
        self.recorder.step(node.id, node.steps, t_start, self.env.now, loss)
        every = self.settings.eval_every
        now = self.recorder.steps_reached()
        if isinstance(every, int) and now > reached:
            if now % every == 0:
                self.evaluate("subset")
        if (
            hooks.stop(self.algorithm, self.settings.stop) == "first"
            and node.role == "worker"
            and self.budget_spent(node)
            and not self._stop.triggered
        ):
            self._stop.succeed()

    async def _observer(self):
        """Evaluates every ``eval_every`` simulated seconds (step schedules: see record_step)."""
        self.evaluate("subset")
        every = self.settings.eval_every
        if isinstance(every, str):
            while True:
                tick = runtime.sleep(self.env, parse_time(every))
                self.lives.tick(tick.event)
                await tick
                self.evaluate("subset")
                self.lives.idle()

    def start(self) -> simpy.Event:
        """Spawns every role and the observer; returns the event that ends the run."""
        workers = []
        for node, names in zip(self.nodes, self.role_names, strict=True):
            workers += self.lives.spawn(node, names)
        runtime.spawn(self.env, self._observer())
        until = simpy.AllOf(self.env, self.lives.ends(workers)) | self._stop
        if self.until is not None:
            until = until | self.env.timeout(self.until)
        return until

    def _record_in_flight(self) -> None:
        """Messages on their way when the run ends: rows as sent and not delivered (once)."""
        for message in self.fabric.in_flight():
            if message.dropped:  # recorded already, before a late failure
                continue
            message.dropped, message.drop_reason = True, "in flight"
            self.recorder.message(message)

    def run(self) -> dict:
        started = time.perf_counter()
        try:
            self._run_clock()
            self._record_in_flight()
            self.evaluate("test")
        except BaseException as exc:  # stalled, failed or interrupted: keep what it reached
            with interrupts.stopping(exc):  # a second Ctrl-C or SIGTERM waits until it is kept
                self._record_in_flight()
                self.recorder.close(self._summary(started), stopped=stopped_by(exc))
            raise
        summary = self._summary(started)
        self.recorder.close(summary)
        return summary

    def _run_clock(self) -> None:
        until = self.start()
        # Objects alive now (torch's ~200,000 among them) live through the run: keep Python's
        # collector from rescanning them at every full collection, a fifth of the time of
        # message-heavy runs. Unfrozen at the end unless the caller had frozen first.
        frozen = gc.get_freeze_count() == 0
        if frozen:
            gc.freeze()
        try:
            self.env.run(until=until)
        except Stalled as stall:
            raise SimulationError(
                f"run {self.name!r} stalled at t={self.env.now:.3f}s: {stall}"
            ) from None
        except RuntimeError as exc:
            if "No scheduled events left" not in str(exc):
                raise
            raise SimulationError(
                f"run {self.name!r} stalled at t={self.env.now:.3f}s: {self.lives.why()}"
            ) from None
        finally:
            self.progress.close()
            if frozen:
                gc.unfreeze()

    def _summary(self, started: float) -> dict:
        summary = self.recorder.summary(
            self.name,
            hooks.label(self.algorithm),
            self.env.now,
            time.perf_counter() - started,
        )
        summary["execution"] = {  # wall-clock figures: summary.json, never config or CSV
            "mode": self.engine.mode,
            "calibration_s": self.engine.timings,
            "steps_per_flush": self.engine.computed / max(self.engine.flushes, 1),
            "fused_steps": self.engine.fused,
        }
        return summary
