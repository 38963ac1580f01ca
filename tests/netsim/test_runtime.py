"""The awaitables: a role is an async def that SimPy drives event by event."""

import pytest
import simpy

from netsim import runtime


def run(coro_fn):
    env = simpy.Environment()
    out = {}

    async def role():
        out["value"] = await coro_fn(env)
        out["t"] = env.now

    runtime.spawn(env, role())
    env.run()
    return out


def test_sleep_advances_the_clock_exactly():
    async def body(env):
        await runtime.sleep(env, 1.5)
        await runtime.sleep(env, 0.25)
        return "done"

    assert run(body) == {"value": "done", "t": 1.75}


def test_all_of_returns_values_in_order_at_the_last_event():
    async def body(env):
        return await runtime.all_of(env, [env.timeout(2, "b"), env.timeout(1, "a")])

    assert run(body) == {"value": ["b", "a"], "t": 2}


def test_any_of_returns_the_first_index_and_value():
    async def body(env):
        return await runtime.any_of(env, [env.timeout(3, "slow"), env.timeout(1, "fast")])

    assert run(body) == {"value": (1, "fast"), "t": 1}


def test_wait_with_timeout_gives_none_when_the_event_is_late():
    async def late(env):
        return await runtime.wait(env, env.timeout(5, "x"), timeout=2)

    async def early(env):
        return await runtime.wait(env, env.timeout(1, "x"), timeout=2)

    assert run(late) == {"value": None, "t": 2}
    assert run(early) == {"value": "x", "t": 1}


def test_failed_event_raises_inside_the_role():
    async def body(env):
        event = env.event()
        event.fail(KeyError("boom"))
        try:
            await runtime.Await(event)
        except KeyError:
            return "caught"

    assert run(body)["value"] == "caught"


def test_awaiting_a_foreign_object_is_a_clear_error():
    class Foreign:
        def __await__(self):
            yield "not an event"

    async def body(env):
        await Foreign()

    with pytest.raises(TypeError, match="await node verbs"):
        run(body)
