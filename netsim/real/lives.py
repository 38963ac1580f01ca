"""A node process's roles as asyncio tasks that die when the fault plan takes the node offline
and start again from their beginning when it comes back: the simulation's netsim/lives.py on
real time, following the same intervals (outages.py).

Offline, the node loses its roles where they wait (a step in progress is lost), its mailbox
and its waits, and records ``offline`` = 1 in records.csv (0 when back). Back with state
"reset", its row is x0 again, its optimizer's momentum and ``node.state`` are cleared; its
step count is kept. A node offline for good has driven the run as far as it will (the run
waits for the others). The process itself stays up: it still answers the coordinator, and
frames that reach it while it is offline are dropped (transport.py).
"""

from __future__ import annotations

import asyncio
import traceback

from netsim.real.outages import Schedule


class Lives:
    def __init__(self, world, failed: asyncio.Future):
        """failed gets (what, traceback) when a role raises."""
        self.world, self.failed = world, failed
        self.tasks: dict[str, asyncio.Task] = {}
        self.gone = False  # offline now
        self.drove = False  # "drove" reported: the coordinator no longer waits for this node

    def start(self) -> None:
        """Starts the node's roles from their beginning."""
        node, algorithm = self.world.node, self.world.settings.algorithm
        tasks = {
            name: asyncio.create_task(getattr(algorithm, name)(node))
            for name in self.world.role_names
        }
        self.tasks = tasks
        for name, task in tasks.items():
            task.add_done_callback(lambda t, name=name: self._finished(name, t, tasks))

    def _finished(self, name: str, task: asyncio.Task, tasks: dict) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            if not self.failed.done():
                text = "".join(traceback.format_exception(task.exception()))
                what = f"role {name!r} of node {self.world.node.id} failed"
                self.failed.set_result((what, text))
            return
        drives = self.world.drives
        if name in drives and all(tasks[r].done() for r in tasks if r in drives):
            self._drove()

    def _drove(self) -> None:
        if not self.drove and self.world.drives & set(self.world.role_names):
            self.drove = True
            self.world.report("drove", self.world.node.id)

    async def follow(self, schedule: Schedule) -> None:
        """Takes the node offline and back as the plan says, on the run's clock."""
        depth, clock = 0, self.world.clock
        for t, change, state, forever in schedule.changes(self.world.node.id):
            await asyncio.sleep(max(0.0, t - clock()))
            depth += change
            if change > 0 and (depth == 1 or forever):
                self._offline(forever)
            elif change < 0 and depth == 0:
                self._online(state)

    def _offline(self, forever: bool) -> None:
        node = self.world.node
        if not self.gone:
            self.gone = True
            for task in self.tasks.values():
                task.cancel()
            self.tasks = {}
            node.forget()
            node.record("offline", 1)
        if forever:
            self._drove()

    def _online(self, state: str) -> None:
        world, node = self.world, self.world.node
        self.gone = False
        if state == "reset":
            world.X[0].copy_(world.work.x0)
            world.B[0].copy_(world.work.b0)
            world.optimizer.reset(0)
            node.state.clear()
        node.record("offline", 0)
        self.start()

    async def stop(self) -> None:
        """The run is over: cancels the roles still running."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
