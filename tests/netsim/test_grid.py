"""Expanding an experiment into a sweep's runs: the grid, the run names, the seeds."""

import pytest

from netsim import Experiment, Network, Run
from netsim.algorithms import SGD, GoSGD, P2PPull
from netsim.experiment import ConfigError
from netsim.grid import expand, label, parse_grid, parse_seeds, seeds_of


def experiment(**shared) -> Experiment:
    runs = [
        Run("single", SGD(), workers=1),
        Run("gossip", GoSGD(p=0.1)),
        Run("p2p", P2PPull(), network=Network(latency="5ms")),
    ]
    return Experiment("grid", runs=runs, steps=10, pairs=[("gossip", "p2p")], **shared)


def settings(expanded: Experiment) -> dict:
    return dict(expanded.resolve(everything=True))


def test_parse_grid_splits_values_on_commas_outside_brackets():
    grid = parse_grid(["algorithm.p=0.1,0.5", "network.bandwidth=1Gbit/s,100Mbit/s"])
    assert grid == {"algorithm.p": [0.1, 0.5], "network.bandwidth": ["1Gbit/s", "100Mbit/s"]}
    assert parse_grid(["x=[1,2],(3,4),{'a':1},5"]) == {"x": [[1, 2], (3, 4), {"a": 1}, 5]}


@pytest.mark.parametrize(
    "assignments, message",
    [
        (["p"], "--sweep takes KEY=V1,V2,..., got 'p'"),
        (["p="], "--sweep takes KEY=V1,V2,..., got 'p='"),
        (["p=1", "p=2"], "--sweep p is given twice"),
    ],
)
def test_parse_grid_errors_are_one_line(assignments, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        parse_grid(assignments)


def test_seeds_are_a_count_from_each_runs_own_seed_or_a_list():
    assert parse_seeds("3") == 3 and parse_seeds("0,4,2") == [0, 4, 2] and parse_seeds("7,") == [7]
    assert (
        seeds_of(0, None) == [0] and seeds_of(5, 3) == [5, 6, 7] and seeds_of(5, [1, 2]) == [1, 2]
    )
    for bad in ("x", "1.5", "1,a"):
        with pytest.raises(ConfigError, match="--seeds takes"):
            parse_seeds(bad)
    for bad, message in (
        (0, "K >= 1"),
        ([], "seeds >= 0"),
        ([-1], "seeds >= 0"),
        ([1, 1], "twice"),
    ):
        with pytest.raises(ConfigError, match=message):
            seeds_of(0, bad)


def test_a_shared_key_reaches_every_run_that_does_not_set_it_itself():
    expanded, points = expand(experiment(), {"workers": [2, 3], "network.latency": ["1ms"]})
    # single sets workers itself; p2p its own network
    assert list(points) == [
        "single,network.latency=1ms",
        "gossip,workers=2,network.latency=1ms",
        "gossip,workers=3,network.latency=1ms",
        "p2p,workers=2",
        "p2p,workers=3",
    ]
    resolved = settings(expanded)
    assert resolved["gossip,workers=3,network.latency=1ms"].worker_count == 3
    assert resolved["gossip,workers=3,network.latency=1ms"].network.latency == "1ms"
    assert resolved["single,network.latency=1ms"].worker_count == 1
    assert resolved["p2p,workers=2"].network.latency == "5ms"  # its own network stays
    assert points["p2p,workers=2"] == {"run": "p2p", "values": {"workers": 2}}


def test_algorithm_keys_reach_the_runs_whose_algorithm_has_the_field():
    expanded, points = expand(experiment(), {"algorithm.p": [0.2, 0.8]})
    assert list(points) == ["single", "gossip,algorithm.p=0.2", "gossip,algorithm.p=0.8", "p2p"]
    assert settings(expanded)["gossip,algorithm.p=0.8"].algorithm == GoSGD(p=0.8)
    assert settings(expanded)["single"] == dict(experiment().resolve())["single"]


def test_a_run_key_reaches_that_run_and_names_it_without_the_run():
    expanded, points = expand(experiment(), {"p2p.network.latency": ["1ms", "20ms"]})
    assert list(points) == [
        "single",
        "gossip",
        "p2p,network.latency=1ms",
        "p2p,network.latency=20ms",
    ]
    assert settings(expanded)["p2p,network.latency=20ms"].network.latency == "20ms"
    assert points["p2p,network.latency=1ms"]["values"] == {"p2p.network.latency": "1ms"}


def test_pairs_follow_the_points_both_runs_have_and_only_keeps_its_runs():
    base = experiment()
    base.select(["gossip"])
    expanded, _ = expand(base, {"workers": [2, 3]})
    assert expanded.pairs == [
        ("gossip,workers=2", "p2p,workers=2"),
        ("gossip,workers=3", "p2p,workers=3"),
    ]
    assert [name for name, _ in expanded.resolve()] == ["gossip,workers=2", "gossip,workers=3"]


def test_no_grid_keeps_the_experiment_as_it_is():
    expanded, points = expand(experiment(), {})
    assert [r.name for r in expanded.runs] == ["single", "gossip", "p2p"]
    assert expanded.pairs == [("gossip", "p2p")] and set(points) == {"single", "gossip", "p2p"}


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"algorithm.q": [1, 2]}, "sweep 'algorithm.q' changes no run: no run's algorithm has"),
        ({"stepz": [1]}, "unknown --set key 'stepz'"),
        ({"lr": ["1/2", "1_2"]}, "sweep 'lr': two of its values"),
        ({"lr": []}, "sweep 'lr' needs a list of values"),
    ],
)
def test_grid_errors_are_one_line_before_any_run(grid, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        expand(experiment(), grid)


def test_a_key_every_run_sets_itself_says_to_sweep_it_per_run():
    runs = [Run("a", SGD(), lr=0.1), Run("b", SGD(), lr=0.2)]
    with pytest.raises(ConfigError, match="every run sets 'lr' itself; sweep RUN.lr"):
        expand(Experiment("e", runs=runs, steps=1), {"lr": [0.1]})


def test_labels_keep_run_folders_flat():
    assert label("100Mbit/s") == "100Mbit_s" and label(0.5) == "0.5" and label([1, 2]) == "1_2"
