"""RealNode: the node verbs on real time, for roles run by an asyncio event loop.

The surface is the simulated node's (netsim/node.py), with these meanings:

- ``train``/``gradient``: the real SGD step, computed in a worker thread so that the node's
  other roles keep answering peers meanwhile. With a ``Compute`` model the step then lasts
  the modelled time (the process sleeps out the rest; a real step longer than the model is
  recorded as ``overrun`` in records.csv); with ``compute="real"`` it lasts what it takes.
  As in simulation, the update is applied at the step's end, so a role that sends ``node.x``
  during the step sends the parameters from before it, and the modelled time holds the
  update too: the process wakes the least of its recent updates' durations early and
  updates, so a step ends at its modelled time, not that much later (80 MB of VGG-19's
  parameters took about 45 ms to update on two busy cores).
- ``apply``: the real update; with ``compute.update_time`` the node is then busy until that
  time has passed since the update started, as in simulation (a longer real update is
  recorded as ``overrun``).
- ``send`` returns a future done, with the message, once the frame is written to the socket
  or dropped at the sender (the simulation's event fires at delivery, which a sender cannot
  observe for real).
- faults (lives.py, outages.py): an offline node's roles are cancelled and started again
  when it comes back; a Slow fault on when a step starts multiplies its emulated time.
- ``recv``/``wait``/``sleep``/``all_of``/``any_of``: asyncio futures and timeouts; waiting
  registers at the call, as in simulation, and an unfinished wait is never cancelled.
- ``now``: seconds since the run's common t0.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any

import torch

from netsim.network.message import Message
from netsim.verbs import NodeState


class RealNode(NodeState):
    def __init__(self, world, i: int, role: str, data, slowdown: float):
        # world: the node process (process.py): population row, engine, transport, reports
        super().__init__(i, role, world.graph, data, world.work.node_rng(i), world.work)
        self._world = world
        self._slowdown = float(slowdown)
        self.update_seconds = world.settings.compute.update_seconds(self._slowdown)
        self._update_end = 0.0  # when the node's latest update ends (apply), on self.now
        # how long train's optimizer steps took lately, in seconds; a step wakes the least of
        # them early, so an update quicker than usual does not end it before its model
        self._step_costs: collections.deque[float] = collections.deque(maxlen=8)
        self._life = 0  # times the node went offline: an update's sends die with it

    @property
    def x(self) -> torch.Tensor:
        """This node's flat parameter vector (the process's population has one row)."""
        return self._world.X[0]

    @property
    def g(self) -> torch.Tensor:
        return self._world.G[0]

    @property
    def now(self) -> float:
        return self._world.clock()

    @property
    def done(self) -> bool:
        world = self._world
        if world.until is not None and self.now >= world.until:
            return True
        return world.settings.steps is not None and self.steps >= world.settings.steps

    # -- compute -----------------------------------------------------------------------
    async def train(self, steps: int = 1, prox: tuple[float, torch.Tensor] | None = None) -> float:
        total = 0.0
        for _ in range(steps):
            total += await self._compute(prox, apply=True)
        return total / steps

    async def gradient(self) -> float:
        return await self._compute(None, apply=False)

    def apply(self, g: torch.Tensor) -> None:
        """The real update, then, with ``compute.update_time``, the node is busy until the
        modelled time has passed since it started (as in simulation: sends leave and waits end
        no earlier; a real update longer than the model is recorded as ``overrun``)."""
        with self.update():
            self.g.copy_(g)
            self._step()

    @contextlib.contextmanager
    def update(self):
        """The block's real update from what the node received (a merge, an average), then,
        with ``compute.update_time``, the node is busy as after apply (see netsim/node.py)."""
        started = self.now
        yield
        if self.update_seconds:
            seconds = self.update_seconds * self._world.faults.slowdown(self.id, started)
            if self.now - started > seconds:
                self.record("overrun", self.now - started - seconds)
            self._update_end = max(self._update_end, started) + seconds

    def optimizer_state(self) -> dict:
        """The optimizer's state of this node, as a message's fields (see netsim/node.py)."""
        return self._world.optimizer.state(0)

    def load_optimizer_state(self, state: dict) -> None:
        self._world.optimizer.load(0, state)

    def _step(self) -> None:
        self._world.optimizer.step(0, self._world.lr())

    async def _compute(self, prox, apply: bool) -> float:
        await self._hold()  # a step starts when the node's update ends
        world, t_start = self._world, self.now
        batch = self._data.next_batch()
        started = time.perf_counter()
        ticket = await asyncio.to_thread(world.engine.submit, 0, batch, prox)
        measured = time.perf_counter() - started
        compute = world.settings.compute
        seconds = compute.step_seconds(
            world.work.base_step_seconds, self._slowdown, self.rng, measured
        ) * world.faults.slowdown(self.id, t_start)  # a Slow fault on as the step starts
        # the update at the step's end is part of the modelled time (as last measured)
        costs = self._step_costs
        updating = min(costs) if apply and costs and not compute.calibrate else 0.0
        if measured + updating > seconds and not compute.calibrate:
            self.record("overrun", measured + updating - seconds)
        await asyncio.sleep(seconds - updating - (time.perf_counter() - started))
        if apply:
            began = time.perf_counter()
            self._step()
            self._step_costs.append(time.perf_counter() - began)
        self.steps += 1
        world.report("step", self.id, self.steps, t_start, self.now, ticket.loss)
        return ticket.loss

    def record(self, name: str, value: float) -> None:
        self._world.report("record", self.now, self.id, name, value)

    # -- messages ----------------------------------------------------------------------
    def send(self, dst: int, kind: str, **payload: Any) -> asyncio.Future:
        snapshot = {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in payload.items()}
        message = Message(self.id, dst, kind, snapshot)
        if self._update_end > self.now:  # it leaves when the update ends
            return self._after_update(message)
        return self._world.transport.send(message)

    def _after_update(self, message: Message) -> asyncio.Future:
        """Sends message when the node's update ends, unless the node went offline since
        (then it is dropped, "offline"); the future is the send's."""
        loop, transport, life = asyncio.get_running_loop(), self._world.transport, self._life
        sent = loop.create_future()

        def leave():
            done = transport.send(message, "" if life == self._life else "offline")
            done.add_done_callback(lambda d: sent.done() or sent.set_result(d.result()))

        loop.call_later(self._update_end - self.now, leave)
        return sent

    # -- the node's update: what it waits for ends no earlier ---------------------------
    async def _hold(self) -> None:
        while (wait := self._update_end - self.now) > 0:
            await asyncio.sleep(wait)

    def _held(self, future: asyncio.Future) -> asyncio.Future:
        """future, or with an update time, a future done with its result when both it is and
        the node's update (at that moment) has ended."""
        if not self.update_seconds:
            return future

        async def after():
            value = await future
            await self._hold()
            return value

        return asyncio.ensure_future(after())

    @staticmethod
    def ended(sent: asyncio.Future) -> Message | None:
        """The message of a send once it was written to TCP or dropped at its sender (see its
        ``dropped`` and ``drop_reason``), else None. A written message's fate is unknown to
        its sender: it is not dropped as far as the sender can tell."""
        return sent.result() if sent.done() else None

    def recv(self, kind: str, timeout: float | None = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._mail[kind]:
            future.set_result(self._mail[kind].popleft())
            return self._held(future)
        self._waiting[kind].append(future)
        if timeout is not None:
            loop.call_later(max(0.0, timeout), self._give_up, kind, future)
        return self._held(future)

    def _give_up(self, kind: str, future: asyncio.Future) -> None:
        if not future.done():
            if future in self._waiting[kind]:  # not if the node went offline since
                self._waiting[kind].remove(future)
            future.set_result(None)

    def forget(self) -> None:
        """The node went offline: what it held in memory, its mail and its waits, is gone."""
        self._mail.clear()
        self._waiting.clear()
        self._life += 1
        self._update_end = 0.0  # the update in progress is lost too

    def deliver(self, message: Message) -> None:
        waiting = self._waiting[message.kind]
        while waiting:
            future = waiting.popleft()
            if not future.done():  # a role cancelled at the end of a run leaves its future
                future.set_result(message)
                return
        self._mail[message.kind].append(message)

    # -- time --------------------------------------------------------------------------
    def sleep(self, seconds: float) -> asyncio.Future:
        return self._held(asyncio.ensure_future(asyncio.sleep(max(0.0, seconds))))

    async def all_of(self, events) -> list:
        values = list(await asyncio.gather(*[asyncio.ensure_future(e) for e in events]))
        await self._hold()
        return values

    async def any_of(self, events) -> tuple[int, Any]:
        futures = [asyncio.ensure_future(e) for e in events]
        done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        index = next(i for i, f in enumerate(futures) if f in done)
        await self._hold()
        return index, futures[index].result()

    async def wait(self, event, timeout: float | None = None):
        future = asyncio.ensure_future(event)
        done, _ = await asyncio.wait([future], timeout=timeout)
        await self._hold()
        return future.result() if done else None
