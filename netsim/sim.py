"""Simulation: builds the clock, network, population and nodes; starts roles; runs; records.

The population tensor X (nodes x parameters) holds every node's parameters as rows; each node's
nn.Module parameters are views into its row and its gradients views into G, so torch.optim works
unchanged and mixing across nodes is plain tensor algebra on X.
"""

from __future__ import annotations

import copy
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
from netsim.experiment import Settings
from netsim.fabric import Fabric
from netsim.metrics import Recorder
from netsim.node import Node
from netsim.units import parse_time

EVAL_BATCH = 2000


class SimulationError(RuntimeError):
    pass


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bind(module: torch.nn.Module, x: torch.Tensor, g=None, b=None) -> None:
    """Makes the module's parameters views into the flat vector x, their grads views into g,
    and its floating buffers (BatchNorm statistics) views into b."""
    offset = 0
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is None:
                continue
            n = p.numel()
            view = torch.nn.Parameter(x[offset : offset + n].view_as(p))
            if g is not None:
                view.grad = g[offset : offset + n].view_as(p)
            sub._parameters[name] = view
            offset += n
    offset = 0
    for sub, name, buffer in _float_buffers(module) if b is not None else ():
        sub._buffers[name] = b[offset : offset + buffer.numel()].view_as(buffer)
        offset += buffer.numel()


def flatten(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def flatten_buffers(module: torch.nn.Module) -> torch.Tensor:
    """The floating buffers as one vector (empty for models without BatchNorm)."""
    parts = [buffer.reshape(-1) for _, _, buffer in _float_buffers(module)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _float_buffers(module: torch.nn.Module):
    # integer buffers (BatchNorm's step counter) stay in each module: they are not averaged
    return [
        (sub, name, buffer)
        for sub in module.modules()
        for name, buffer in sub._buffers.items()
        if buffer is not None and buffer.is_floating_point()
    ]


class Simulation:
    def __init__(self, name: str, settings: Settings, graph, run_dir: Path, progress=True):
        self.name, self.settings, self.algorithm = name, settings, settings.algorithm
        self.seed = settings.seed
        self.env = simpy.Environment()
        self.device = resolve_device(settings.device)
        self.dataset = datasets.load(settings.data, settings.data_root)
        self.x_train = self.dataset.x_train.to(self.device)
        self.y_train = self.dataset.y_train.to(self.device)
        self.graph, roles = self.algorithm.layout(graph)
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
        self.G = torch.zeros_like(self.X)
        self.B = flatten_buffers(template).to(self.device).repeat(n, 1)
        ends = np.cumsum([p.numel() for p in template.parameters()]).tolist()
        self.segments = list(zip([0, *ends[:-1]], ends, strict=True))
        flops = models.flops_per_sample(template, self.dataset.input_shape)
        self.base_step_seconds = self.compute.base_seconds(settings.batch, flops)
        self.evaluator = _Evaluator(template.to(self.device), self.dataset, self.device, settings)

        parts = datasets.partition(
            self.dataset.y_train.numpy(),
            len(self.workers),
            settings.partition,
            rng=np.random.default_rng([self.seed, 1]),
            **settings.partition_kwargs(),
        )
        local = dict(zip(self.workers, parts, strict=True))
        speeds = self.compute.speeds(self.roles, np.random.default_rng([self.seed, 2]))
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
        self.nodes = []
        for i, role in enumerate(self.roles):
            module = copy.deepcopy(template).to(self.device)
            bind(module, self.X[i], self.G[i], self.B[i])
            optimizer = torch.optim.SGD(
                module.parameters(),
                lr=settings.lr,
                momentum=settings.momentum,
                weight_decay=settings.weight_decay,
            )
            batches = (
                datasets.LocalData(local[i], settings.batch, self.node_rng(i, 1))
                if i in local
                else None
            )
            self.nodes.append(Node(self, i, role, module, optimizer, batches, speeds[i]))
        self._role_names = roles
        self._stop = self.env.event()

    def _model_shape(self) -> dict:
        c, h, _ = self.dataset.input_shape
        kwargs = {"num_classes": self.dataset.num_classes}
        return kwargs | (
            {"in_features": c * h * h}
            if self.settings.model == "mlp"
            else {"in_channels": c, "image_size": h}
        )

    def node_rng(self, i: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, 100 + stream, i])

    def dataset_train(self, idx: torch.Tensor):
        idx = idx.to(self.device)
        return self.x_train[idx], self.y_train[idx]

    def budget_spent(self, node: Node) -> bool:
        if self.until is not None and self.env.now >= self.until:
            return True
        return self.steps_budget is not None and node.steps >= self.steps_budget

    def _on_message(self, message) -> None:
        self.recorder.message(message)
        if not message.dropped:
            self.nodes[message.dst].deliver(message)

    def global_model(self) -> torch.Tensor:
        return self.algorithm.global_model(self.X, self.roles)

    def global_buffers(self) -> torch.Tensor:
        if self.B.shape[1] == 0:
            return self.B[0]
        return self.algorithm.global_model(self.B, self.roles)

    def evaluate(self, split: str) -> None:
        accuracy, loss = self.evaluator(
            self.global_model(), self.global_buffers(), full=split == "test"
        )
        self.recorder.evaluation(self.env.now, "global", split, accuracy, loss)

    def record_step(self, node: Node, t_start: float, loss: float) -> None:
        reached = self.recorder.steps_reached()
        self.recorder.step(node.id, node.steps, t_start, self.env.now, loss)
        every = self.settings.eval_every
        if isinstance(every, int) and self.recorder.steps_reached() > reached:
            if self.recorder.steps_reached() % every == 0:
                self.evaluate("subset")
        if (
            getattr(self.algorithm, "stop", self.settings.stop) == "first"
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
                if role in getattr(self.algorithm, "drives", ("worker",)):
                    workers.append(process)
        runtime.spawn(self.env, self._observer())
        until = simpy.AllOf(self.env, workers) | self._stop
        if self.until is not None:
            until = until | self.env.timeout(self.until)
        return until

    def run(self) -> dict:
        started = time.perf_counter()
        until = self.start()
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
        self.evaluate("test")
        summary = self.recorder.summary(
            self.name,
            getattr(self.algorithm, "label", type(self.algorithm).__name__),
            self.env.now,
            time.perf_counter() - started,
        )
        self.recorder.close(summary)
        return summary


class _Evaluator:
    """Test accuracy of one flat parameter vector: an observer, it costs no simulated time."""

    def __init__(self, template, dataset, device, settings: Settings):
        self.module = copy.deepcopy(template)
        self.x = flatten(self.module).clone()
        self.b = flatten_buffers(self.module).to(self.x.device)
        bind(self.module, self.x, b=self.b)
        self.module.eval()
        order = np.random.default_rng(0).permutation(len(dataset.y_test))
        subset = torch.from_numpy(order[: settings.eval_subset])
        self.full = (dataset.x_test.to(device), dataset.y_test.to(device))
        self.subset = (self.full[0][subset.to(device)], self.full[1][subset.to(device)])

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, b: torch.Tensor, full: bool) -> tuple[float, float]:
        self.x.copy_(x)
        self.b.copy_(b)
        inputs, targets = self.full if full else self.subset
        correct, loss = 0, 0.0
        for start in range(0, len(targets), EVAL_BATCH):
            logits = self.module(inputs[start : start + EVAL_BATCH])
            y = targets[start : start + EVAL_BATCH]
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
        return correct / len(targets), loss / len(targets)
