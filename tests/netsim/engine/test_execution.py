"""Execution of steps in flight: every mode computes what eager sequential steps compute."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from netsim import Compute, Network
from netsim.algorithms import DPSGD, ops
from netsim.engine.execution import ExecutionError, Steps, Ticket
from netsim.engine.grouped import conv_chain
from netsim.engine.population import SGD
from netsim.engine.stacked import chain
from netsim.experiment import ConfigError

FAST = Network(bandwidth=1e15)
CASES = [
    ("mlp1", "stacked"),
    ("logistic", "stacked"),
    ("mlp", "stacked"),
    ("small_cnn", "vmap"),
    ("small_cnn", "grouped"),
    ("mcmahan_cnn", "grouped"),
]


def _gradients(make, model, mode, rows):
    sim = make(model=model, execution=mode)
    torch.manual_seed(1)
    sim.X.add_(torch.randn_like(sim.X), alpha=0.05)  # distinct rows
    rng = np.random.default_rng(0)
    tickets = [Ticket(i, rng.integers(0, 500, 16)) for i in rows]
    sim.engine.pending = {t.node: t for t in reversed(tickets)}  # submission order is free
    sim.engine.flush()
    return sim.G[rows].clone(), torch.tensor([t.loss for t in tickets])


@pytest.fixture
def make(tmp_path):
    from tests.conftest import make_simulation

    return lambda **kw: make_simulation(DPSGD(), tmp_path, workers=6, steps=1, **kw)


@pytest.mark.parametrize(("model", "mode"), CASES)
@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4, 5], [0, 2, 3, 5]])  # a block, scattered rows
def test_batched_modes_give_the_gradients_of_the_loop(make, model, mode, rows):
    g_loop, loss_loop = _gradients(make, model, "loop", rows)
    g, loss = _gradients(make, model, mode, rows)
    assert g.abs().max() > 0
    torch.testing.assert_close(g, g_loop, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss, loss_loop, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "mode", "momentum", "jitter"),
    [
        ("mlp1", "stacked", 0.9, 0.3),  # unequal steps: partial flushes
        ("mlp1", "stacked", 0.0, 0.0),  # plain SGD, steps ending together: fused updates
        ("small_cnn", "vmap", 0.9, 0.3),
        ("small_cnn", "grouped", 0.9, 0.3),
        ("small_cnn", "grouped", 0.0, 0.0),
    ],
)
def test_a_whole_run_in_a_batched_mode_matches_the_loop(simulate, model, mode, momentum, jitter):
    common = dict(
        model=model,
        workers=6,
        topology="ring",
        steps=6,
        momentum=momentum,
        weight_decay=1e-4,
        network=FAST,
        compute=Compute(step_time=0.1, jitter=jitter),
    )
    loop, _ = simulate(DPSGD(local_steps=2), execution="loop", **common)
    batched, summary = simulate(DPSGD(local_steps=2), execution=mode, **common)
    assert summary["execution"]["mode"] == mode
    assert summary["execution"]["steps_per_flush"] > 1
    assert (summary["execution"]["fused_steps"] == 6 * 6) == (momentum == 0 and mode == "stacked")
    torch.testing.assert_close(batched.X, loop.X, rtol=1e-4, atol=1e-5)


def test_steps_in_flight_are_computed_together(simulate):
    sim, summary = simulate(
        DPSGD(), workers=8, topology="ring", steps=3, network=FAST, execution="loop"
    )
    assert summary["execution"]["steps_per_flush"] == 8  # equal step times: all at once
    assert sim.engine.computed == 8 * 3


@dataclass(frozen=True)
class Meddler:
    """Node 0 trains one step; its second role writes node 0's parameters mid-step."""

    needs_connected = False
    layout = staticmethod(lambda graph: (graph, [("worker", "meddle")]))
    global_model = staticmethod(ops.worker_mean)

    async def worker(self, node):
        await node.train()

    async def meddle(self, node):
        await node.sleep(0.5)
        node.x.add_(1.0)


def test_a_write_mid_step_comes_after_the_gradient_as_with_eager_steps(tmp_path):
    from tests.conftest import make_simulation

    sims = []
    for defer in (True, False):
        sim = make_simulation(
            Meddler(),
            tmp_path / str(defer),
            workers=1,
            steps=1,
            model="mlp1",
            compute=Compute(step_time=1.0),
        )
        sim.engine.defer = defer
        sim.run()
        sims.append(sim)
    deferred, eager = sims
    assert deferred.X[0].sum() != 0
    torch.testing.assert_close(deferred.X, eager.X, rtol=0, atol=0)


def test_forcing_a_batched_mode_on_a_model_it_cannot_run_says_so(make):
    # before the run (netsim/preflight.py), and by the engine itself
    with pytest.raises(ConfigError, match="execution='stacked' cannot run model 'small_cnn'"):
        make(model="small_cnn", execution="stacked")
    with pytest.raises(ConfigError, match="execution='grouped' cannot run model 'mlp1'"):
        make(model="mlp1", execution="grouped")
    sim = make(model="mlp1", execution="loop")
    with pytest.raises(ExecutionError, match="execution='grouped' cannot run model 'mlp1'"):
        Steps(sim, sim.workload.template, "grouped")


def test_auto_picks_one_of_the_candidates_and_records_it(simulate):
    sim, summary = simulate(DPSGD(), model="mlp1", workers=4, steps=2, network=FAST)
    assert sim.engine.mode in sim.engine.candidates == ["loop", "stacked"]  # vmap: CUDA only
    assert summary["execution"]["mode"] == sim.engine.mode
    config = (sim.recorder.dir / "config.json").read_text()
    assert f'"execution": "{sim.engine.mode}"' in config


def test_chain_detection():
    nn = torch.nn
    assert chain(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))) is not None
    assert chain(nn.Sequential(nn.Conv2d(1, 1, 3))) is None
    assert chain(nn.Sequential(nn.ReLU())) is None
    conv = [nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)]
    assert conv_chain(nn.Sequential(*conv)) is not None
    assert conv_chain(nn.Sequential(*conv[3:])) is None  # no convolution: stacked's
    assert conv_chain(nn.Sequential(*conv[:3])) is None  # no Flatten and Linear
    assert conv_chain(nn.Sequential(*conv[:3], nn.BatchNorm2d(2), *conv[3:])) is None
    assert conv_chain(nn.Sequential(*conv[:4], nn.Conv2d(2, 2, 1), *conv[4:])) is None


@pytest.mark.parametrize("model", ["small_cnn", "mcmahan_cnn", "femnist_cnn", "cifar_cnn"])
def test_the_grouped_kernel_takes_the_chains_of_the_model_zoo(model):
    import models

    shape = {"in_channels": 1, "num_classes": 10, "image_size": 28}
    if model == "cifar_cnn":
        shape = {"in_channels": 3, "num_classes": 10, "image_size": 32}
    assert conv_chain(models.build(model, **shape)) is not None


@pytest.mark.parametrize(
    ("momentum", "weight_decay", "nesterov"), [(0, 0, False), (0.9, 1e-3, False), (0.9, 0, True)]
)
def test_population_sgd_is_torch_sgd_bit_for_bit(momentum, weight_decay, nesterov):
    torch.manual_seed(0)
    X, G = torch.randn(3, 50), torch.zeros(3, 50)
    mine = SGD(X, G, momentum, weight_decay, nesterov=nesterov)
    ref = torch.nn.Parameter(X[1].clone())
    torch_sgd = torch.optim.SGD(
        [ref], lr=0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )
    for lr in (0.1, 0.05, 0.02):
        g = torch.randn(50)
        G[1].copy_(g)
        ref.grad = g.clone()
        for group in torch_sgd.param_groups:
            group["lr"] = lr
        mine.step(1, lr)
        torch_sgd.step()
        assert torch.equal(X[1], ref.detach())
    assert (mine.M is None) == (momentum == 0)


@dataclass(frozen=True)
class Fanout:
    """Node 0 sends its model to nodes 1 and 2, steps, then sends to node 1 again."""

    needs_connected = False
    layout = staticmethod(ops.solo)
    global_model = staticmethod(ops.worker_mean)

    async def worker(self, node):
        if node.id == 0:
            node.send(1, "m", x=node.x)
            node.send(2, "m", x=node.x)
            await node.train()
            node.send(1, "m", x=node.x)
            return
        for _ in range(2 if node.id == 1 else 1):
            node.state.setdefault("got", []).append(await node.recv("m"))


def test_a_model_sent_to_several_peers_is_copied_once_and_never_changes(simulate):
    sim, _ = simulate(Fanout(), workers=3, steps=1, network=FAST, topology="complete")
    first, later = sim.nodes[1].state["got"]
    (other,) = sim.nodes[2].state["got"]
    assert first.x is other.x  # one snapshot for both
    assert later.x is not first.x  # the step wrote the row: a fresh copy
    assert not torch.equal(first.x, later.x)
    assert torch.equal(later.x, sim.X[0])


@pytest.mark.parametrize(
    ("model", "mode"), [("mlp1", "stacked"), ("small_cnn", "vmap"), ("small_cnn", "grouped")]
)
@pytest.mark.parametrize("limit", [None, 20_000])  # a small limit: chunks, and models alone
def test_evaluating_many_models_batched_equals_one_at_a_time(make, model, mode, limit, monkeypatch):
    if limit is not None:
        monkeypatch.setattr("netsim.engine.evaluation._EVAL_FLOATS", limit)
    sim = make(model=model, execution=mode)
    torch.manual_seed(2)
    sim.X.add_(torch.randn_like(sim.X), alpha=0.05)
    which = ["subset", torch.arange(7), torch.arange(30, 130), "subset"]
    rows = sim.X[:4]
    batched = sim.evaluator.many(rows, sim.B[:4], which, sim.engine)
    alone = [sim.evaluator(rows[r], sim.B[r], w) for r, w in enumerate(which)]
    for (a, loss, n), (a2, loss2, n2) in zip(batched, alone, strict=True):
        assert n == n2 and a == pytest.approx(a2, abs=1e-9)
        assert loss == pytest.approx(loss2, rel=1e-4)


def test_eval_nodes_adds_rows_for_sampled_workers(simulate):
    sim, _ = simulate(
        DPSGD(), model="mlp1", workers=6, steps=4, eval_every=2, eval_nodes=2, network=FAST
    )
    lines = (sim.recorder.dir / "evals.csv").read_text().splitlines()[1:]
    nodes = {line.split(",")[1] for line in lines}
    assert nodes == {"global", *map(str, sim.sampled)} and len(sim.sampled) == 2


def test_pending_rows_are_cut_into_blocks_and_small_gathers():
    from netsim.engine.execution import _BLOCK, _GATHER, _pieces

    nodes = list(range(100, 100 + _BLOCK)) + list(range(200, 200 + 2 * (_GATHER + 5), 2))
    pieces = _pieces([Ticket(i, np.zeros(1)) for i in sorted(nodes)])
    sizes = sorted(len(p) for p in pieces)
    assert sum(sizes) == len(nodes)
    assert max(sizes) == _GATHER and _BLOCK in sizes
    block = next(p for p in pieces if p[0].node == 100)
    assert [t.node for t in block] == list(range(100, 100 + _BLOCK))


def test_masked_average_in_place_equals_the_copying_one():
    from netsim.algorithms.sharing import masked_average, masked_average_

    torch.manual_seed(0)
    x, a, b = torch.randn(3, 20)
    mask = torch.rand(20) > 0.5
    for received in ([(a, None, 0.25), (b, None, 0.25)], [(a, mask, 0.3), (b, None, 0.2)]):
        expected = masked_average(x, 0.5, received)
        mine = x.clone()
        assert masked_average_(mine, 0.5, received) is mine
        torch.testing.assert_close(mine, expected)


def test_the_evaluator_knows_the_widest_activation_per_sample(make):
    # small_cnn on 28 x 28 images: its first convolution has 16 channels of 28 x 28
    assert make(model="small_cnn").evaluator.width == 16 * 28 * 28
    assert make(model="mlp1").evaluator.width == 784
