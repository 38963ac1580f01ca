"""Awaitables over SimPy: the only place that knows SimPy drives the coroutines.

Roles are plain ``async def`` functions. SimPy processes are generators that yield events, so a
role runs inside a small driver generator that forwards each SimPy event the coroutine awaits
and sends the event's value (or throws its failure) back in. An awaitable's ``__await__`` yields
one SimPy event; that is all the coupling there is, which is why the same roles could run on a
real asyncio transport later.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import simpy

_TIMEOUT = object()
KILLED = object()  # the value of a role's process that kill() ended


class Await:
    """Wraps one SimPy event so a coroutine can ``await`` it and get the event's value."""

    __slots__ = ("event",)

    def __init__(self, event: simpy.Event):
        self.event = event

    def __await__(self):
        return (yield self.event)


def _drive(coro: Coroutine, hold: Callable[[], float] | None = None):
    """The generator SimPy runs as a process: forwards events both ways until the role returns.
    ``hold``: the time before which the role may not resume (its node's update, node.apply)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            event = coro.throw(error) if error is not None else coro.send(value)
        except StopIteration as stop:
            return stop.value
        if not isinstance(event, simpy.Event):
            coro.close()
            raise TypeError(f"a role awaited {event!r}; await node verbs, not asyncio objects")
        value = None  # hold nothing while waiting (a delivered model can be let go at once)
        try:
            value, error = (yield event), None
            if hold is not None and (until := hold()) > event.env.now:  # the node is busy
                yield event.env.timeout(until - event.env.now)
        except GeneratorExit:  # the process is discarded (the run ended): end the role quietly
            coro.close()
            raise
        except BaseException as exc:  # a failed event or an interrupt goes back into the role
            value, error = None, exc


def spawn(
    env: simpy.Environment, coro: Coroutine, hold: Callable[[], float] | None = None
) -> simpy.Process:
    """Starts a role on the simulated clock; the returned process is itself an event. With
    ``hold``, each time the role would resume it waits first until ``hold()``, if later."""
    return env.process(_drive(coro, hold))


def kill(process: simpy.Process) -> None:
    """Ends a role where it waits, now (its node went offline): it never resumes, not even
    for an event due at this instant (an interrupt would come later); the process's value is
    KILLED. Never called from inside the process itself."""
    if not process.is_alive:
        return
    target = process.target
    if target is not None and target.callbacks is not None and process._resume in target.callbacks:
        target.callbacks.remove(process._resume)
    process._generator.close()  # GeneratorExit in _drive closes the role
    process._ok, process._value = True, KILLED
    process.env.schedule(process)


def sleep(env: simpy.Environment, seconds: float) -> Await:
    return Await(env.timeout(max(0.0, seconds)))


def all_of(env: simpy.Environment, events: Iterable[Any]) -> Await:
    """Waits for every event; the value is the list of their values in the given order."""
    events = [_event(e) for e in events]

    async def gather():
        await Await(simpy.AllOf(env, events))
        return [e.value for e in events]

    return Await(spawn(env, gather()))


def any_of(env: simpy.Environment, events: Iterable[Any]) -> Await:
    """Waits for the first event; the value is (index, value) of the first that fired."""
    events = [_event(e) for e in events]

    async def first():
        fired = await Await(simpy.AnyOf(env, events))
        index = next(i for i, e in enumerate(events) if e in fired)
        return index, events[index].value

    return Await(spawn(env, first()))


def wait(env: simpy.Environment, event: Any, timeout: float | None = None) -> Await:
    """Waits for ``event``; with ``timeout`` the value is None if it did not fire in time."""
    event = _event(event)
    if timeout is None:
        return Await(event)

    async def bounded():
        index, value = await any_of(env, [event, env.timeout(max(0.0, timeout), _TIMEOUT)])
        return None if index == 1 else value

    return Await(spawn(env, bounded()))


def _event(item: Any) -> simpy.Event:
    return item.event if isinstance(item, Await) else item
