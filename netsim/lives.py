"""The simulated kernel's side of faults: each node's roles as processes that die when the
node goes offline and start again from their beginning when it comes back, and the stall check.

A node that goes offline loses its roles where they wait, the step it was computing and its
mailbox; it records ``offline`` = 1 in records.csv (0 when it is back), which the timeline
shades. Back online with state "reset", its row of the population is x0 again, its
optimizer's momentum and ``node.state`` are cleared. Its step count is kept (its budget counts
every step it made). The run ends when every node that drives it has finished its roles or
gone offline for good.

A stall: nothing is left to happen but the faults' own events (and the observer's), while the
roles wait. It is declared at once if no node can come back, else when, after nodes came
back, that keeps happening n + 1 times without a step by a node that did not just come back
(churn drawn from a distribution goes on for ever, so a stalled run would otherwise never
end). A run with ``until`` is not checked: it ends then.
"""

from __future__ import annotations

from netsim import runtime
from netsim.algorithms import hooks
from netsim.network.faults import plan
from netsim.network.outages import Outages


class Stalled(RuntimeError):
    pass


class Lives:
    def __init__(self, sim):
        self.sim, self.env = sim, sim.env
        faults = plan(sim.settings.faults, sim.roles)
        self.outages = None
        if faults:
            self.outages = Outages(
                sim.env, faults, sim.roles, sim.seed, self._offline, self._online, self.idle
            )
        n = len(sim.roles)
        self.processes: list[list] = [[] for _ in range(n)]
        self.running = [0] * n  # driving roles of each node still running
        self.finished = [self.env.event() for _ in range(n)]
        self.gone = [False] * n
        self.background: set[int] = set()  # ids of the observer's timeouts queued
        self.restarted: set[int] = set()
        self._steps: list[int] | None = None
        self._quiet = 0

    def slowdown(self, node: int) -> float:
        return 1.0 if self.outages is None else self.outages.slowdown(node)

    def spawn(self, node, roles) -> list:
        """Starts node's roles; returns the processes of those that drive the run."""
        driving = []
        for role in roles:
            coro = getattr(self.sim.algorithm, role)(node)
            process = runtime.spawn(self.env, coro, node.updating if node.update_seconds else None)
            self.processes[node.id].append(process)
            if role in hooks.drives(self.sim.algorithm):
                driving.append(process)
                self.running[node.id] += 1
                if self.outages is not None:  # else the run waits for the processes
                    process.callbacks.append(lambda p, i=node.id: self._returned(i, p))
        return driving

    def ends(self, driving: list) -> list:
        """What the run waits for: the driving processes, or with faults each node's end."""
        if self.outages is None:
            return driving
        return [self.finished[i] for i, count in enumerate(self.running) if count]

    def _returned(self, i: int, process) -> None:
        if process.ok and process.value is not runtime.KILLED:
            self.running[i] -= 1
            if self.running[i] == 0 and not self.finished[i].triggered:
                self.finished[i].succeed()

    def _offline(self, i: int, forever: bool) -> None:
        sim, node = self.sim, self.sim.nodes[i]
        if not self.gone[i]:
            self.gone[i] = True
            for process in self.processes[i]:
                runtime.kill(process)
            self.processes[i] = []
            sim.engine.pending.pop(i, None)  # the step in progress is lost
            node.forget()
            node.record("offline", 1)
        if forever and not self.finished[i].triggered:
            self.finished[i].succeed()

    def _online(self, i: int, state: str) -> None:
        sim, node = self.sim, self.sim.nodes[i]
        self.gone[i] = False
        if state == "reset":
            sim.X[i].copy_(sim.workload.x0)
            sim.B[i].copy_(sim.workload.b0)
            sim.optimizer.reset(i)
            node.state.clear()
        node.record("offline", 0)
        self.running[i] = 0
        self.spawn(node, sim.role_names[i])
        self.restarted.add(i)

    def tick(self, event) -> None:
        """The observer's timeout: one more event that is not the roles'."""
        self.background.add(id(event))
        event.callbacks.append(lambda e: self.background.discard(id(e)))

    def idle(self) -> None:
        """Called after each fault's and the observer's event: raises Stalled on a stall."""
        sim = self.sim
        if sim.until is not None:
            return
        queued = self.background | (self.outages.queued if self.outages else set())
        if any(id(event) not in queued for *_, event in self.env._queue):
            return
        if not (self.outages and self.outages.can_come_back):
            raise Stalled(self.why())
        if not self.restarted or all(self.gone):  # nothing came back yet to unblock them
            return
        steps = [node.steps for node in sim.nodes]
        moved = self._steps is None or any(
            now != before
            for i, (now, before) in enumerate(zip(steps, self._steps, strict=True))
            if i not in self.restarted
        )
        self._quiet = 0 if moved else self._quiet + 1
        self._steps, self.restarted = steps, set()
        if self._quiet > len(steps):
            raise Stalled(self.why())

    def why(self) -> str:
        """Which nodes wait for what, and what the faults and the network dropped."""
        waits: dict[str, list[int]] = {}
        for node in self.sim.nodes:
            if self.gone[node.id]:
                waits.setdefault("", []).append(node.id)
            for kind, queue in sorted(node._waiting.items()):
                if queue and not self.gone[node.id]:
                    waits.setdefault(kind, []).append(node.id)
        said = [
            f"{_nodes(ids)} {'is' if len(ids) == 1 else 'are'} offline"
            if not kind
            else f"{_nodes(ids)} wait{'s' * (len(ids) == 1)} for {kind!r}"
            for kind, ids in waits.items()
        ]
        dropped = {
            reason: tally.messages for reason, tally in self.sim.fabric.counters.dropped.items()
        }
        if dropped or any(self.gone):
            counts = ", ".join(f"{reason} {count}" for reason, count in sorted(dropped.items()))
            lost = f" ({sum(dropped.values())} messages dropped: {counts})" if dropped else ""
            said.append(
                f"faults or loss caused it{lost}; a timeout lets the algorithm go on without them"
            )
        else:
            said.append(
                "every role waits for a message that never comes; check the algorithm's "
                "settings and the topology"
            )
        return "; ".join(said)


def _nodes(ids: list[int]) -> str:
    return f"node {ids[0]}" if len(ids) == 1 else "nodes " + ", ".join(map(str, ids))
