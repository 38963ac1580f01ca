"""Node: one simulated machine and the verbs that are the whole surface an algorithm sees.

Parameters live in the simulation's population tensor; ``node.x`` is row i and the node's
``nn.Module`` parameters are views into it, so ``torch.optim`` works unchanged.

Causality: the gradient of a step is computed on the parameters at the step's start, and the
optimizer applies it only when the step's simulated compute ends. A peer that reads ``node.x``
mid-step therefore sees the parameters from before the step, as on a real machine.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any

import torch

from netsim import runtime
from netsim.network.message import Message
from netsim.verbs import NodeState


class Node(NodeState):
    def __init__(self, sim, i: int, role: str, data, slowdown: float):
        # sim: the Simulation (sim.py) that owns the clock, the population and the network
        super().__init__(i, role, sim.graph, data, sim.node_rng(i), sim.workload)
        self._sim = sim
        self._env = sim.env
        self._slowdown = float(slowdown)
        self._sent: tuple | None = None  # (which rows at which version, their snapshot)
        self.update_seconds = sim.compute.update_seconds(self._slowdown)  # of one apply()
        self._update_end = 0.0  # when the node's latest update ends (apply)
        self._life = 0  # times the node went offline: an update's sends die with it

    # -- state -------------------------------------------------------------------------
    @property
    def x(self) -> torch.Tensor:
        """This node's flat parameter vector: a view of row i of the population tensor."""
        if self.id in self._sim.engine.pending:  # about to be read or written: compute first
            self._sim.engine.flush()
        return self._sim.X[self.id]

    @property
    def g(self) -> torch.Tensor:
        """The gradient of the node's latest ``gradient()`` step (a view of the gradient
        population). After ``train()`` it is not meant to be read: when the stacked kernel
        applies a plain SGD step inside its products (engine/execution.py), no gradient is
        stored."""
        if self.id in self._sim.engine.pending:
            self._sim.engine.flush()
        return self._sim.G[self.id]

    @property
    def now(self) -> float:
        return self._env.now

    @property
    def done(self) -> bool:
        """True once this node has spent its step budget or the run's time is up."""
        return self._sim.budget_spent(self)

    # -- compute -----------------------------------------------------------------------
    async def train(self, steps: int = 1, prox: tuple[float, torch.Tensor] | None = None) -> float:
        """Runs ``steps`` SGD steps on local data; returns their mean loss.

        ``prox=(mu, w)`` adds FedProx's proximal term mu/2 ||x - w||^2 to the local objective.
        """
        total = 0.0
        for _ in range(steps):
            loss, applied = await self._compute(prox, apply=True)
            if not applied:  # the engine may have applied it already, at the step's end
                self._step()
            total += loss
        return total / steps

    async def gradient(self) -> float:
        """One step's gradient into ``node.g`` without applying it (parameter-server workers)."""
        return (await self._compute(None, apply=False))[0]

    def apply(self, g: torch.Tensor) -> None:
        """Applies a gradient with this node's optimizer (a server's update). The parameters
        change now; with ``compute.update_time`` the node is then busy for that long (times
        its slowdown and any Slow fault): its sends leave, its roles resume and its next step
        starts when the update ends. Updates in a row queue up."""
        with self.update():
            self.g.copy_(g)
            self._step()

    @contextlib.contextmanager
    def update(self):
        """What the block changes is an update the node applies from what it received, as
        apply's: a merge of a peer's model (P2PPull, GoSGD, RWM), D-PSGD's average, a FedAvg
        server's. It changes the values at once; with ``compute.update_time`` the node is
        then busy for that long, as after apply."""
        yield
        if self.update_seconds:
            seconds = self.update_seconds * self._sim.lives.slowdown(self.id)
            self._update_end = max(self._update_end, self.now) + seconds

    def updating(self) -> float:
        """When the node's latest update ends (in the past once it has)."""
        return self._update_end

    def optimizer_state(self) -> dict:
        """The optimizer's state of this node (its momentum buffer and whether it started),
        as a message's fields: what a replica needs besides x to step as this node does."""
        return self._sim.optimizer.state(self.id)

    def load_optimizer_state(self, state: dict) -> None:
        self._sim.optimizer.load(self.id, state)

    def _step(self) -> None:
        # the run's learning-rate schedule, by the steps every worker has reached
        self._sim.optimizer.step(self.id, self._sim.lr())

    async def _compute(self, prox, apply: bool) -> tuple[float, bool]:
        """One step's gradient into row i of G, over the step's simulated compute time.

        The step is submitted to the simulation's engine, which computes it together with the
        other steps in flight (see engine/execution.py); its result is taken at the step's end.
        """
        if self._update_end and self._update_end > self.now:  # starts when the update ends
            await self.sleep(self._update_end - self.now)
        sim, t_start = self._sim, self.now
        started = time.perf_counter()
        batch = self._data.next_batch()
        if sim.engine.defer:
            seconds = sim.compute.step_seconds(sim.base_step_seconds, self._slowdown, self.rng)
            seconds *= sim.lives.slowdown(self.id)  # a Slow fault on now
            ticket = sim.engine.submit(self.id, batch, prox, t_start + seconds, apply)
        else:  # computed now; a calibrated compute model times it
            ticket = sim.engine.submit(self.id, batch, prox)
            measured = time.perf_counter() - started
            seconds = sim.compute.step_seconds(
                sim.base_step_seconds, self._slowdown, self.rng, measured
            ) * sim.lives.slowdown(self.id)
        await self.sleep(seconds)
        loss = sim.engine.result(ticket)
        return self._finish_step(t_start, loss), ticket.applied

    def _finish_step(self, t_start: float, loss: float) -> float:
        self.steps += 1
        self._sim.record_step(self, t_start, loss)
        return loss

    def record(self, name: str, value: float) -> None:
        """Logs an algorithm-specific quantity (e.g. staleness) to records.csv."""
        self._sim.recorder.record(self.now, self.id, name, value)

    # -- messages ----------------------------------------------------------------------
    def send(self, dst: int, kind: str, **payload: Any):
        """Sends a message; tensors are snapshot at send. Returns an event fired on delivery."""
        snapshot = {k: self._snapshot(v) if torch.is_tensor(v) else v for k, v in payload.items()}
        message = Message(self.id, dst, kind, snapshot)
        if self._update_end and self._update_end > self.now:  # leaves when the update ends
            return self._after_update(message)
        return self._sim.fabric.transmit(message)

    def _after_update(self, message: Message):
        """Sends message when the node's update ends, unless the node went offline since
        (then it is dropped, "offline"); the event is the send's."""
        env, fabric, life = self._env, self._sim.fabric, self._life
        sent = env.event()

        def leave(_):
            transfer = fabric.transmit(message, "" if life == self._life else "offline")
            transfer.callbacks.append(lambda done: sent.succeed(done.value))

        env.timeout(self._update_end - self.now).callbacks.append(leave)
        return sent

    @staticmethod
    def ended(sent) -> Message | None:
        """The message of a send (``send``'s event) once it was delivered or dropped (see its
        ``dropped`` and ``drop_reason``), else None: a sender learns that a connection failed."""
        return sent.value if sent.triggered else None

    def _snapshot(self, value: torch.Tensor) -> torch.Tensor:
        """A copy of value as it is now. Sending the same unchanged rows of the population
        to several peers (a model to every neighbour) copies them once: any write to the
        population since the last copy bumps its version and forces a fresh one. Snapshots
        are read-only for everyone (the network copies before it adds noise)."""
        X = self._sim.X
        if value._base is not X:
            return value.detach().clone()
        key = (value.storage_offset(), value.shape, value.stride(), X._version)
        if self._sent is not None and self._sent[0] == key:
            snapshot = self._sent[1]()  # held weakly: gone once every message holding it is
            if snapshot is not None:
                return snapshot
        snapshot = value.detach().clone()
        self._sent = (key, weakref.ref(snapshot))
        return snapshot

    def recv(self, kind: str, timeout: float | None = None) -> runtime.Await:
        """Awaits the next message of ``kind``; with a timeout, None if none came in time."""
        if self._mail[kind]:
            event = self._env.event()
            event.succeed(self._mail[kind].popleft())
            return runtime.Await(event)
        event = self._env.event()
        self._waiting[kind].append(event)
        if timeout is not None:
            self._env.timeout(max(0.0, timeout)).callbacks.append(
                lambda _: self._give_up(kind, event)
            )
        return runtime.Await(event)

    def _give_up(self, kind: str, event) -> None:
        if not event.triggered and event in self._waiting[kind]:  # else forgotten (offline)
            self._waiting[kind].remove(event)
            event.succeed(None)

    def forget(self) -> None:
        """The node went offline: what it held in memory, its mail and its waits, is gone."""
        self._mail.clear()
        self._waiting.clear()
        self._life += 1
        self._update_end = 0.0  # the update in progress is lost too

    def deliver(self, message: Message) -> None:
        """Called by the simulation when the network delivers a message to this node."""
        waiting = self._waiting[message.kind]
        if waiting:
            waiting.popleft().succeed(message)
        else:
            self._mail[message.kind].append(message)

    # -- time --------------------------------------------------------------------------
    def sleep(self, seconds: float) -> runtime.Await:
        return runtime.sleep(self._env, seconds)

    def all_of(self, events) -> runtime.Await:
        return runtime.all_of(self._env, events)

    def any_of(self, events) -> runtime.Await:
        return runtime.any_of(self._env, events)

    def wait(self, event, timeout: float | None = None) -> runtime.Await:
        return runtime.wait(self._env, event, timeout)
