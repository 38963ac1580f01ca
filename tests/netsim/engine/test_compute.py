"""The compute model: exact base times, seeded factors, validation."""

import numpy as np
import pytest

from netsim.engine.compute import Compute, ComputeError, parse_flops


def test_constant_step_time_without_jitter_is_exact():
    c = Compute(step_time="0.58s")
    base = c.base_seconds(batch=64, flops_per_sample=1e9)
    assert base == 0.58
    assert c.step_seconds(base, 2.0, np.random.default_rng(0)) == 1.16


def test_flops_model_is_batch_times_flops_times_three_over_device_speed():
    c = Compute(device_flops="180GFLOP/s")
    assert c.base_seconds(batch=64, flops_per_sample=24_546_304) == pytest.approx(
        64 * 24_546_304 * 3 / 180e9, rel=1e-12
    )
    assert parse_flops("1.5TFLOP/s") == 1.5e12


def test_jitter_is_lognormal_with_median_one_and_seeded():
    c = Compute(step_time=1.0, jitter=0.1)
    draws = [c.step_seconds(1.0, 1.0, np.random.default_rng(s)) for s in range(2000)]
    assert np.median(draws) == pytest.approx(1.0, abs=0.01)
    assert np.std(np.log(draws)) == pytest.approx(0.1, rel=0.05)
    assert c.step_seconds(1.0, 1.0, np.random.default_rng(7)) == draws[7]


def test_slowdown_factors_stragglers_and_overrides():
    roles = ["worker"] * 10 + ["server"]
    c = Compute(stragglers=0.2, straggler_factor=3.0, slowdown={"server": 0.5, 0: 2.0})
    f = c.slowdowns(roles, np.random.default_rng(1))
    assert f[10] == 0.5
    slow = [i for i in range(10) if f[i] in (3.0, 6.0)]
    assert len(slow) == 2
    assert f[0] in (2.0, 6.0)
    assert np.array_equal(f, c.slowdowns(roles, np.random.default_rng(1)))


def test_a_slowdown_of_4_makes_a_step_take_4_times_longer():
    c = Compute(step_time="10ms", slowdown={3: 4.0})
    factors = c.slowdowns(["worker"] * 4, np.random.default_rng(0))
    assert factors.tolist() == [1.0, 1.0, 1.0, 4.0]
    assert c.step_seconds(0.01, factors[3], np.random.default_rng(0)) == 0.04


def test_the_old_speed_spelling_is_one_line_naming_slowdown():
    with pytest.raises(ComputeError, match=r"Compute\(speed=\.\.\.\) is now slowdown=") as error:
        Compute(speed={3: 4.0})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_time": "-1s"},
        {"jitter": -0.1},
        {"stragglers": 1.5},
        {"straggler_factor": 0},
        {"device_flops": "fast"},
        {"slowdown": {"server": 0}},
    ],
)
def test_bad_compute_settings_are_rejected(kwargs):
    with pytest.raises((ComputeError, ValueError)):
        Compute(**kwargs).validate()
