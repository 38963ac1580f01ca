"""Node verbs: causality, gradients in the population tensor, mailbox semantics."""

import csv
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import netsim.node
from netsim import Compute, Network
from netsim.algorithms import DPSGD, RWM, FedAvg, GoSGD, P2PPull, ops

FAST = Network(bandwidth=1e15)


@dataclass(frozen=True)
class Probe:
    """Node 0 takes one 1 s step; node 1 asks for node 0's model mid-step and after it."""

    needs_connected = False

    def layout(self, graph):
        return graph, [("worker", "serve"), ("worker",)]

    def global_model(self, X, roles):
        return X[0]

    async def worker(self, node):
        if node.id == 0:
            node.record("x_before", float(node.x.sum()))
            await node.train()
            node.record("x_after", float(node.x.sum()))
            return
        for t in (0.5, 1.5):
            await node.sleep(t - node.now)
            node.send(0, "pull")
            node.record(f"seen_at_{t}", float((await node.recv("model")).x.sum()))

    async def serve(self, node):
        while True:
            request = await node.recv("pull")
            node.send(request.src, "model", x=node.x)


def test_a_peer_reading_mid_step_sees_the_parameters_from_before_the_step(simulate):
    sim, summary = simulate(
        Probe(), workers=2, steps=5, network=FAST, compute=Compute(step_time=1.0)
    )
    rec = {name: v["mean"] for name, v in summary["records"].items()}
    assert rec["x_before"] != rec["x_after"]
    assert rec["seen_at_0.5"] == rec["x_before"]
    assert rec["seen_at_1.5"] == rec["x_after"]
    assert float(sim.X[0].sum()) == rec["x_after"]


@dataclass(frozen=True)
class GradOnly:
    needs_connected = False
    layout = staticmethod(ops.solo)
    global_model = staticmethod(ops.worker_mean)

    async def worker(self, node):
        before = node.x.clone()
        await node.gradient()
        node.record("unchanged", float(torch.equal(before, node.x)))
        node.record("grad_norm", float(node.g.norm()))
        node.apply(node.g)
        node.record("moved", float(not torch.equal(before, node.x)))


def test_gradient_lands_in_the_population_and_apply_uses_it(simulate):
    sim, summary = simulate(GradOnly(), workers=1, steps=1, compute=Compute(step_time=0.1))
    rec = {name: v["mean"] for name, v in summary["records"].items()}
    assert rec == {"unchanged": 1.0, "grad_norm": rec["grad_norm"], "moved": 1.0}
    assert rec["grad_norm"] > 0
    assert torch.equal(sim.G[0], sim.nodes[0].g)


@dataclass(frozen=True)
class Mailbox:
    """recv with a timeout gives None and must not swallow the next message."""

    needs_connected = False
    layout = staticmethod(ops.solo)
    global_model = staticmethod(ops.worker_mean)

    async def worker(self, node):
        if node.id == 0:
            await node.sleep(2.0)
            node.send(1, "ping", n=1)
            node.send(1, "ping", n=2)
            return
        node.record("timed_out", float(await node.recv("ping", timeout=1.0) is None))
        first = await node.recv("ping")
        await node.sleep(1.0)
        node.record("order", first.n * 10 + node.drain("ping")[0].n)
        node.record("empty", len(node.drain("ping")))


def test_recv_timeout_and_drain(simulate):
    _, summary = simulate(Mailbox(), workers=2, steps=1, network=FAST)
    rec = {name: v["mean"] for name, v in summary["records"].items()}
    assert rec == {"timed_out": 1.0, "order": 12.0, "empty": 0.0}


@dataclass(frozen=True)
class Scalars:
    needs_connected = False
    layout = staticmethod(ops.solo)
    global_model = staticmethod(ops.worker_mean)

    async def worker(self, node):
        node.record("np_float", np.float64(0.5))
        node.record("np_int", np.int64(3))
        node.record("torch", torch.tensor(0.25))
        node.record("int", 2)


def test_records_csv_holds_numpy_and_torch_scalars_as_plain_numbers(simulate):
    sim, summary = simulate(Scalars(), workers=1, steps=1)
    with open(sim.recorder.dir / "records.csv") as handle:
        rows = [(r["name"], r["value"]) for r in csv.DictReader(handle)]
    assert rows == [("np_float", "0.5"), ("np_int", "3"), ("torch", "0.25"), ("int", "2")]
    assert summary["records"]["torch"] == {"mean": 0.25, "max": 0.25}


def test_batchnorm_statistics_live_in_the_buffer_population():
    from torch import nn

    from netsim.engine.population import bind, flatten, flatten_buffers

    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    X, B = flatten(module).repeat(2, 1), flatten_buffers(module).repeat(2, 1)
    assert B.shape == (2, 4)  # running mean and variance of 2 channels; the step counter stays
    bind(module, X[1], None, B[1])
    module.train()
    module(torch.randn(4, 1, 5, 5))
    assert torch.equal(B[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert not torch.equal(B[1], B[0])
    assert torch.equal(module[1].running_mean, B[1, :2])


def test_a_bound_cnn_computes_what_its_template_does_with_channels_last_weights():
    import copy

    import torch.nn.functional as F

    import models
    from netsim.engine.population import bind, flat, flatten, view

    torch.manual_seed(0)
    template = models.build("small_cnn", in_channels=1, image_size=8, num_classes=3)
    module = copy.deepcopy(template)
    x = flatten(template)
    g = torch.zeros_like(x)
    bind(module, x, g)
    conv = module.features[3].weight  # 32 x 16 x 3 x 3
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert conv.data_ptr() - x.data_ptr() == 4 * (16 * 9 + 16)  # its segment, after conv1's
    inputs, targets = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    for net in (template, module):
        F.cross_entropy(net(inputs), targets).backward()
    expected = torch.cat([flat(p.grad) for p in template.parameters()])
    torch.testing.assert_close(g, expected)
    for p, q in zip(template.parameters(), module.parameters(), strict=True):
        assert torch.equal(p, q) and torch.equal(view(flat(p), p.shape), p)
    # a row in the layout is not the plain concatenation: the order is part of the format
    assert not torch.equal(x, torch.cat([p.detach().reshape(-1) for p in template.parameters()]))


def test_cosine_schedule_follows_the_steps_every_worker_reached(simulate):
    from netsim.algorithms import SGD

    sim, _ = simulate(SGD(), workers=1, steps=4, lr=0.2, lr_schedule="cosine")
    assert sim.lr() == pytest.approx(0.0, abs=1e-12)  # all 4 steps done
    sim.recorder.steps_reached = lambda: 2
    assert sim.lr() == pytest.approx(0.1)
    sim.recorder.steps_reached = lambda: 0
    assert sim.lr() == pytest.approx(0.2)


def test_the_collector_is_frozen_during_a_run_and_left_as_it_was(simulate):
    import gc

    from netsim.algorithms import DPSGD

    seen = []

    class Watching(DPSGD):
        async def worker(self, node):
            seen.append(gc.get_freeze_count())
            await super().worker(node)

    simulate(Watching(), workers=2, steps=1, network=FAST)
    assert seen and min(seen) > 0 and gc.get_freeze_count() == 0
    gc.freeze()  # a caller that froze first keeps its frozen objects frozen
    try:
        simulate(DPSGD(), workers=2, steps=1, network=FAST)
        assert gc.get_freeze_count() > 100_000  # not unfrozen (torch alone holds more)
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class Busy:
    """Node 0 applies two updates at t = 0 (0.5 s each with update_time): its sends, its
    roles' waits and its next step wait for them; node 1 pings it at 0.3 s."""

    needs_connected = False

    def layout(self, graph):
        return graph, [("worker", "listen"), ("worker",)]

    def global_model(self, X, roles):
        return X[0]

    async def worker(self, node):
        if node.id == 1:
            await node.sleep(0.3)
            node.send(0, "ping")
            for kind in ("a", "b"):
                if await node.recv(kind, timeout=2.0) is not None:
                    node.record(f"got_{kind}", node.now)
            return
        if node.now > 0:  # back from a crash: nothing more to do
            return
        node.apply(torch.zeros_like(node.x))
        node.send(1, "a")
        node.apply(torch.zeros_like(node.x))
        node.send(1, "b")
        node.record("returned", node.now)  # apply itself takes no time
        await node.sleep(0.2)
        node.record("slept_until", node.now)
        await node.train()

    async def listen(self, node):
        if await node.recv("ping", timeout=2.0) is not None:
            node.record("ping_taken", node.now)


@pytest.mark.parametrize("slow", ["slowdown", "fault"])
def test_an_update_holds_the_nodes_sends_waits_and_next_step(simulate, slow):
    from netsim.faults import Slow

    # node 0 twice as slow, by its slowdown or by a Slow fault: updates of 0.5 s
    slowdown, faults = ({0: 2.0}, []) if slow == "slowdown" else ({}, [Slow(0, 2.0, 0, 5)])
    sim, summary = simulate(
        Busy(), workers=2, steps=1, network=FAST, faults=faults,
        compute=Compute(step_time=0.1, update_time="0.25s", slowdown=slowdown),
    )  # fmt: skip
    rec = {name: v["mean"] for name, v in summary["records"].items()}
    assert rec == {  # the network is near-instant: 1e15 bit/s
        "returned": 0.0, "slept_until": 1.0, "ping_taken": 1.0,
        "got_a": pytest.approx(0.5, abs=1e-9), "got_b": pytest.approx(1.0, abs=1e-9),
    }  # fmt: skip
    with open(sim.recorder.dir / "steps.csv") as handle:
        step = next(row for row in csv.DictReader(handle) if row["node"] == "0")
    assert (float(step["t_start"]), float(step["t_end"])) == (1.0, 1.2)  # x its slowdown 2


@pytest.mark.parametrize(
    "algorithm",
    [GoSGD(p=1.0), DPSGD(), RWM(), FedAvg(rounds=2), P2PPull(timeout="1s")],
    ids=lambda a: type(a).__name__,
)
def test_a_merge_of_received_models_is_an_update(simulate, monkeypatch, algorithm):
    # each algorithm's average of what it received goes through node.update (update_time)
    merges = []
    update = netsim.node.Node.update

    def counted(self):
        merges.append(self.id)
        return update(self)

    monkeypatch.setattr(netsim.node.Node, "update", counted)
    simulate(algorithm, workers=3, steps=3, network=FAST, compute=Compute(step_time=0.1))
    assert len(merges) >= 2


def test_an_update_lost_to_a_crash_loses_what_it_was_to_send(simulate):
    from netsim.faults import Crash

    sim, summary = simulate(
        Busy(), workers=2, steps=1, network=FAST, faults=[Crash(0, at=0.2, restart=0.1)],
        compute=Compute(step_time=0.1, update_time="0.5s"),
    )  # fmt: skip
    with open(sim.recorder.dir / "messages.csv") as handle:
        sent = {row["kind"]: row for row in csv.DictReader(handle) if row["src"] == "0"}
    for kind, t in (("a", 0.5), ("b", 1.0)):  # sent when the update would have ended, back up
        assert sent[kind]["reason"] == "offline" and float(sent[kind]["t_send"]) == t
    assert "got_a" not in summary["records"]
