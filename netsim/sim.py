"""Simulation: builds the clock, network, population and nodes; starts roles; runs; records.

The population tensor X (nodes x parameters) holds every node's parameters as rows; each node's
nn.Module parameters are views into its row and its gradients views into G, so torch.optim works
unchanged and mixing across nodes is plain tensor algebra on X.
"""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path

import numpy as np
import simpy
import torch
import torch.nn.functional as F
from tqdm import tqdm

import models
from netsim import data as datasets
from netsim import runtime
from netsim.algorithms import hooks
from netsim.engine import calibration
from netsim.engine.evaluation import Evaluator, combine
from netsim.engine.execution import Steps
from netsim.engine.population import SGD, flatten, flatten_buffers, zeros
from netsim.experiment import Settings
from netsim.network.fabric import Fabric
from netsim.node import Node
from netsim.results.recorder import Recorder
from netsim.units import parse_time


class SimulationError(RuntimeError):
    pass


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Simulation:
    def __init__(self, name: str, settings: Settings, graph, run_dir: Path, progress=True):
        self.name, self.settings, self.algorithm = name, settings, settings.algorithm
        self.seed = settings.seed
        self.env = simpy.Environment()
        self.device = resolve_device(settings.device)
        self.dataset = datasets.load(settings.data, settings.data_root)
        # images as bytes, normalized where batches are gathered (data.Dataset)
        self.raw_train = self.dataset.raw_train.to(self.device)
        self.lut = None if self.dataset.lut is None else self.dataset.lut.to(self.device)
        self.y_train = self.dataset.y_train.to(self.device)
        self.graph, roles = hooks.layout(self.algorithm, graph)
        self.roles = [r[0] for r in roles]
        self.workers = [i for i, role in enumerate(self.roles) if role == "worker"]
        self.compute = settings.compute
        self.steps_budget = settings.steps
        self.until = parse_time(settings.until) if settings.until is not None else None

        torch.manual_seed(self.seed)
        template = models.build(settings.model, **self._model_shape())
        x0 = flatten(template).to(self.device)
        n = len(self.roles)
        self.X = x0.repeat(n, 1)
        self.G = zeros(self.X.shape, self.device)
        self.B = flatten_buffers(template).to(self.device).repeat(n, 1)
        ends = np.cumsum([p.numel() for p in template.parameters()]).tolist()
        self.segments = list(zip([0, *ends[:-1]], ends, strict=True))
        flops = models.flops_per_sample(template, self.dataset.input_shape)
        self.base_step_seconds = self.compute.base_seconds(settings.batch, flops)
        self.evaluator = Evaluator(
            template.to(self.device), self.dataset, self.device, settings.eval_subset
        )
        self.loss_fn = F.mse_loss if self.evaluator.regress else F.cross_entropy

        parts, self.local_test = self._partition(np.random.default_rng([self.seed, 1]))
        local = dict(zip(self.workers, parts, strict=True))
        slowdowns = self.compute.slowdowns(self.roles, np.random.default_rng([self.seed, 2]))
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
            "parameters": x0.numel(),
        }
        self.recorder = Recorder(run_dir, config, self.roles, self.progress)
        self.fabric = Fabric(
            self.env,
            settings.network,
            self.roles,
            np.random.default_rng([self.seed, 3]),
            self._on_message,
        )
        self.optimizer = SGD(self.X, self.G, settings.momentum, settings.weight_decay)
        # BatchNorm updates its statistics in the forward pass, so such models step eagerly;
        # calibrated compute times need each step's wall time, so those do too
        defer = self.B.shape[1] == 0 and not self.compute.calibrate
        self.engine = Steps(self, template, settings.execution, defer=defer)
        if settings.execution == "auto":
            self.engine.mode, self.engine.timings = calibration.choose(self.engine)
        self.recorder.config(execution=self.engine.mode)
        self.nodes = []
        for i, role in enumerate(self.roles):
            batches = (
                datasets.LocalData(local[i], settings.batch, self.node_rng(i, 1))
                if i in local
                else None
            )
            self.nodes.append(Node(self, i, role, batches, slowdowns[i]))
        self._role_names = roles
        # eval_nodes workers, drawn once so that their curves follow the same nodes
        picked = np.random.default_rng([self.seed, 4]).permutation(self.workers)
        self.sampled = sorted(picked[: settings.eval_nodes].tolist())
        self._stop = self.env.event()

    def _model_shape(self) -> dict:
        if getattr(self.dataset, "task", "classify") == "regress":  # ratings: embedding sizes
            return {"num_users": self.dataset.num_users, "num_items": self.dataset.num_items}
        c, h, _ = self.dataset.input_shape
        kwargs = {"num_classes": self.dataset.num_classes}
        return kwargs | (
            {"in_features": c * h * h}
            if self.settings.model in ("logistic", "mlp", "mlp1")
            else {"in_channels": c, "image_size": h}
        )

    def lr(self) -> float:
        """The learning rate now: constant, or cosine-decayed by the steps every worker reached."""
        settings = self.settings
        if settings.lr_schedule == "constant":
            return settings.lr
        progress = min(self.recorder.steps_reached() / settings.steps, 1.0)
        return settings.lr * (1 + math.cos(math.pi * progress)) / 2

    def node_rng(self, i: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, 100 + stream, i])

    def dataset_train(self, idx: torch.Tensor):
        idx = idx.to(self.device)
        return datasets.decode(self.raw_train[idx], self.lut), self.y_train[idx]

    def budget_spent(self, node: Node) -> bool:
        if self.until is not None and self.env.now >= self.until:
            return True
        return self.steps_budget is not None and node.steps >= self.steps_budget

    def _on_message(self, message) -> None:
        self.recorder.message(message)
        if not message.dropped:
            self.nodes[message.dst].deliver(message)

    def global_model(self) -> torch.Tensor:
        return hooks.global_model(self.algorithm, self.X, self.roles)

    def global_buffers(self) -> torch.Tensor:
        if self.B.shape[1] == 0:
            return self.B[0]
        return hooks.global_model(self.algorithm, self.B, self.roles)

    def _partition(self, rng: np.random.Generator):
        """Each worker's training indices, and for per-user data its users' test indices."""
        settings, ds, n = self.settings, self.dataset, len(self.workers)
        if settings.partition != "per_user":
            labels = ds.y_train.numpy()
            parts = datasets.partition(
                labels, n, settings.partition, rng=rng, **settings.partition_kwargs()
            )
            return parts, None
        groups = datasets.partition_users(len(ds.train_users), n, rng)
        gather = lambda users, g: np.concatenate([users[u] for u in g]).astype(np.int64)
        tests = [torch.from_numpy(gather(ds.test_users, g)).to(self.device) for g in groups]
        return [gather(ds.train_users, g) for g in groups], tests

    def evaluate(self, split: str) -> None:
        """The global model on the test subset (during the run) or the full test set (at the
        end), and the eval_nodes sampled workers' own models on the same samples; with
        eval_local, every worker's own model on its users' test samples instead."""
        if self.settings.eval_local:
            results = self.evaluator.many(
                self.X[self.workers], self.B[self.workers], self.local_test, self.engine
            )
            for i, result in zip(self.workers, results, strict=True):
                self.recorder.evaluation(self.env.now, i, split, *result[:2])
            self.recorder.evaluation(
                self.env.now, "global", split, *combine(results, self.evaluator.regress)
            )
            return
        accuracy, loss, _ = self.evaluator(self.global_model(), self.global_buffers(), split)
        self.recorder.evaluation(self.env.now, "global", split, accuracy, loss)
        if self.sampled:
            results = self.evaluator.many(
                self.X[self.sampled], self.B[self.sampled], [split] * len(self.sampled), self.engine
            )
            for i, result in zip(self.sampled, results, strict=True):
                self.recorder.evaluation(self.env.now, i, split, *result[:2])

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
                await runtime.sleep(self.env, parse_time(every))
                self.evaluate("subset")

    def start(self) -> simpy.Event:
        """Spawns every role and the observer; returns the event that ends the run."""
        workers = []
        for node, names in zip(self.nodes, self._role_names, strict=True):
            for role in names:
                process = runtime.spawn(self.env, getattr(self.algorithm, role)(node))
                if role in hooks.drives(self.algorithm):
                    workers.append(process)
        runtime.spawn(self.env, self._observer())
        until = simpy.AllOf(self.env, workers) | self._stop
        if self.until is not None:
            until = until | self.env.timeout(self.until)
        return until

    def run(self) -> dict:
        started = time.perf_counter()
        until = self.start()
        # Objects alive now (torch's ~200,000 among them) live through the run: keep Python's
        # collector from rescanning them at every full collection, a fifth of the time of
        # message-heavy runs. Unfrozen at the end unless the caller had frozen first.
        frozen = gc.get_freeze_count() == 0
        if frozen:
            gc.freeze()
        try:
            self.env.run(until=until)
        except RuntimeError as exc:
            self.recorder.close()
            if "No scheduled events left" not in str(exc):
                raise
            raise SimulationError(
                f"run {self.name!r} stalled at t={self.env.now:.3f}s: every role waits for a "
                "message that never comes; check the algorithm's settings and the topology"
            ) from None
        except BaseException:  # interrupted: keep every row written so far
            self.recorder.close()
            raise
        finally:
            self.progress.close()
            if frozen:
                gc.unfreeze()
        self.evaluate("test")
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
        self.recorder.close(summary)
        return summary
