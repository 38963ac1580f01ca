"""One run checked completely before any run of its experiment starts.

Settings.validate holds each setting to its type and range; this adds what needs the data set,
the model or the machine: the device, the population's size (refused with the figures before
any graph is built: a hostile ``workers`` must not take minutes or the memory to refuse), the
graph, the algorithm's hyper-parameters and roles, the network against the nodes' roles, the
data split, and the results folder. Each mistake is one line; ``runner.check`` says which run.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

import numpy as np

import models
from netsim import data as datasets
from netsim.algorithms import hooks
from netsim.engine import calibration
from netsim.experiment import ConfigError, Settings
from netsim.network import faults
from netsim.workload import model_shape
from topologies import graphs

MAX_EDGES = 20_000_000  # a networkx graph holds about 140 bytes per edge: 2.8 GB


def preflight(settings: Settings):
    """Validates one run completely; returns the workers' graph and its nodes' roles."""
    settings.validate()
    check_device(settings.device)
    dataset = datasets.load(settings.data, settings.data_root)
    check_population(settings, dataset)
    graph = settings.graph()
    algorithm = settings.algorithm
    hooks.check(algorithm, graph.number_of_nodes())
    _, role_names = hooks.layout(algorithm, graph)
    for role in sorted({name for names in role_names for name in names}):
        if not inspect.iscoroutinefunction(getattr(algorithm, role, None)):
            raise ConfigError(
                f"algorithm {algorithm!r} has no role {role!r}: an algorithm is a dataclass "
                f"with one `async def {role}(self, node)` per role its nodes run"
            )
    roles = [r[0] for r in role_names]
    settings.network.resolve(roles)
    try:
        faults.plan(settings.faults, roles)
    except faults.FaultError as error:
        raise ConfigError(str(error)) from None
    workers = roles.count("worker")
    if settings.partition == "per_user" and dataset.train_users is None:
        raise ConfigError(
            f"partition='per_user' needs a data set split by user (femnist, celeba, movielens or "
            f"their synthetic_ stand-ins); {settings.data!r} is not: use partition='shards'"
        )
    if settings.partition == "per_user":
        datasets.partition_users(len(dataset.train_users), workers, np.random.default_rng(0))
    else:  # the split itself (labels only): too many nodes or shards are found now
        labels, rng = dataset.y_train.numpy(), np.random.default_rng([settings.seed, 1])
        kwargs = settings.partition_kwargs()
        datasets.partition(labels, workers, settings.partition, rng=rng, **kwargs)
    return graph, roles


def check_device(device: str) -> None:
    if not device.startswith("cuda"):
        return
    import torch

    index = int(device.partition(":")[2] or 0)
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        found = torch.cuda.device_count() if torch.cuda.is_available() else "no"
        raise ConfigError(
            f"device={device!r} but this machine has {found} CUDA GPU(s) that torch can use: "
            "set device='cpu' or 'auto'"
        )


def check_population(settings: Settings, dataset) -> None:
    """A graph too large to build, more workers than samples to share, a model that does not
    fit the data or the execution mode, or parameters that cannot fit in memory."""
    n = settings.worker_count
    if isinstance(settings.topology, str) and n > 1:
        options = {"k_regular": {"k": settings.degree}, "erdos_renyi": {"p": settings.p}}
        edges = graphs.edge_count(settings.topology, n, **options.get(settings.topology, {}))
        if edges > MAX_EDGES:
            raise ConfigError(
                f"topology={settings.topology!r} on {n:,} workers has about {edges:,.0f} "
                f"edges, more than netsim builds ({MAX_EDGES:,}): use a sparser topology "
                "(ring, torus, k_regular, exponential) or fewer workers"
            )
    samples = len(dataset.y_train)
    if settings.partition not in ("data_parallel", "per_user") and n > samples:
        raise ConfigError(
            f"cannot split {samples} samples over {n} nodes with partition="
            f"{settings.partition!r}: use fewer nodes or partition='data_parallel'"
        )
    ratings = getattr(dataset, "task", "classify") == "regress"
    if ratings != (settings.model == "mf"):
        raise ConfigError(
            f"model={settings.model!r} does not fit data={settings.data!r}: ratings (movielens) "
            "train model='mf', images a classifier"
        )
    template = models.build(settings.model, **model_shape(settings.model, dataset))
    why = calibration.unfit(template, classify=not ratings).get(settings.execution)
    if why is not None:
        raise ConfigError(
            f"execution={settings.execution!r} cannot run model {settings.model!r}: {why}; "
            "use execution='auto'"
        )
    parameters = sum(p.numel() for p in template.parameters())
    need, have = 4 * parameters * n, _memory(settings.device)
    if need > have:
        raise ConfigError(
            f"{n:,} workers of {settings.model} ({parameters:,} parameters each) need "
            f"{need / 1e9:,.1f} GB for their parameters alone; this machine has "
            f"{have / 1e9:,.1f} GB: use fewer workers or a smaller model"
        )


def _memory(device: str) -> int:
    """Bytes of memory where the parameters live: the GPU's, else this machine's."""
    if device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or 0)
        return torch.cuda.get_device_properties(index).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_out(out: Path) -> None:
    """The results folder can be written, found before any run starts, not after the first."""
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot write results under {str(out)!r} ({error.strerror}): pick another --out"
        ) from None
