"""Every setting is checked before any run: hostile values are one line naming the setting and
the run, never a traceback from inside numpy, torch or SimPy (netsim/checks.py and the checks
of experiment.py and runner.py, through ``netsim.runner.check``, which runs nothing)."""

import math
import os
import tempfile
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim import Compute, Experiment, Network, Run
from netsim.__main__ import USER_ERRORS
from netsim.algorithms import DPSGD, RWM, SGD, SGP, FedAvg, GoSGD, P2PPull, sharing
from netsim.checks import admits, check_fields
from netsim.experiment import ConfigError, Settings
from netsim.runner import check

TINY = {"data": "synthetic_fmnist", "model": "logistic", "batch": 8, "eval_subset": 50}
TINY |= {"device": "cpu", "steps": 2, "workers": 3, "topology": "ring", "execution": "loop"}
OUT = Path(tempfile.mkdtemp(prefix="netsim_checks_"))


def experiment(**shared) -> Experiment:
    runs = [Run("one", SGD(), workers=1), Run("p2p", P2PPull()), Run("gossip", GoSGD(p=1.0))]
    return Experiment("checks", runs, **(TINY | shared))


def one_line_or_nothing(build) -> str | None:
    """The error, held to one line, or None when every check passed."""
    try:
        check(build(), out=OUT)
    except USER_ERRORS as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
        return message
    return None


@pytest.mark.parametrize(
    "assignments, message",
    [
        (["partition=foo"], "run 'one': unknown partition 'foo': use one of iid"),
        (["partition=dirichlet", "alpha=-1"], "run 'one': alpha must be > 0, got -1"),
        (["partition=shards", "shards_per_node=5000"], "run 'p2p': 3 nodes x 5000 shards exceed"),
        (["seed=-1"], "run 'one': seed must be in [0, 2**63), got -1"),
        (["seed=1.5"], "run 'one': seed must be an integer, got 1.5"),
        (["until=abc"], "run 'one': until: invalid duration 'abc'"),
        (["eval_every=abc"], "run 'one': eval_every: invalid duration 'abc'"),
        (["eval_every=0s"], "run 'one': eval_every must be >= 1 step or a time > 0, got '0s'"),
        (["p2p.algorithm.timeout=abc"], "run 'p2p': P2PPull.timeout: invalid duration 'abc'"),
        (["p2p.workers=1"], "run 'p2p': P2PPull averages with peers: it needs workers >= 2"),
        (["gossip.workers=1"], "run 'gossip': GoSGD averages with peers"),
        (["lr=nan"], "run 'one': lr must be a finite number, got 'nan'"),
        (["lr=abc"], "run 'one': lr must be a finite number, got 'abc'"),
        (["lr=1e400"], "run 'one': lr must be a finite number, got inf"),
        (["network=5"], "run 'one': network must be Network(...), got 5"),
        (["steps=True"], "run 'one': steps must be an integer or None, got True"),
        (["workers=100000", "topology=complete"], "has about 4,999,950,000 edges, more than"),
        (["p2p.workers=7000"], "7000 nodes with partition='iid': use fewer nodes or partition="),
        (["compute.step_time=abc"], "run 'one': compute.step_time: invalid duration 'abc'"),
        (["gossip.algorithm.W=5"], "run 'gossip': GoSGD.W is a square matrix of weights >= 0"),
        (["p2p.algorithm.share=5"], "run 'p2p': P2PPull.share is a sharing method"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_its_run(assignments, message):
    def build():
        e = experiment()
        e.override(assignments)
        return e

    assert message in one_line_or_nothing(build)


def test_cuda_without_a_gpu_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    error = one_line_or_nothing(lambda: experiment(device="cuda"))
    assert error.startswith("run 'one': device='cuda' but this machine has no CUDA GPU")


def test_an_algorithm_without_its_roles_and_bad_names_are_one_line():
    runs = [Run("a", 5)]
    assert "has no role 'worker'" in one_line_or_nothing(lambda: Experiment("x", runs, **TINY))
    for name in ("", "a/b", "..", 3):
        runs = [Run(name, SGD())]
        error = one_line_or_nothing(lambda runs=runs: Experiment("x", runs, **TINY))
        assert "cannot name a results folder" in error
    assert "has no runs" in one_line_or_nothing(lambda: Experiment("x", [5], **TINY))


def test_fields_are_held_to_their_annotations():
    assert admits(float, 1) and admits(float, np.float32(0.5)) and not admits(float, True)
    assert not admits(float, math.nan) and not admits(float, math.inf) and not admits(float, "1")
    assert admits(int, np.int64(3)) and not admits(int, 3.0) and not admits(int, False)
    assert admits(int | None, None) and admits(float | str, "1s") and not admits(str, b"x")
    with pytest.raises(ConfigError, match=r"^steps must be an integer or None, got 2.0$"):
        check_fields(Settings(algorithm=SGD(), steps=2.0), "", ConfigError)


# what --set reads: Python literals (hostile ones too) or plain text
LITERALS = st.sampled_from(
    [
        *("nan", "inf", "-inf", "1e400", "-1e400", "1e-320", "-0.0", "2**70", "10**9", "1j"),
        *("-1", "0", "1", "2", "3", "7", "100000", "2**63", "0.5", "1.5", "-0.5"),
        *("True", "False", "None", "[]", "{}", "()", "''", "'abc'", "b'x'", "[1, 2]"),
        *("{0: 1}", "{'a': 1}", "{(0, 1): 2}", "[[1, 0], [0, 1]]", "{0: 'x'}"),
        *("abc", "5ms", "-5ms", "0s", "1Gbit/s", "cuda", "cuda:7", "cpu", "auto", "real"),
        *("complete", "ring", "torus", "star", "erdos_renyi", "k_regular", "exponential"),
        *("iid", "shards", "dirichlet", "per_user", "data_parallel", "first", "cosine"),
        *("logistic", "mlp", "small_cnn", "synthetic_fmnist", "movielens", "stacked", "vmap"),
    ]
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
VALUES = st.one_of(
    LITERALS,
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    TEXT,
)
SETTINGS = sorted(f for f in Settings.__dataclass_fields__ if f != "algorithm")
NESTED = [
    *("network.bandwidth", "network.latency", "network.loss", "network.noise", "network.queue"),
    *("network.sharing", "network.goodput", "network.nodes", "network.edges"),
    "network.unfairness",
    "network.unfairness_among",
    "network.ramp",
    "network.acks",
    "network.connections",
    *("compute.step_time", "compute.jitter", "compute.heterogeneity", "compute.stragglers"),
    *("compute.straggler_factor", "compute.slowdown", "compute.device_flops"),
    "compute.update_time",
    *("p2p.algorithm.timeout", "p2p.algorithm.compress", "p2p.algorithm.peers"),
    *("gossip.algorithm.p", "gossip.algorithm.W", "algorithm.share", "p2p.lr", "one.workers"),
]
KEYS = st.sampled_from(SETTINGS + NESTED)
CI = settings(
    max_examples=int(os.environ.get("EXAMPLES", 2000)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@CI
@given(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3))
def test_hostile_set_values_are_one_line_errors_or_pass_every_check(assignments):
    def build():
        e = experiment()
        e.override([f"{key}={value}" for key, value in assignments])
        return e

    one_line_or_nothing(build)


# experiment objects, built in Python rather than read from --set
SCALARS = st.one_of(TEXT, st.floats(), st.integers(), st.none())
OBJECTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.integers(-2, 5) | TEXT, st.floats() | TEXT, max_size=2),
    st.builds(np.float64, st.floats()),
    st.builds(np.int64, st.integers(-5, 10**6)),
    st.builds(nx.path_graph, st.integers(0, 6)),
    st.builds(Network, bandwidth=SCALARS, latency=SCALARS, loss=SCALARS, queue=SCALARS),
    st.builds(
        Compute, step_time=SCALARS, jitter=SCALARS, slowdown=st.dictionaries(SCALARS, SCALARS)
    ),
)
ALGORITHMS = st.one_of(
    st.builds(P2PPull, timeout=OBJECTS, compress=OBJECTS, peers=OBJECTS),
    st.builds(GoSGD, p=OBJECTS, W=OBJECTS),
    st.builds(SGP, schedule=OBJECTS, overlap=OBJECTS),
    st.builds(DPSGD, local_steps=OBJECTS, timeout=OBJECTS),
    st.builds(FedAvg, rounds=OBJECTS, C=OBJECTS, E=OBJECTS, mu=OBJECTS, stragglers=OBJECTS),
    st.builds(RWM, share=st.one_of(OBJECTS, st.just(sharing.Full()))),
    OBJECTS,
)


@CI
@given(
    st.dictionaries(st.sampled_from(SETTINGS), OBJECTS, max_size=3),
    ALGORITHMS,
    st.one_of(TEXT, st.sampled_from(["x", "a/b", ".."]), OBJECTS),
)
def test_hostile_experiment_objects_are_one_line_errors_or_pass_every_check(
    shared, algorithm, name
):
    one_line_or_nothing(
        lambda: Experiment("objects", [Run(name, algorithm), Run("b", SGD())], **(TINY | shared))
    )


# small values, so that whatever passes the checks runs in a moment
SMALL = st.sampled_from(
    [v for v in LITERALS.elements if v not in ("100000", "10**9", "2**63", "2**70", "7")]
)


# values that often pass, so that the runs get made (models, data sets, modes, graphs...)
PLAUSIBLE = {
    "lr": ["0", "0.5", "3"],
    "momentum": ["0.9"],
    "batch": ["1", "3", "64"],
    "workers": ["2", "5", "16"],
    "steps": ["1", "3"],
    "until": ["0", "'1us'", "'1ms'"],
    "eval_every": ["1", "'1us'", "'1ms'"],
    "eval_nodes": ["1", "2"],
    "eval_subset": ["1", "7"],
    "eval_local": ["True"],
    "seed": ["0", "7", "2**62"],
    "stop": ["'first'"],
    "lr_schedule": ["'cosine'"],
    "execution": ["'loop'", "'stacked'", "'grouped'", "'vmap'", "'calibrate'"],
    "data": ["synthetic_cifar10", "synthetic_femnist", "synthetic_movielens"],
    "model": ["mlp1", "small_cnn", "mf", "cifar_cnn"],
    "topology": ["ring", "star", "exponential", "hypercube", "torus", "k_regular"],
    "partition": ["shards", "dirichlet", "data_parallel", "per_user"],
    "alpha": ["0.01", "100"],
    "shards_per_node": ["1", "5"],
    "degree": ["1", "2", "3"],
    "p": ["0.1", "1"],
    "network.bandwidth": ["'1Mbit/s'", "1"],
    "network.latency": ["'10s'", "1e-9"],
    "network.loss": ["1", "0.5"],
    "network.noise": ["1"],
    "network.queue": ["0", "'100B'"],
    "network.sharing": ["'fifo'"],
    "compute.step_time": ["1e-9", "'10s'"],
    "compute.jitter": ["3"],
    "compute.stragglers": ["1"],
    "compute.straggler_factor": ["1000"],
    "p2p.algorithm.timeout": ["0", "'1us'"],
    "p2p.algorithm.compress": ["True"],
    "gossip.algorithm.p": ["0", "0.5"],
}
PLAUSIBLE_PAIRS = st.sampled_from(sorted(PLAUSIBLE)).flatmap(
    lambda key: st.tuples(st.just(key), st.sampled_from(PLAUSIBLE[key]))
)


@settings(CI, max_examples=int(os.environ.get("RUN_EXAMPLES", 25)))
@given(st.lists(PLAUSIBLE_PAIRS | st.tuples(KEYS, SMALL | TEXT), min_size=1, max_size=3))
def test_what_passes_every_check_runs(assignments):
    import netsim

    e = experiment()
    try:
        e.override([f"{key}={value}" for key, value in assignments])
        netsim.run(e, out=OUT, progress=False, plot=False)
    except USER_ERRORS as error:
        assert "\n" not in str(error)


@pytest.mark.slow
@settings(CI, max_examples=20_000)
@given(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4))
def test_many_more_hostile_set_values(assignments):
    test_hostile_set_values_are_one_line_errors_or_pass_every_check.hypothesis.inner_test(
        assignments
    )


@pytest.mark.slow
@settings(CI, max_examples=400)
@given(st.lists(PLAUSIBLE_PAIRS | st.tuples(KEYS, SMALL | TEXT), min_size=1, max_size=4))
def test_many_more_runs_of_what_passes(assignments):
    test_what_passes_every_check_runs.hypothesis.inner_test(assignments)
