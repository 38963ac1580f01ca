"""Max-min sharing against straightforward references: rates, groups, and whole runs."""

import math
from collections import Counter

import numpy as np
import pytest
import simpy

from netsim.network.maxmin import NO_LINK, MaxMin, connected, max_min


def progressive_filling(flows: list[tuple[int, ...]], capacity: list[float]) -> list[float]:
    """Textbook progressive filling: the link with the smallest fair share fills first and
    freezes its flows at that share; repeat with what is left."""
    rate: list[float | None] = [None] * len(flows)
    spare = list(capacity)
    while None in rate:
        count = Counter(link for r, f in zip(rate, flows, strict=True) if r is None for link in f)
        share, tightest = min((spare[link] / n, link) for link, n in count.items())
        for i, links in enumerate(flows):
            if rate[i] is None and tightest in links:
                rate[i] = share
                for link in links:
                    spare[link] -= share
    return rate


def random_flows(rng: np.random.Generator, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flows through width distinct links each (maybe NO_LINK last); capacities with ties."""
    n_links = int(rng.integers(3, 40))
    levels = rng.choice([1.0, 2.5, 3.0, 10.0, 1e3], n_links)
    capacity = np.concatenate([[math.inf], levels if rng.random() < 0.5 else rng.random(n_links)])
    n_flows = int(rng.integers(1, 120))
    links = np.array(
        [rng.choice(np.arange(1, n_links + 1), width, replace=False) for _ in range(n_flows)]
    )
    if width == 3:
        links[rng.random(n_flows) < 0.5, 2] = NO_LINK
    return links.T.copy(), capacity


@pytest.mark.parametrize("width", [2, 3, "3, no edge links"])
@pytest.mark.parametrize("seed", range(40))
def test_max_min_equals_progressive_filling(seed, width):
    links, capacity = random_flows(np.random.default_rng(seed), 3 if width != 2 else 2)
    if width == "3, no edge links":  # a row of NO_LINK only
        links[2] = NO_LINK
    expected = progressive_filling([tuple(f) for f in links.T.tolist()], capacity.tolist())
    assert max_min(links, capacity).tolist() == pytest.approx(expected, rel=1e-9)


def test_max_min_of_a_parameter_server_is_one_round_of_equal_shares():
    n = 1000
    capacity = np.array([math.inf] + [1e9] * (n + 1))
    links = np.array([np.arange(1, n + 1), np.full(n, n + 1)])
    assert (max_min(links, capacity) == 1e6).all()


def test_flows_through_no_link_at_all_are_unbounded():
    capacity = np.array([math.inf, 1e9])
    assert (max_min(np.zeros((2, 3), dtype=np.intp), capacity) == math.inf).all()


def components(links: np.ndarray) -> list[int]:
    """Union-find over flows sharing a link; each flow's label is its smallest member."""
    parent = list(range(links.shape[1]))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    first = {}
    for i, flow in enumerate(links.T.tolist()):
        for link in flow:
            if link != NO_LINK:
                j = first.setdefault(link, i)
                a, b = sorted((root(i), root(j)))
                parent[b] = a
    return [root(i) for i in range(links.shape[1])]


@pytest.mark.parametrize("seed", range(20))
def test_connected_labels_components(seed):
    links, capacity = random_flows(np.random.default_rng(seed), 3)
    assert connected(links, len(capacity)).tolist() == components(links)


def fluid(starts: list[tuple[float, tuple[int, ...], float]], capacity: list[float]) -> list[float]:
    """End times of flows (start, links, bits), by brute force: every rate recomputed over all
    flows at every start and end."""
    t, bits, ends = 0.0, {}, [math.nan] * len(starts)
    order = sorted(range(len(starts)), key=lambda i: starts[i][0])
    while order or bits:
        active = list(bits)
        rates = progressive_filling([starts[i][1] for i in active], capacity) if active else []
        left = {i: bits[i] / r for i, r in zip(active, rates, strict=True)}
        t_next = min([t + s for s in left.values()] + [starts[order[0]][0] for _ in order[:1]])
        for i, r in zip(active, rates, strict=True):
            bits[i] -= r * (t_next - t)
            if left[i] - (t_next - t) < 1e-9:
                ends[i] = t_next
                del bits[i]
        t = t_next
        while order and starts[order[0]][0] == t:
            i = order.pop(0)
            bits[i] = starts[i][2]
    return ends


@pytest.mark.parametrize("seed", range(30))
def test_flows_end_when_a_brute_force_fluid_model_says(seed):
    # Random starts on a few links: groups merge as flows join and split as they leave.
    rng = np.random.default_rng(seed)
    n_links, width = int(rng.integers(3, 50)), int(rng.integers(2, 4))
    capacity = [math.inf] + rng.choice([1.0, 2.0, 5.0], n_links).tolist()
    starts = []
    for _ in range(int(rng.integers(1, 60))):
        links = tuple(rng.choice(np.arange(1, n_links + 1), width, replace=False).tolist())
        starts.append((float(rng.choice([0.0, 0.5, 1.0, rng.random() * 3])), links, rng.random()))
    env = simpy.Environment()
    sharing = MaxMin(env, capacity, width)
    ends = [math.nan] * len(starts)

    def start(i, _event):
        sharing.start(starts[i][1], starts[i][2], lambda: ends.__setitem__(i, env.now))

    for i, (t, _, _) in enumerate(starts):
        env.timeout(t).callbacks.append(lambda event, i=i: start(i, event))
    env.run()
    assert ends == pytest.approx(fluid(starts, capacity), rel=1e-9)


def weighted_filling(flows, capacity, weight) -> list[float]:
    """Textbook weighted progressive filling: the link with the smallest spare capacity per
    unit of its unfrozen flows' weight fills first; each of its flows gets weight x that."""
    rate: list[float | None] = [None] * len(flows)
    spare = list(capacity)
    while None in rate:
        total = Counter()
        for r, f, w in zip(rate, flows, weight, strict=True):
            for link in f if r is None else ():
                total[link] += w
        level, tightest = min((spare[link] / w, link) for link, w in total.items())
        for i, links in enumerate(flows):
            if rate[i] is None and tightest in links:
                rate[i] = weight[i] * level
                for link in links:
                    spare[link] -= rate[i]
    return rate


@pytest.mark.parametrize("width", [2, 3])
@pytest.mark.parametrize("seed", range(40))
def test_weighted_max_min_equals_weighted_progressive_filling(seed, width):
    rng = np.random.default_rng(seed)
    links, capacity = random_flows(rng, width)
    weight = rng.lognormal(0.0, 1.0, links.shape[1])
    expected = weighted_filling([tuple(f) for f in links.T.tolist()], capacity.tolist(), weight)
    rates = max_min(links, capacity, weight)
    assert rates.tolist() == pytest.approx(expected, rel=1e-9)
    used = np.bincount(links.ravel(), np.tile(rates, width), minlength=len(capacity))
    assert (used[1:] <= capacity[1:] * (1 + 1e-9)).all()  # no link carries more than it has
    # equal weights are plain max-min
    assert max_min(links, capacity, np.full(links.shape[1], 2.5)).tolist() == pytest.approx(
        max_min(links, capacity).tolist(), rel=1e-12
    )


def test_weighted_flows_through_one_link_end_in_weight_order_and_the_link_never_idles():
    env = simpy.Environment()
    sharing = MaxMin(env, [math.inf, 12.0], width=1, weighted=True)
    ends = {}
    for name, weight in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        sharing.start((1,), 12.0, lambda name=name: ends.setdefault(name, env.now), weight)
    env.run()
    # 6 units of weight: c at 6/12 per s ends at 2 s (a and b moved 4 and 8 bits by then);
    # b then at 2/3 of 12 ends at 2 + 4/8 = 2.5 s; a has moved 6, ends at 2.5 + 6/12 = 3 s
    assert ends == pytest.approx({"c": 2.0, "b": 2.5, "a": 3.0}, rel=1e-12)


def _ends(starts, together, ramp=(0.0, 0)):
    """Flows of 30 bits through one 10 bit/s link: {name: end}, from (name, start, weight)."""
    env = simpy.Environment()
    sharing = MaxMin(env, [math.inf, 10.0], width=1, weighted=True, ramp=ramp, together=together)
    ends = {}

    def start(name, at, weight, bits):
        yield env.timeout(at)
        sharing.start((1,), bits, lambda: ends.setdefault(name, env.now), weight)

    for name, at, weight, *bits in starts:
        env.process(start(name, at, weight, bits[0] if bits else 30.0))
    env.run()
    return ends


def test_together_weights_count_only_among_flows_that_start_within_the_window():
    # b starts 0.25 s after a, within 0.5 s: they race, 3:1, from then on. a moved 2.5 bits
    # alone, then at 7.5 bit/s ends at 0.25 + 27.5 / 7.5; b ends when the link has moved 60
    assert _ends([("a", 0, 3.0), ("b", 0.25, 1.0)], 0.5) == pytest.approx(
        {"a": 0.25 + 27.5 / 7.5, "b": 6.0}, rel=1e-12
    )
    # b starts 1 s after a, which is no longer young: even shares whatever b drew (a: 10 bits
    # alone, then 20 at 5 bit/s)
    assert _ends([("a", 0, 3.0), ("b", 1.0, 3.0)], 0.5) == pytest.approx(
        {"a": 5.0, "b": 6.0}, rel=1e-12
    )
    # a ended before b started: b starts alone and keeps weight 1 when c comes 0.8 s later
    # (b: 8 bits alone, then 12 at 5 bit/s; c: 20 bits, 12 at 5 and 8 alone)
    ends = _ends([("a", 0, 5.0, 1.0), ("b", 0.2, 3.0, 20.0), ("c", 1.0, 1.0, 20.0)], 0.5)
    assert ends == pytest.approx({"a": 0.1, "b": 3.4, "c": 4.2}, rel=1e-12)


def test_together_without_a_window_races_only_flows_that_start_at_the_same_instant():
    # a and b start together and split 3:1 (a: 30 bits at 7.5 bit/s); c 1 ms later does not
    # race them: its weight 1 against their 3 and 1
    ends = _ends([("a", 0, 3.0), ("b", 0, 1.0), ("c", 1e-3, 9.0, 1.0)], 0.0)
    a_rate, c_rate = 10 * 3 / 5, 10 * 1 / 5  # from 1 ms until c ends
    moved = 7.5e-3 + (1.0 / c_rate) * a_rate
    assert ends["c"] == pytest.approx(1e-3 + 1.0 / c_rate, rel=1e-12)
    assert ends["a"] == pytest.approx(ends["c"] + (30 - moved) / 7.5, rel=1e-12)
    assert ends["b"] == pytest.approx(6.1, rel=1e-12)


def test_a_racing_flows_weight_multiplies_its_ramp():
    # ramp (0.5 s, one doubling): a flow starts at half its weight. a (drew 3) starts alone at
    # weight 1/2; b (drew 1) joins at 0.25 s: a 3/2 against b 1/2 until a doubles at 0.5 s
    # (3 : 1/2), then b doubles at 0.75 s (3 : 1)
    ends = _ends([("a", 0, 3.0), ("b", 0.25, 1.0)], 0.5, ramp=(0.5, 1))
    moved = 2.5 + 0.25 * 7.5 + 0.25 * 10 * 3 / 3.5
    assert ends == pytest.approx({"a": 0.75 + (30 - moved) / 7.5, "b": 6.0}, rel=1e-12)
