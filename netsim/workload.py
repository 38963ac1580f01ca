"""What a run trains, built the same way by both runtimes from the run's settings and seed.

The data set, the model's initial parameters (one seed: every node starts from the same x0),
each worker's share of the training data, each node's slowdown factor and per-node random
streams are functions of the settings alone, so a simulated run and a real one (where every
process builds its own copy) train the same nodes on the same samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

import models
from netsim import data as datasets
from netsim.engine.population import flatten, flatten_buffers
from netsim.experiment import Settings


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_shape(model: str, dataset) -> dict:
    """The arguments that fit the model to the data set's inputs and classes (or users)."""
    if getattr(dataset, "task", "classify") == "regress":  # ratings: embedding sizes
        return {"num_users": dataset.num_users, "num_items": dataset.num_items}
    c, h, _ = dataset.input_shape
    kwargs = {"num_classes": dataset.num_classes}
    return kwargs | (
        {"in_features": c * h * h}
        if model in ("logistic", "mlp", "mlp1")
        else {"in_channels": c, "image_size": h}
    )


class Workload:
    """The data, the model template, x0 and each worker's data for one run's nodes."""

    def __init__(self, settings: Settings, roles: list[str], device: torch.device):
        self.settings, self.seed, self.device = settings, settings.seed, device
        self.roles = roles
        self.workers = [i for i, role in enumerate(roles) if role == "worker"]
        self.dataset = datasets.load(settings.data, settings.data_root)
        # images as bytes, normalized where batches are gathered (data.Dataset)
        self.raw_train = self.dataset.raw_train.to(device)
        self.lut = None if self.dataset.lut is None else self.dataset.lut.to(device)
        self.y_train = self.dataset.y_train.to(device)
        self.regress = getattr(self.dataset, "task", "classify") == "regress"
        self.loss_fn = F.mse_loss if self.regress else F.cross_entropy
        torch.manual_seed(self.seed)
        self.template = models.build(settings.model, **self._model_shape())
        self.x0 = flatten(self.template).to(device)
        self.b0 = flatten_buffers(self.template).to(device)
        ends = np.cumsum([p.numel() for p in self.template.parameters()]).tolist()
        self.segments = list(zip([0, *ends[:-1]], ends, strict=True))
        flops = models.flops_per_sample(self.template, self.dataset.input_shape)
        self.base_step_seconds = settings.compute.base_seconds(settings.batch, flops)
        parts, self.local_test = self._partition(np.random.default_rng([self.seed, 1]))
        self.parts = dict(zip(self.workers, parts, strict=True))
        self.slowdowns = settings.compute.slowdowns(roles, np.random.default_rng([self.seed, 2]))
        # eval_nodes workers, drawn once so that their curves follow the same nodes
        picked = np.random.default_rng([self.seed, 4]).permutation(self.workers)
        self.sampled = sorted(picked[: settings.eval_nodes].tolist())

    def _model_shape(self) -> dict:
        return model_shape(self.settings.model, self.dataset)

    def node_rng(self, i: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, 100 + stream, i])

    def local_data(self, i: int) -> datasets.LocalData | None:
        """Node i's batch walker over its training indices (None for a node with no data)."""
        if i not in self.parts:
            return None
        return datasets.LocalData(self.parts[i], self.settings.batch, self.node_rng(i, 1))

    def dataset_train(self, idx: torch.Tensor):
        idx = idx.to(self.device)
        return datasets.decode(self.raw_train[idx], self.lut), self.y_train[idx]

    def lr(self, reached: int) -> float:
        """The learning rate once every worker reached ``reached`` steps (constant or cosine)."""
        settings = self.settings
        if settings.lr_schedule == "constant":
            return settings.lr
        progress = min(reached / settings.steps, 1.0)
        return settings.lr * (1 + math.cos(math.pi * progress)) / 2

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
