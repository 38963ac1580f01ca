"""Experiment specs: overrides land where they should; mistakes are one clear line."""

import networkx as nx
import pytest

from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import SGD, P2PPull
from netsim.experiment import ConfigError, parse_value
from netsim.runner import preflight


def spec(**shared):
    shared = {"data": "synthetic_fmnist", "steps": 3} | shared
    return Experiment("t", [Run("a", SGD(), workers=1), Run("b", P2PPull())], **shared)


def resolved(experiment):
    return dict(experiment.resolve())


def test_parse_value_reads_python_literals_and_keeps_text():
    assert parse_value("20") == 20
    assert parse_value("0.5") == 0.5
    assert parse_value("None") is None
    assert parse_value("300Mbit/s") == "300Mbit/s"


def test_shared_set_reaches_runs_that_do_not_set_the_key_themselves():
    e = spec()
    e.override(["workers=8", "lr=0.2"])
    runs = resolved(e)
    assert runs["a"].workers == 1 and runs["b"].workers == 8
    assert runs["a"].lr == runs["b"].lr == 0.2


def test_run_level_and_nested_overrides():
    e = spec(network=Network(latency="1ms"))
    e.override(
        ["b.workers=3", "network.bandwidth=10Mbit/s", "compute.jitter=0.1", "algorithm.timeout=2.5"]
    )
    runs = resolved(e)
    assert runs["b"].workers == 3
    assert runs["b"].network == Network(latency="1ms", bandwidth="10Mbit/s")
    assert runs["a"].compute == Compute(jitter=0.1)
    assert runs["b"].algorithm == P2PPull(timeout=2.5)


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("stepz=3", "unknown --set key 'stepz'"),
        ("network.speed=1", "has no field 'speed'"),
        ("algorithm.nope=1", "no run's algorithm has a field 'nope'"),
        ("steps", "--set takes key=value"),
    ],
)
def test_bad_overrides_are_one_line(assignment, message):
    with pytest.raises(ConfigError, match=message) as info:
        spec().override([assignment])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "shared, message",
    [
        ({"steps": None}, "needs a stop"),
        ({"batch": 0}, "batch must be a positive integer"),
        ({"model": "resnet"}, "unknown model 'resnet'"),
        ({"stop": "never"}, "stop must be"),
    ],
)
def test_invalid_settings_fail_before_any_run(shared, message):
    with pytest.raises(ConfigError, match=message):
        spec(**shared).resolve()


def test_unknown_experiment_setting_is_rejected_at_construction():
    with pytest.raises(ConfigError, match="unknown experiment setting 'wokers'"):
        Experiment("t", [Run("a", SGD())], wokers=3)


def test_user_graph_is_checked_for_connectivity_when_the_algorithm_needs_it():
    graph = nx.Graph([(0, 1), (2, 3)])
    e = Experiment(
        "t", [Run("p2p", P2PPull())], data="synthetic_fmnist", steps=1, topology=graph, workers=4
    )
    ((_, settings),) = e.resolve()
    with pytest.raises(ValueError, match="2 components"):
        preflight(settings)


def test_workers_that_contradict_the_users_graph_are_one_line():
    graph = nx.cycle_graph(16)
    e = Experiment("t", [Run("p2p", P2PPull())], data="synthetic_fmnist", steps=1, topology=graph)
    e.override(["workers=8"])
    with pytest.raises(ConfigError) as error:
        e.resolve()
    message = str(error.value)
    assert "workers=8" in message and "16 nodes" in message and "\n" not in message
    assert "drop workers or pass a graph of 8 nodes" in message


def test_the_users_graph_sets_the_workers_unless_workers_is_set_to_its_size():
    graph = nx.cycle_graph(16)
    for given in ({}, {"workers": 16}):
        e = Experiment(
            "t", [Run("p2p", P2PPull())], data="synthetic_fmnist", steps=1, topology=graph, **given
        )
        ((_, settings),) = e.resolve()
        assert settings.worker_count == 16
        assert preflight(settings)[0].number_of_nodes() == 16
    # workers=1 is a single-machine baseline, whatever the topology
    e = Experiment("t", [Run("one", P2PPull(), workers=1)], topology=graph, steps=1)
    assert e.resolve()[0][1].graph().number_of_nodes() == 1
    # every worker may be evaluated alone, not just the default's 4
    e = Experiment("t", [Run("p2p", P2PPull())], topology=graph, steps=1, eval_nodes=16)
    assert e.resolve()[0][1].eval_nodes == 16


def test_without_a_graph_workers_defaults_to_4():
    ((_, settings),) = Experiment("t", [Run("p2p", P2PPull())], steps=1).resolve()
    assert settings.worker_count == 4 and settings.graph().number_of_nodes() == 4


def test_a_network_override_for_a_role_no_run_has_is_a_typo(tmp_path):
    from netsim import run

    e = Experiment(
        "t",
        [Run("a", SGD(), workers=1)],
        data="synthetic_fmnist",
        steps=1,
        network=Network(nodes={"sever": {"bandwidth": "1Mbit/s"}}),
    )
    with pytest.raises(ConfigError, match="Network.nodes\\['sever'\\]: no run has a node"):
        run(e, out=tmp_path, progress=False)


def test_select_runs_only_the_named_runs_and_rejects_unknown_names():
    e = spec()
    e.select(["b"])
    assert [name for name, _ in e.resolve()] == ["b"]
    with pytest.raises(ConfigError, match="no run named 'c'; runs: a, b"):
        e.select(["c"])


def test_algorithm_checks_its_hyper_parameters_against_the_run():
    from netsim.algorithms import GoSGD
    from netsim.algorithms.ops import AlgorithmError
    from topologies import weights

    e = Experiment(
        "t",
        [Run("g", GoSGD(W=weights.uniform_doubly_stochastic(3)))],
        data="synthetic_fmnist",
        steps=1,
        workers=4,
    )
    ((_, settings),) = e.resolve()
    with pytest.raises(AlgorithmError, match="GoSGD.W is 3 x 3 but the run has 4 workers"):
        preflight(settings)
