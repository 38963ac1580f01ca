import dataclasses
import json

import numpy as np
import pytest
import simpy
import torch

from netsim.network import Network, NetworkError
from netsim.network.fabric import Fabric
from netsim.network.message import Message
from netsim.network.spec import TCP_ACKS, TCP_RAMP, TCP_UNFAIRNESS
from netsim.units import parse_rate

SHARINGS = ["maxmin", "fifo"]


def approx(value):
    return pytest.approx(value, rel=1e-9, abs=1e-15)


def sized(src: int, dst: int, nbytes: int, kind: str = "x") -> Message:
    """A message of exactly nbytes on the wire, carrying a uint8 tensor."""
    n = nbytes - 40
    for _ in range(3):
        msg = Message(src, dst, kind, {"x": torch.zeros(n, dtype=torch.uint8)})
        if msg.size == nbytes:
            return msg
        n += nbytes - msg.size
    raise AssertionError(f"no message of {nbytes} bytes")


def simulate(network: Network, roles, sends, seed: int = 0):
    """Run sends, a list of (time, message); return the fabric and messages in done order."""
    roles = ["worker"] * roles if isinstance(roles, int) else roles
    env = simpy.Environment()
    done = []
    fabric = Fabric(env, network, roles, np.random.default_rng(seed), done.append)

    def send_at(t, msg):
        yield env.timeout(t)
        fabric.transmit(msg)

    for t, msg in sends:
        env.process(send_at(t, msg))
    env.run()
    return fabric, done


@pytest.mark.parametrize("sharing", SHARINGS)
def test_one_transfer_takes_size_over_bandwidth_plus_latency(sharing):
    msg = Message(0, 1, "gossip", {"x": torch.randn(1000), "alpha": 0.5})
    network = Network(bandwidth="100Mbit/s", latency="5ms", sharing=sharing)
    simulate(network, 2, [(0.0, msg)])
    assert msg.t_send == 0.0 and not msg.dropped
    assert msg.t_arrive == approx(msg.size * 8 / 100e6 + 0.005)


@pytest.mark.parametrize("n", [1, 4, 200])
@pytest.mark.parametrize("sharing", SHARINGS)
def test_n_senders_into_one_receiver(sharing, n):
    size, bandwidth, latency = 10_000, 1e8, 0.002
    msgs = [sized(i, n, size) for i in range(n)]
    simulate(Network(bandwidth, latency, sharing), n + 1, [(0.0, m) for m in msgs])
    if sharing == "maxmin":
        expected = [n * size * 8 / bandwidth + latency] * n
    else:
        expected = [k * size * 8 / bandwidth + latency for k in range(1, n + 1)]
    assert [m.t_arrive for m in msgs] == approx(expected)


def test_max_min_rates_rebalance_when_flows_start_and_end():
    # A=0 (uplink 10 Mbit/s) sends to C=2 (downlink 12 Mbit/s) and D=3; B=1 sends to C, and
    # to D from t=0.25. Progressive filling by hand, in Mbit/s and Mbit:
    # t=0:    A's uplink 10/2=5 fills first: AC=AD=5; C's downlink leaves BC=12-5=7.
    # t=0.2:  AC (1 Mbit) done. AD=10 (1 Mbit left), BC=12 (1.6 Mbit left).
    # t=0.25: BD starts: AD=10, BC=12, BD=min(100-12, 100-10)=88. AD has 0.5 Mbit left.
    # t=0.3:  AD done; BD stays 88 (B's uplink). BC has 0.4 Mbit left: done at 0.3+0.4/12.
    # t=1/3:  BD alone: 100; it has 10-88*(1/3-0.25) Mbit left.
    network = Network("100Mbit/s", nodes={0: {"up": "10Mbit/s"}, 2: {"down": "12Mbit/s"}})
    ac, ad = sized(0, 2, 125_000), sized(0, 3, 250_000)
    bc, bd = sized(1, 2, 375_000), sized(1, 3, 1_250_000)
    simulate(network, 4, [(0.0, ac), (0.0, ad), (0.0, bc), (0.25, bd)])
    bd_end = 1 / 3 + (10 - 88 * (1 / 3 - 0.25)) / 100
    assert [ac.t_arrive, ad.t_arrive, bc.t_arrive, bd.t_arrive] == approx([0.2, 0.3, 1 / 3, bd_end])
    assert bd_end == approx(0.36)


def test_a_flow_slows_down_when_another_joins_its_link():
    # Alone, the first sends half its bits by T/2; then at B/2 it needs T more (ends 1.5 T),
    # while the second has sent half by then and finishes alone at B in T/2 (ends 2 T).
    size, bandwidth = 50_000, 1e8
    first, second = sized(0, 2, size), sized(1, 2, size)
    t = size * 8 / bandwidth
    simulate(Network(bandwidth), 3, [(0, first), (t / 2, second)])
    assert [first.t_arrive, second.t_arrive] == approx([1.5 * t, 2 * t])


def test_one_bottleneck_is_processor_sharing():
    # Flows of sizes s1 <= ... <= sn sharing one link finish in size order, the k-th
    # at T(k-1) + (n-k+1) (s_k - s_(k-1)) 8 / B: an exact oracle that also exercises the
    # finishing of flows left with rounding dust.
    sizes = sorted(np.random.default_rng(3).integers(1_000, 100_000, 30).tolist())
    bandwidth = 3e7 / 7
    msgs = [sized(i, 30, s) for i, s in enumerate(sizes)]
    simulate(Network(bandwidth=1e12, nodes={30: {"down": bandwidth}}), 31, [(0, m) for m in msgs])
    expected, t, previous = [], 0.0, 0
    for k, s in enumerate(sizes):
        t += (len(sizes) - k) * (s - previous) * 8 / bandwidth
        expected.append(t)
        previous = s
    assert [m.t_arrive for m in msgs] == approx(expected)


def count_timeouts(network: Network, roles: list[str], msgs: list[Message]) -> int:
    """Send msgs at time 0 and count the SimPy timeouts the fabric schedules."""
    env = simpy.Environment()
    delays = []
    timeout = env.timeout
    env.timeout = lambda delay, value=None: delays.append(delay) or timeout(delay, value)
    fabric = Fabric(env, network, roles, np.random.default_rng(0), lambda msg: None)
    for msg in msgs:
        fabric.transmit(msg)
    env.run()
    return len(delays)


def test_only_flows_whose_rate_changes_are_rescheduled():
    # 20 workers, each held to its 1 Mbit/s uplink, share the server's 1 Gbit/s downlink: one
    # component, yet no start or end changes another flow's rate, so each message costs one
    # latency timeout and one completion timeout, nothing more.
    network = Network("1Gbit/s", nodes={"worker": {"up": "1Mbit/s"}})
    msgs = [sized(i, 0, 1000 * i) for i in range(1, 21)]
    assert count_timeouts(network, ["server"] + ["worker"] * 20, msgs) == 2 * len(msgs)
    assert [m.t_arrive for m in msgs] == approx([1000 * i * 8 / 1e6 for i in range(1, 21)])


def test_flows_starting_together_are_shared_once():
    # A round of 100 equal messages into one server: rates are set once for all of them,
    # not once per start (which would reschedule every flow again: n^2 wake-ups), and as they
    # end together, the one wake-up of their group ends them all.
    msgs = [sized(i, 0, 5000) for i in range(1, 101)]
    assert count_timeouts(Network("1Gbit/s"), ["worker"] * 101, msgs) == len(msgs) + 1
    assert [m.t_arrive for m in msgs] == approx([100 * 5000 * 8 / 1e9] * 100)


def test_a_group_schedules_only_its_earliest_end():
    # 200 workers with different sizes into one server: every end changes every other rate,
    # yet only the group's next end is scheduled: one latency and one end per message, not
    # a wake-up per flow per end (n^2 / 2).
    msgs = [sized(i, 0, 1000 + 37 * i) for i in range(1, 201)]
    assert count_timeouts(Network("1Gbit/s"), ["worker"] * 201, msgs) == 2 * len(msgs)


def test_fifo_hops_due_at_one_instant_share_one_timeout():
    # 50 messages of one size between distinct pairs, sent together: their latencies end at
    # one instant, and then their transfers: a timeout for each instant, not each message.
    msgs = [sized(i, 50 + i, 5000) for i in range(50)]
    assert count_timeouts(Network("1Gbit/s", "1ms", "fifo"), ["worker"] * 100, msgs) == 2
    assert [m.t_arrive for m in msgs] == approx([0.001 + 5000 * 8 / 1e9] * 50)


def test_a_flow_within_a_nanosecond_of_its_end_ends_with_its_neighbour():
    # At 1 Tbit/s shared by two, one extra byte is 16 ps of work: rounding dust, so the
    # larger message ends together with the smaller one instead of 8 ps later.
    small, large = sized(0, 2, 10_000), sized(1, 2, 10_001)
    simulate(Network("1Tbit/s"), 3, [(0, small), (0, large)])
    assert small.t_arrive == large.t_arrive == approx(2 * 10_000 * 8 / 1e12)


@pytest.mark.parametrize("sharing", SHARINGS)
def test_goodput_scales_times_and_edges_have_their_own_capacity_and_latency(sharing):
    size, bandwidth = 20_000, 1e9
    edges = {(1, 0): {"bandwidth": "10Mbit/s", "latency": "2ms"}}
    network = Network(bandwidth, latency="1ms", sharing=sharing, goodput=0.956, edges=edges)
    on_edge, reverse, elsewhere = sized(0, 1, size), sized(1, 0, size), sized(0, 2, size)
    simulate(network, 3, [(0, on_edge), (0, reverse), (0, elsewhere)])
    assert on_edge.t_arrive == approx(size * 8 / (10e6 * 0.956) + 0.002)
    assert reverse.t_arrive == approx(size * 8 / (10e6 * 0.956) + 0.002)
    assert elsewhere.t_arrive == approx(size * 8 / (bandwidth * 0.956) + 0.001)


def test_node_overrides_by_role_and_id():
    nodes = {2: {"up": "50Mbit/s"}, "server": {"bandwidth": "300Mbit/s"}, "worker": {"up": 2e7}}
    network = Network("1Gbit/s", nodes=nodes)
    nics = network.resolve(["server", "worker", "worker"]).nics
    assert [(nic.up, nic.down) for nic in nics] == [(3e8, 3e8), (2e7, 1e9), (5e7, 1e9)]
    size = 30_000
    to_server, from_server = sized(1, 0, size), sized(0, 2, size)
    simulate(
        Network(nodes={"server": {"bandwidth": "300Mbit/s"}}),
        ["server", "worker", "worker"],
        [(0, to_server), (1, from_server)],
    )
    assert to_server.t_arrive == approx(size * 8 / 300e6)
    assert from_server.t_arrive == approx(1 + size * 8 / 300e6)


def test_fifo_holds_the_uplink_while_waiting_for_the_downlink():
    # 1 sends a large message to 2; 0 sends to 2, then to 3: the message to 2 waits for 2's
    # downlink holding 0's uplink, so the one to 3 waits too, though 3's downlink is idle.
    size, bandwidth = 10_000, 1e8
    large, to_busy, to_idle = sized(1, 2, 5 * size), sized(0, 2, size), sized(0, 3, size)
    network = Network(bandwidth, "1ms", "fifo")
    simulate(network, 4, [(0, large), (0, to_busy), (0, to_idle)])
    t = size * 8 / bandwidth
    assert [large.t_arrive, to_busy.t_arrive, to_idle.t_arrive] == approx(
        [0.001 + 5 * t, 0.001 + 6 * t, 0.001 + 7 * t]
    )


def test_fifo_sends_in_turn_in_order_of_arrival_at_the_nic():
    # 0 sends to 1 at t=0 and t=1ms; 2 sends to 1 at t=0.5ms: 1's downlink serves them in
    # order of arrival there (after latency), each message whole.
    size, bandwidth = 10_000, 1e8
    first, second, third = sized(0, 1, size), sized(2, 1, size), sized(0, 1, size)
    sends = [(0, first), (0.0005, second), (0.001, third)]
    simulate(Network(bandwidth, "0.1ms", "fifo"), 3, sends)
    t = size * 8 / bandwidth
    assert [first.t_arrive, second.t_arrive, third.t_arrive] == approx(
        [0.0001 + t, 0.0001 + 2 * t, 0.0001 + 3 * t]
    )


def test_fifo_drops_a_long_line_at_a_full_downlink_in_one_go():
    # 2 trickles a message into 1's downlink queue (14 of its 15 kB) for 112 ms. Meanwhile
    # 3,000 messages for 1 wait behind a message 0 sends to 3 until 4 ms; then each finds
    # 1's downlink queue full as it gets 0's uplink, and all are dropped at once.
    size, bandwidth = 10_000, 1e8
    trickle, ahead = sized(2, 1, 14_000), sized(0, 3, 5 * size)
    line = [sized(0, 1, size) for _ in range(3000)]
    network = Network(bandwidth, sharing="fifo", nodes={1: {"queue": 15_000}, 2: {"up": 1e6}})
    fabric, _ = simulate(network, 4, [(0, trickle), (0, ahead)] + [(0, m) for m in line])
    assert ahead.t_arrive == approx(5 * size * 8 / bandwidth)
    assert trickle.t_arrive == approx(14_000 * 8 / 1e6) and not trickle.dropped
    assert all(m.drop_reason == "queue" and m.t_arrive == ahead.t_arrive for m in line)
    assert fabric.counters.dropped["queue"].messages == 3000


@pytest.mark.parametrize("sharing", SHARINGS)
def test_same_seed_same_run(sharing):
    def run():
        rng = np.random.default_rng(4)
        sends = []
        for i in range(300):
            src, dst = (int(v) for v in rng.choice(12, 2, replace=False))
            x = torch.ones(int(rng.integers(0, 3000)))
            sends.append((float(rng.random()) / 10, Message(src, dst, "x", {"x": x, "i": i})))
        network = Network(1e7, "1ms", sharing, loss=0.2, noise=0.1, queue=20_000)
        _, done = simulate(network, 12, sends, seed=9)
        return [(m.i, m.t_arrive, m.drop_reason, m.x.sum().item()) for m in done]

    first = run()
    assert first == run()
    assert {reason for _, _, reason, _ in first} == {"", "loss", "queue"}


@pytest.mark.parametrize("sharing", SHARINGS)
def test_waiting_on_a_delivered_message_resumes_at_once(sharing):
    env = simpy.Environment()
    fabric = Fabric(env, Network(latency="1ms", sharing=sharing), ["a", "b"], None, lambda m: None)
    msg = sized(0, 1, 1000)
    seen = []

    def late(event):
        yield env.timeout(5.0)
        seen.append(((yield event) is msg, env.now))
        both = yield simpy.AllOf(env, [event, fabric.transmit(sized(1, 0, 1000))])
        seen.append((list(both.values())[0] is msg, env.now))

    env.process(late(fabric.transmit(msg)))
    env.run()
    assert seen == [(True, 5.0), (True, approx(5.001 + 1000 * 8 / 1e9))]


@pytest.mark.parametrize("sharing", SHARINGS)
def test_uplink_queue_drops_overflow_at_send(sharing):
    size, bandwidth = 10_000, 1e8
    msgs = [sized(0, 1, size) for _ in range(4)]
    late = sized(0, 1, size)
    network = Network(bandwidth, sharing=sharing, queue=int(2.5 * size))
    fabric, _ = simulate(network, 2, [(0, m) for m in msgs] + [(1.0, late)])
    assert [m.drop_reason for m in msgs + [late]] == ["", "", "queue", "queue", ""]
    assert [m.t_arrive for m in msgs[2:]] == [0.0, 0.0]
    first = size * 8 / bandwidth
    assert msgs[1].t_arrive == approx(2 * first)
    assert late.t_arrive == approx(1.0 + first)
    assert fabric.counters.dropped["queue"].messages == 2
    assert fabric.counters.sent[0].messages == 3 and fabric.counters.received[1].messages == 3


@pytest.mark.parametrize("sharing", SHARINGS)
def test_downlink_queue_drops_when_the_message_would_enter_it(sharing):
    size = 10_000
    first, second = sized(0, 2, size), sized(1, 2, size)
    network = Network(1e8, "3ms", sharing, nodes={2: {"queue": int(1.5 * size)}})
    fabric, _ = simulate(network, 3, [(0, first), (0, second)])
    assert not first.dropped and first.t_arrive == approx(0.003 + size * 8 / 1e8)
    assert second.drop_reason == "queue" and second.t_arrive == approx(0.003)
    assert fabric.counters.sent[1].messages == 0


@pytest.mark.parametrize("sharing", SHARINGS)
def test_loss_one_drops_everything_after_using_bandwidth(sharing):
    msgs = [sized(0, 1, 10_000) for _ in range(3)]
    fabric, _ = simulate(Network(1e8, sharing=sharing, loss=1.0), 2, [(0, m) for m in msgs])
    assert all(m.dropped and m.drop_reason == "loss" for m in msgs)
    assert msgs[-1].t_arrive == approx(3 * 10_000 * 8 / 1e8)
    assert fabric.counters.sent_bytes(0) == 30_000 and fabric.counters.received_bytes(1) == 0


def test_loss_zero_drops_nothing_and_per_edge_loss_applies_to_its_edge_only():
    msgs = [sized(0, 1, 1000), sized(0, 2, 1000), sized(2, 0, 1000)]
    _, done = simulate(Network(edges={(1, 0): {"loss": 1}}), 3, [(0, m) for m in msgs])
    assert [m.dropped for m in msgs] == [True, False, False] and len(done) == 3


def test_loss_is_a_bernoulli_draw_per_message_from_the_run_rng():
    msgs = [sized(0, 1, 1000) for _ in range(200)]
    simulate(Network(loss=0.3), 2, [(0, m) for m in msgs], seed=7)
    assert [m.dropped for m in msgs] == list(np.random.default_rng(7).random(200) < 0.3)


def test_noise_has_sigma_and_touches_only_floating_tensors():
    payload = {"x": torch.zeros(200_000), "xs": [torch.zeros(1000), torch.zeros(1000)]}
    payload |= {"ids": torch.arange(10), "w": 0.5, "a": np.zeros(3)}
    msg = Message(0, 1, "x", payload)
    simulate(Network(noise=0.1), 2, [(0, msg)])
    assert msg.x.std().item() == pytest.approx(0.1, abs=0.001)
    assert abs(msg.x.mean().item()) < 0.001
    assert msg.xs[0].std().item() == pytest.approx(0.1, abs=0.01)
    assert not torch.equal(msg.xs[0], msg.xs[1])
    assert torch.equal(msg.ids, torch.arange(10)) and msg.w == 0.5 and not msg.a.any()


def test_no_noise_is_bit_identical_and_noise_is_reproducible():
    x = torch.randn(1000, dtype=torch.float64)
    clean = Message(0, 1, "x", {"x": x.clone()})
    simulate(Network(), 2, [(0, clean)])
    assert torch.equal(clean.x, x)
    noisy = [Message(0, 1, "x", {"x": x.clone()}) for _ in range(2)]
    for msg in noisy:
        simulate(Network(edges={(0, 1): {"noise": 0.01}}), 2, [(0, msg)], seed=5)
    assert torch.equal(noisy[0].x, noisy[1].x) and not torch.equal(noisy[0].x, x)


def test_noise_on_one_edge_never_reaches_another_recipient_of_the_same_snapshot():
    # A send burst shares one snapshot between its messages; noise is added out of place.
    x = torch.randn(1000)
    shared = x.clone()
    msgs = [Message(0, dst, "x", {"x": shared}) for dst in (1, 2)]
    simulate(Network(edges={(0, 1): {"noise": 0.1}}), 3, [(0, m) for m in msgs])
    assert not torch.equal(msgs[0].x, x)
    assert torch.equal(msgs[1].x, x) and torch.equal(shared, x)


@pytest.mark.parametrize("sharing", SHARINGS)
def test_counters_add_up(sharing):
    rng = np.random.default_rng(1)
    sends = []
    for i in range(60):
        src, dst = (int(v) for v in rng.choice(5, 2, replace=False))
        payload = {"x": torch.zeros(int(rng.integers(0, 5000))), "step": i}
        sends.append((float(rng.random()), Message(src, dst, ["push", "pull"][i % 2], payload)))
    network = Network(2e6, "1ms", sharing, loss=0.3, queue=30_000)
    fabric, done = simulate(network, 5, sends)
    counters = fabric.counters
    msgs = [m for _, m in sends]
    sent = [m for m in msgs if m.drop_reason != "queue"]
    delivered = [m for m in msgs if not m.dropped]
    assert len(done) == 60 and {m.drop_reason for m in msgs} == {"", "loss", "queue"}
    for node in range(5):
        assert counters.sent_bytes(node) == sum(m.size for m in sent if m.src == node)
        assert counters.received_bytes(node) == sum(m.size for m in delivered if m.dst == node)
        assert counters.received[node].data == sum(m.data_bytes for m in delivered if m.dst == node)
    total = counters.to_dict()
    assert total["sent"]["bytes"] == total["received"]["bytes"] + total["dropped"]["loss"]["bytes"]
    assert total["sent"]["messages"] == len(sent)
    for tally in [total["sent"], total["received"], *total["kinds"].values(), *total["edges"]]:
        assert tally["data_bytes"] + tally["metadata_bytes"] == tally["bytes"]
    assert sum(k["bytes"] for k in total["kinds"].values()) == total["sent"]["bytes"]
    assert sum(e["bytes"] for e in total["edges"]) == total["sent"]["bytes"]
    assert sum(t["messages"] for t in total["dropped"].values()) == 60 - len(delivered)
    assert json.loads(json.dumps(total)) == total


def test_message_to_self_is_delivered_now_and_not_counted():
    msg = Message(1, 1, "x", {"x": torch.ones(10**5)})
    fabric, _ = simulate(Network(latency="1s", loss=1.0), 2, [(2.5, msg)])
    assert msg.t_send == msg.t_arrive == 2.5 and not msg.dropped
    assert fabric.counters.to_dict()["sent"]["messages"] == 0


def test_transmit_returns_an_event_that_fires_after_on_done():
    env = simpy.Environment()
    done = []
    fabric = Fabric(env, Network(latency="1ms"), ["a", "b"], np.random.default_rng(0), done.append)
    seen = []

    def sender():
        yield env.timeout(1.0)
        msg = sized(0, 1, 1000)
        event = fabric.transmit(msg)
        assert env.now == 1.0 and msg.t_send == 1.0 and not done
        value = yield event
        seen.append((value is msg, done == [msg], env.now == msg.t_arrive))

    env.process(sender())
    env.run()
    assert seen == [(True, True, True)]


@pytest.mark.parametrize(
    "spec",
    [
        {"bandwidth": "-1Gbit/s"},
        {"bandwidth": 0},
        {"latency": "-1ms"},
        {"sharing": "fair"},
        {"goodput": 0},
        {"goodput": 1.5},
        {"loss": 1.5},
        {"loss": -0.1},
        {"noise": -1},
        {"noise": float("nan")},
        {"queue": "-5MB"},
        {"nodes": {"server": {"bw": 1}}},
        {"nodes": {7: {"up": 1}}},
        {"nodes": {0: "fast"}},
        {"nodes": {0: {"down": "fast"}}},
        {"edges": {(0, 1): {"capacity": 1}}},
        {"edges": {(0, 0): {"loss": 0.1}}},
        {"edges": {(0, 9): {"loss": 0.1}}},
        {"edges": {0: {"loss": 0.1}}},
        {"edges": {(0, 1): {"loss": 0.1}, (1, 0): {"loss": 0.2}}},
        {"edges": {(0, 1): {"loss": 2}}},
        {"unfairness": -0.1},
        {"unfairness": float("inf")},
        {"unfairness": "fair"},
        {"unfairness": 0.5, "sharing": "fifo"},
        {"unfairness": 0.5, "unfairness_among": "racing"},
        {"unfairness_among": "together"},
    ],
)
def test_bad_network_raises_one_line(spec):
    with pytest.raises(NetworkError) as error:
        Network(**spec).resolve(["server", "worker", "worker"])
    assert isinstance(error.value, ValueError)
    assert "\n" not in str(error.value) and str(error.value).startswith("Network.")


def test_a_role_this_run_lacks_matches_no_node():
    # a shared spec may name the server while the single-machine run has none; the experiment
    # checks that some run has the role (tests/netsim/test_experiment.py)
    nics = Network(nodes={"server": {"up": 1.0}}).resolve(["worker"]).nics
    assert nics[0].up == parse_rate("1Gbit/s")


@pytest.mark.parametrize("sharing", SHARINGS)
def test_in_flight_lists_the_messages_neither_delivered_nor_dropped_oldest_first(sharing):
    env = simpy.Environment()
    network, rng = Network(1e8, "10ms", sharing), np.random.default_rng(0)
    fabric = Fabric(env, network, ["worker"] * 3, rng, id)
    early, late, mine = sized(0, 1, 1000), sized(2, 1, 1000), sized(1, 1, 1000)
    for msg in (early, late, mine):
        fabric.transmit(msg)
    assert fabric.in_flight() == [early, late, mine]
    env.run(until=0.005)  # sending to itself takes no time; the others are in their latency
    assert fabric.in_flight() == [early, late]
    env.run()
    assert fabric.in_flight() == []


def test_a_run_records_the_messages_still_in_flight_at_its_end(tmp_path):
    from netsim import Compute
    from netsim.algorithms import GoSGD
    from netsim.results.read import read_csv
    from tests.conftest import make_simulation

    sim = make_simulation(
        GoSGD(p=1.0),
        tmp_path,
        workers=4,
        model="logistic",
        steps=10,
        network=Network(latency="10s"),
        compute=Compute(step_time="0.1s"),
    )
    summary = sim.run()
    m = read_csv(tmp_path / "messages.csv", text=("kind", "reason"))
    assert len(m["src"]) == summary["messages"] == summary["in_flight"] == 40  # none arrives
    assert summary["dropped"] == 0
    assert (m["dropped"] == 1).all() and set(m["reason"]) == {"in flight"}
    assert np.isnan(m["t_arrive"]).all() and summary["bytes_sent"] == m["bytes"].sum() > 0


def fan_in(network: Network, n: int, seed: int = 0) -> list[float]:
    """Arrival times of n messages of 10 kB sent together into node 0."""
    msgs = [sized(i, 0, 10_000) for i in range(1, n + 1)]
    simulate(network, n + 1, [(0.0, msg) for msg in msgs], seed)
    return [msg.t_arrive for msg in msgs]


def test_unfair_flows_finish_apart_and_the_last_when_fair_sharing_ends():
    fair = fan_in(Network("100Mbit/s"), 4)
    assert fair == [approx(4 * 80_000 / 100e6)] * 4
    unfair = fan_in(Network("100Mbit/s", unfairness=1.0), 4)
    assert len(set(unfair)) == 4 and min(unfair) > 80_000 / 100e6
    assert max(unfair) == approx(4 * 80_000 / 100e6)  # the downlink never idles


def test_unfairness_is_seeded_and_tcp_names_the_measured_value():
    unfair = Network("100Mbit/s", unfairness=0.5)
    assert fan_in(unfair, 8, seed=1) == fan_in(unfair, 8, seed=1) != fan_in(unfair, 8, seed=2)
    assert Network(unfairness="tcp").resolve(["worker"]).unfairness == TCP_UNFAIRNESS > 0
    assert fan_in(Network("100Mbit/s", unfairness="tcp"), 8) == fan_in(
        Network("100Mbit/s", unfairness=TCP_UNFAIRNESS), 8
    )


def test_together_weighs_a_fan_in_sent_at_once_as_all_does_and_leaves_lone_flows_fair():
    together = {"unfairness": 0.5, "unfairness_among": "together"}
    for seed in (0, 1):
        assert fan_in(Network("100Mbit/s", **together), 8, seed) == fan_in(
            Network("100Mbit/s", unfairness=0.5), 8, seed
        )
    # 4 messages into node 0, 1 ms apart, each taking 3.2 ms alone: none started with
    # another, so they share evenly, as under max-min, whatever they drew
    found = []
    for network in (Network("100Mbit/s", **together), Network("100Mbit/s")):
        msgs = [sized(i, 0, 40_000) for i in range(1, 5)]
        simulate(network, 5, [(i * 1e-3, msg) for i, msg in enumerate(msgs)], 0)
        found.append([msg.t_arrive for msg in msgs])
    assert found[0] == pytest.approx(found[1], rel=1e-12) and len(set(found[0])) == 4


def test_unfairness_draws_from_its_own_stream():
    # the same losses with and without it: the weights never consume the loss draws
    def lost(unfairness):
        msgs = [sized(i, 0, 10_000) for i in range(1, 9)]
        network = Network("100Mbit/s", loss=0.5, unfairness=unfairness)
        simulate(network, 9, [(0.0, msg) for msg in msgs], seed=3)
        return [msg.dropped for msg in msgs]

    assert lost(0.0) == lost(2.0) and 0 < sum(lost(0.0)) < 8


def test_ramp_gives_an_older_flow_more_of_the_link_while_the_newer_one_ramps():
    # 125 kB at 100 Mbit/s alone: a = 10 ms. Weights start at 1/32 and double every 8 ms. B
    # starts at 5 ms: A alone until 5 ms (5 ms of work left), equal shares until 8 ms (3.5
    # left), A's weight twice B's until B doubles at 13 ms (A at 2/3: 1/6 left), equal again:
    # A ends at 13 + 1/3 ms, B when the link has moved both, at 20 ms. Max-min: A at 15 ms.
    def ends(ramp):
        a, b = sized(1, 0, 125_000), sized(2, 0, 125_000)
        simulate(Network("100Mbit/s", ramp=ramp), 3, [(0.0, a), (0.005, b)])
        return a.t_arrive, b.t_arrive

    assert ends(0.0) == (approx(0.015), approx(0.020))
    assert ends("40ms") == (approx(0.013 + 0.001 / 3), approx(0.020))


def test_ramp_leaves_a_lone_flow_and_flows_started_together_as_max_min():
    ramped = Network("100Mbit/s", ramp="tcp")
    assert fan_in(ramped, 1) == [approx(80_000 / 100e6)]
    assert fan_in(ramped, 4) == [approx(4 * 80_000 / 100e6)] * 4


def test_ramp_is_deterministic_and_combines_with_unfairness():
    def staggered(network, seed=0):
        msgs = [sized(i, 0, 100_000) for i in range(1, 9)]
        simulate(network, 9, [(0.001 * i, msg) for i, msg in enumerate(msgs)], seed)
        return [msg.t_arrive for msg in msgs]

    ramped = staggered(Network("100Mbit/s", ramp="20ms"))
    assert ramped == staggered(Network("100Mbit/s", ramp=0.02)) != staggered(Network("100Mbit/s"))
    assert ramped == sorted(ramped)  # each flow older than the next ends first
    both = Network("100Mbit/s", ramp="20ms", unfairness=0.5)
    assert staggered(both, 1) == staggered(both, 1) != staggered(both, 2)
    assert max(staggered(both, 1)) == approx(8 * 800_000 / 100e6)  # the link never idles


def test_ramp_names_the_measured_value_and_rejects_what_it_cannot_model():
    assert Network(ramp="tcp").resolve(["worker"]).ramp == TCP_RAMP > 0
    assert Network(ramp="50ms").resolve(["worker"]).ramp == pytest.approx(0.05)
    with pytest.raises(NetworkError, match=r"Network.ramp = 0.1 weights max-min sharing"):
        Network(ramp=0.1, sharing="fifo").resolve(["worker"])
    with pytest.raises(NetworkError, match=r"Network.ramp"):
        Network(ramp="-5ms").resolve(["worker"])
    with pytest.raises(NetworkError, match=r"Network.ramp"):
        Network(ramp="fast").resolve(["worker"])


def test_acks_slow_every_node_of_a_ring_by_their_share():
    # Each node sends 100 kB to the next: its uplink carries its own flow r and the ACKs of
    # the flow coming in, a r; so r (1 + a) = C, and each ends at 8 S (1 + a) / C.
    def ring(acks):
        msgs = [sized(i, (i + 1) % 3, 100_000) for i in range(3)]
        simulate(Network("100Mbit/s", acks=acks), 3, [(0.0, msg) for msg in msgs])
        return [msg.t_arrive for msg in msgs]

    assert ring(0.0) == [approx(8e5 / 100e6)] * 3
    assert ring(0.05) == [approx(8e5 * 1.05 / 100e6)] * 3
    assert ring("tcp") == [approx(8e5 * (1 + TCP_ACKS) / 100e6)] * 3


def test_acks_leave_traffic_one_way_as_max_min_has_it():
    # a transfer, a fan-in and a fan-out: the links back carry ACKs alone and never fill
    network = Network("100Mbit/s", acks=0.05)
    assert fan_in(network, 1) == [approx(80_000 / 100e6)]
    assert fan_in(network, 4) == [approx(4 * 80_000 / 100e6)] * 4
    msgs = [sized(0, i, 10_000) for i in range(1, 5)]
    simulate(network, 5, [(0.0, msg) for msg in msgs])
    assert [msg.t_arrive for msg in msgs] == [approx(4 * 80_000 / 100e6)] * 4


def test_acks_go_first_and_data_gets_what_they_leave():
    # Node 0's NIC is 10 Mbit/s, the others 100; f: 0 -> 1 (100 kB), g: 2 -> 0 (200 kB),
    # acks 0.5. ACKs go first: node 0's uplink leaves f what g's ACKs do not take, f = 10 -
    # g / 2, and its downlink leaves g what f's do not, g = 10 - f / 2. So f = g = 10 / 1.5
    # Mbit/s, and f ends at 0.8 Mbit / (20/3) = 0.12 s. Then g alone: node 0's downlink holds
    # it to 10 (its ACKs on node 0's uplink would allow 20). Its last 0.8 Mbit take 0.08 s:
    # it ends at 0.2 s.
    network = Network("100Mbit/s", acks=0.5, nodes={0: {"bandwidth": "10Mbit/s"}})
    f, g = sized(0, 1, 100_000), sized(2, 0, 200_000)
    simulate(network, 3, [(0.0, f), (0.0, g)])
    assert (f.t_arrive, g.t_arrive) == (approx(0.12), approx(0.2))


def test_acks_name_the_measured_share_and_reject_what_they_cannot_model():
    assert Network(acks="tcp").resolve(["worker"]).acks == TCP_ACKS
    assert 0.02 < TCP_ACKS < 0.03
    with pytest.raises(NetworkError, match=r"Network.acks = 0.1 shares max-min links"):
        Network(acks=0.1, sharing="fifo").resolve(["worker"])
    for bad in (-0.1, 1.0, "fast", True):
        with pytest.raises(NetworkError, match=r"Network.acks"):
            Network(acks=bad).resolve(["worker"])


def test_acks_alone_hold_a_flow_only_where_they_fill_the_link_back():
    # A 100 Mbit/s downlink into node 1 whose uplink is 2 Mbit/s: with acks 0.05 a flow into
    # it sends 0.05 r of ACKs back, at most 2 Mbit/s, so r <= 40 Mbit/s (TCP is ACK-clocked).
    network = Network("100Mbit/s", acks=0.05, nodes={1: {"up": "2Mbit/s"}})
    msg = sized(0, 1, 100_000)
    simulate(network, 2, [(0.0, msg)])
    assert msg.t_arrive == approx(8e5 / 40e6)
    # with a tiny share they never fill it, and the flow keeps its whole rate
    msg = sized(0, 1, 100_000)
    simulate(dataclasses.replace(network, acks=1e-6), 2, [(0.0, msg)])
    assert msg.t_arrive == approx(8e5 / 100e6)


def test_a_pairs_connection_carries_its_messages_one_after_another():
    # Node 0 sends A and B (100 kB each) to node 1 and C to node 2 at once; 100 Mbit/s, 5 ms.
    # A flow each: the three share node 0's uplink and end together, 5 + 24 ms. One connection
    # per pair: (0, 1) and (0, 2) split it, A and C end at 5 + 16 ms, then B has it alone.
    def ends(connections):
        a, b, c = sized(0, 1, 100_000), sized(0, 1, 100_000), sized(0, 2, 100_000)
        network = Network("100Mbit/s", "5ms", connections=connections)
        simulate(network, 3, [(0.0, a), (0.0, b), (0.0, c)])
        return [msg.t_arrive for msg in (a, b, c)]

    assert ends("message") == [approx(0.029)] * 3
    assert ends("pair") == [approx(0.021), approx(0.029), approx(0.021)]


def test_a_message_to_an_idle_connection_is_a_flow_of_its_own():
    for connections in ("message", "pair"):
        a, b = sized(0, 1, 100_000), sized(0, 1, 100_000)
        simulate(Network("100Mbit/s", connections=connections), 2, [(0.0, a), (0.01, b)])
        assert (a.t_arrive, b.t_arrive) == (approx(0.008), approx(0.018))


@pytest.mark.parametrize(
    "options",
    [{}, {"unfairness": 0.65}, {"ramp": "tcp"}, {"acks": "tcp"}, {"ramp": 0.02, "acks": 0.1}],
)
def test_messages_back_to_back_on_a_connection_end_where_one_of_their_total_size_would(options):
    # Four senders 1 ms apart into node 0, each with 100 kB in one message or in two (40 + 60
    # kB): the connection is one flow, with the weight and the ramp it has reached.
    def ends(split, connections="pair"):
        sends, last = [], []
        for i in range(1, 5):
            parts = [sized(i, 0, 40_000), sized(i, 0, 60_000)] if split else [sized(i, 0, 10**5)]
            sends += [(0.001 * i, msg) for msg in parts]
            last.append(parts[-1])
        network = Network("100Mbit/s", connections=connections, **options)
        simulate(network, 5, sends, seed=3)
        return [msg.t_arrive for msg in last]

    whole = ends(False)
    assert ends(True) == approx(whole)
    assert ends(True, "message") != approx(whole)  # two flows at once take two shares


def test_a_connection_keeps_its_ramp_from_one_message_to_the_next():
    # test_ramp_gives_an_older_flow_more...'s flows, A's 125 kB sent as 50 kB then 75 kB: A's
    # weight doubles at 8 ms as if it were one message, and its second part ends at 13 1/3 ms.
    a1, a2, b = sized(1, 0, 50_000), sized(1, 0, 75_000), sized(2, 0, 125_000)
    network = Network("100Mbit/s", ramp="40ms", connections="pair")
    simulate(network, 3, [(0.0, a1), (0.0, a2), (0.005, b)])
    assert [a1.t_arrive, a2.t_arrive, b.t_arrive] == approx([0.004, 0.013 + 0.001 / 3, 0.020])


def test_connections_are_checked_and_fifo_already_keeps_a_pair_in_order():
    with pytest.raises(NetworkError, match=r"Network.connections = 'tcp': use one of"):
        Network(connections="tcp").resolve(["worker"])

    def ends(connections):
        msgs = [sized(0, 1, 100_000), sized(0, 1, 50_000), sized(0, 2, 100_000)]
        network = Network("100Mbit/s", sharing="fifo", connections=connections)
        simulate(network, 3, [(0.0, msg) for msg in msgs])
        return [msg.t_arrive for msg in msgs]

    assert ends("pair") == ends("message") == [approx(0.008), approx(0.012), approx(0.020)]
