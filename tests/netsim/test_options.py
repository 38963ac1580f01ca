"""Every Network and Compute option the README documents, through netsim.run() and the CLI.

One experiment holds a run per option. It is run twice, once built in Python and once from an
experiment file whose runs get their option by ``--set RUN.network.key=value``; every check
then reads the same observable from both results folders: single transfers take exactly
8 bytes / bandwidth + latency, a loss 1 edge drops everything on it, step times are the
compute model's, and config.json records the option as given.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netsim
from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import SGD, AsyncPS, GoSGD, P2PPull
from netsim.network.spec import RAMP_STEPS, TCP_UNFAIRNESS
from netsim.results.read import read_csv, read_json

ROOT = Path(__file__).resolve().parents[2]
STEP = 0.1
SHARED = {
    "data": "synthetic_fmnist", "model": "logistic", "batch": 8, "eval_subset": 50,
    "execution": "loop", "device": "cpu", "steps": 3, "eval_every": 1,
    "compute": Compute(step_time=STEP),
}  # fmt: skip
STEP_FLOPS = 8 * 15680 * 3  # batch x logistic's 2 x 784 x 10 FLOPs per sample x 3
PS, PULL, SOLO, PUSH = AsyncPS(), P2PPull(timeout="50ms"), SGD(), GoSGD(p=1.0)
ONE, TWO, THREE = {"workers": 1}, {"workers": 2}, {"workers": 3, "steps": 6}
FROZEN = {"workers": 2, "lr": 0.0, "eval_nodes": 2}  # models change by noise alone
# name: (algorithm, the run's own settings, "network" or "compute", the option's fields)
RUNS = {
    "bandwidth": (PS, ONE, "network", {"bandwidth": "100Mbit/s"}),
    "latency": (PS, ONE, "network", {"latency": "5ms"}),
    "goodput": (PS, ONE, "network", {"goodput": 0.5}),
    "loss": (PULL, TWO, "network", {"loss": 1.0}),
    "noise": (PS, FROZEN, "network", {"noise": 0.5}),
    "queue": (PULL, TWO, "network", {"queue": "1kB"}),
    "maxmin": (PS, TWO, "network", {"sharing": "maxmin"}),
    "fifo": (PS, TWO, "network", {"sharing": "fifo"}),
    "unfairness": (PS, TWO, "network", {"unfairness": "tcp"}),
    # worker 1's gradient starts 50 us after worker 0's, while it is on its way
    "ramp": (
        PS,
        {"workers": 2, "compute": Compute(step_time=STEP, slowdown={1: 1.0005})},
        "network",
        {"ramp": "1.5ms"},
    ),
    # worker 1's gradient starts 50 us after worker 0's: without a ramp they do not race
    "unfairness_among": (
        PS,
        {"workers": 2, "compute": Compute(step_time=STEP, slowdown={1: 1.0005})},
        "network",
        {"unfairness": "tcp", "unfairness_among": "together"},
    ),
    # the two workers pull from each other at once: every message meets its mirror image
    "acks": (PULL, TWO, "network", {"acks": 0.5}),
    # each worker pushes its model to the other every step, faster than a model goes through
    "connections": (
        PUSH,
        THREE | {"workers": 2},
        "network",
        {"bandwidth": "2Mbit/s", "connections": "pair"},
    ),
    "edge_latency": (PS, ONE, "network", {"edges": {(0, 1): {"latency": "20ms"}}}),
    "edge_bandwidth": (PS, ONE, "network", {"edges": {(1, 0): {"bandwidth": "50Mbit/s"}}}),
    "edge_loss": (PULL, THREE, "network", {"edges": {(0, 1): {"loss": 1.0}}}),
    "edge_noise": (PS, FROZEN, "network", {"edges": {(0, 2): {"noise": 0.5}}}),
    "node_id": (PS, ONE, "network", {"nodes": {0: {"up": "100Mbit/s", "down": "200Mbit/s"}}}),
    "node_role": (
        PS,
        ONE,
        "network",
        {"nodes": {"server": {"bandwidth": "50Mbit/s"}, 1: {"up": "25Mbit/s"}}},
    ),
    "node_queue": (PULL, THREE, "network", {"nodes": {0: {"queue": 1000}}}),
    "step_time": (SOLO, ONE, "compute", {"step_time": "0.25s"}),
    "device_flops": (SOLO, ONE, "compute", {"step_time": None, "device_flops": "1MFLOP/s"}),
    "heterogeneity": (SOLO, {"workers": 4}, "compute", {"heterogeneity": 0.5}),
    "stragglers": (SOLO, {"workers": 4}, "compute", {"stragglers": 0.5, "straggler_factor": 3.0}),
    "jitter": (SOLO, TWO, "compute", {"jitter": 0.2}),
    "calibrate": (SOLO, ONE, "compute", {"step_time": "100s", "calibrate": True}),
    "slowdown": (SOLO, TWO, "compute", {"slowdown": {1: 2.0, "worker": 3.0}}),
    # the two workers' first gradients reach the server together: the second update queues
    "update_time": (PS, TWO, "compute", {"update_time": "30ms", "slowdown": {"server": 2.0}}),
    # a P2PPull worker's average of a pulled model is an update as well
    "update_time_merge": (PULL, TWO, "compute", {"update_time": "30ms"}),
}


def _python_runs() -> list[Run]:
    runs = []
    for name, (algorithm, settings, part, fields) in RUNS.items():
        if part == "network":
            extra = {"network": Network(**fields)}
        else:
            extra = {"compute": Compute(**{"step_time": STEP} | fields)}
        runs.append(Run(name, algorithm, **settings, **extra))
    return runs


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    netsim.run(
        Experiment("options", runs=_python_runs(), **SHARED), out, progress=False, plot=False
    )
    return out / "options"


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    runs = ",\n    ".join(f"Run({n!r}, {a!r}, **{s!r})" for n, (a, s, *_) in RUNS.items())
    (out / "options.py").write_text(
        "from netsim import Compute, Experiment, Run\n"
        "from netsim.algorithms import SGD, AsyncPS, GoSGD, P2PPull\n"
        "from netsim.algorithms.sharing import Full\n"
        f'experiment = Experiment("options", **{SHARED!r}, runs=[\n    {runs}\n])\n'
    )
    sets = [
        f"--set={name}.{part}.{key}={value!r}"
        for name, (_, _, part, fields) in RUNS.items()
        for key, value in fields.items()
    ]
    command = [sys.executable, "-m", "netsim", str(out / "options.py"), "--no-progress"]
    result = subprocess.run(
        [*command, "--out", str(out), *sets], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return out / "options"


def messages(run: Path) -> dict[str, np.ndarray]:
    return read_csv(run / "messages.csv", text=("kind", "reason"))


def durations(run: Path, node: int) -> np.ndarray:
    steps = read_csv(run / "steps.csv")
    mine = steps["node"] == node
    return (steps["t_end"] - steps["t_start"])[mine]


def assert_single_transfers(run: Path, rate, latency: float = 0.0) -> None:
    """Each message alone on the network: t_arrive - t_send = 8 bytes / rate + latency, where
    rate(src, dst) is the smallest capacity on the message's path."""
    m = messages(run)
    assert len(m["src"]) >= 4 and not m["dropped"].any()
    for src, dst, size, sent, arrived in zip(
        m["src"], m["dst"], m["bytes"], m["t_send"], m["t_arrive"], strict=True
    ):
        expected = 8 * size / rate(int(src), int(dst)) + latency
        assert arrived - sent == pytest.approx(expected, rel=1e-9, abs=1e-12), (src, dst)


def assert_losses(run: Path, node: int | str, changed: bool) -> None:
    """lr = 0, so a model changes only by noise on what it received: its subset loss either
    stays exactly the first one or leaves it after the first step."""
    evals = read_csv(run / "evals.csv", text=("node", "split"))
    loss = evals["loss"][(evals["node"] == str(node)) & (evals["split"] == "subset")]
    assert len(loss) == 4
    if changed:
        assert (loss[2:] != loss[0]).all()
    else:
        assert (loss == loss[0]).all()


def check_bandwidth(run):
    assert_single_transfers(run, lambda src, dst: 100e6)


def check_latency(run):
    assert_single_transfers(run, lambda src, dst: 1e9, latency=0.005)


def check_goodput(run):
    assert_single_transfers(run, lambda src, dst: 0.5e9)


def check_edge_latency(run):
    assert_single_transfers(run, lambda src, dst: 1e9, latency=0.02)


def check_edge_bandwidth(run):
    assert_single_transfers(run, lambda src, dst: 50e6)


def check_node_id(run):  # worker 0's NIC: 100 Mbit/s up, 200 down; the server's the default
    assert_single_transfers(run, lambda src, dst: 100e6 if src == 0 else 200e6)


def check_node_role(run):  # the server (node 1) at 50 Mbit/s, but its own id's uplink at 25
    assert_single_transfers(run, lambda src, dst: 25e6 if src == 1 else 50e6)


def check_loss(run):
    m = messages(run)
    assert len(m["dropped"]) >= 4 and (m["dropped"] == 1).all()


def check_edge_loss(run):
    m = messages(run)
    on_edge = {tuple(sorted(e)) for e in zip(m["src"], m["dst"], strict=True)}
    assert on_edge == {(0, 1), (0, 2), (1, 2)}
    edge = ((m["src"] == 0) & (m["dst"] == 1)) | ((m["src"] == 1) & (m["dst"] == 0))
    assert (m["dropped"][edge] == 1).all() and (m["dropped"][~edge] == 0).all()


def check_queue(run):  # a model (> 1 kB) never fits the queue; a pull request always does
    m = messages(run)
    big = m["bytes"] > 1000
    assert big.any() and (~big).any()
    assert (m["dropped"][big] == 1).all() and (m["dropped"][~big] == 0).all()


def check_node_queue(run):  # only node 0's NIC has the 1,000-byte queue
    m = messages(run)
    big, at_0 = m["bytes"] > 1000, (m["src"] == 0) | (m["dst"] == 0)
    assert (big & at_0).any() and (big & ~at_0).any()
    assert (m["dropped"][big & at_0] == 1).all() and (m["dropped"][~(big & at_0)] == 0).all()


def _first_two_gradients(run: Path):
    m = messages(run)
    grads = np.flatnonzero(m["kind"] == "grad")[:2]
    size = m["bytes"][grads[0]]
    assert (m["t_send"][grads] == STEP).all() and (m["bytes"][grads] == size).all()
    return sorted(m["t_arrive"][grads]), 8 * size / 1e9


def check_maxmin(run):  # both workers' first gradients share the server's downlink
    arrivals, alone = _first_two_gradients(run)
    assert arrivals == pytest.approx([STEP + 2 * alone] * 2, rel=1e-9)


def check_fifo(run):  # one gradient after the other through the server's downlink
    arrivals, alone = _first_two_gradients(run)
    assert arrivals == pytest.approx([STEP + alone, STEP + 2 * alone], rel=1e-9)


def check_unfairness(run):  # weighted by exp(N(0, sigma^2)) from the run's own stream
    arrivals, alone = _first_two_gradients(run)
    fabric_rng = np.random.default_rng([0, 3])  # the run's seed 0, as sim.py seeds the fabric
    weights = np.random.default_rng(fabric_rng.bit_generator.seed_seq.spawn(1)[0]).lognormal(
        0.0, TCP_UNFAIRNESS, 2
    )
    first = STEP + alone * weights.sum() / weights.max()
    assert arrivals == pytest.approx([first, STEP + 2 * alone], rel=1e-9)


def check_unfairness_among(run):  # the two flows did not start together: even shares
    m = messages(run)
    grads = np.flatnonzero(m["kind"] == "grad")[:2]
    (start, later), (end, last) = m["t_send"][grads], m["t_arrive"][grads]
    d, alone = later - start, 8 * m["bytes"][grads[0]] / 1e9
    assert start == STEP and d == pytest.approx(STEP * 0.0005)
    # worker 0 alone for d, then half the link: ends at 2 alone - d, whatever it drew
    assert (end, last) == (pytest.approx(start + 2 * alone - d), pytest.approx(start + 2 * alone))


def check_ramp(run):  # weights 1/32 doubling every 0.3 ms: worker 0's flow is older by d
    m = messages(run)
    grads = np.flatnonzero(m["kind"] == "grad")[:2]
    (start, later), (end, last) = m["t_send"][grads], m["t_arrive"][grads]
    d, alone, step = later - start, 8 * m["bytes"][grads[0]] / 1e9, 1.5e-3 / RAMP_STEPS
    assert start == STEP and d == pytest.approx(STEP * 0.0005)
    assert m["bytes"][grads[1]] == m["bytes"][grads[0]]
    # Equal weights until worker 0's doubles at step, 2:1 for d, equal again: worker 0 ends at
    # 2 alone - 4 d / 3 (max-min: 2 alone - d), before either doubles again.
    first = start + 2 * alone - 4 * d / 3
    assert step + d < first - start < 2 * step
    assert (end, last) == (pytest.approx(first, rel=1e-9), pytest.approx(start + 2 * alone))


def check_acks(run):  # each message's ACKs share the links of the one coming the other way
    m = messages(run)
    assert len(m["src"]) >= 8 and not m["dropped"].any()
    for src, dst, size, sent in zip(m["src"], m["dst"], m["bytes"], m["t_send"], strict=True):
        mirror = (m["src"] == dst) & (m["dst"] == src) & (m["t_send"] == sent)
        assert mirror.sum() == 1 and m["bytes"][mirror] == size
    # each direction's data r plus the other's ACKs r / 2 fill the NIC: r = C / 1.5
    expected = 8 * m["bytes"] * 1.5 / 1e9
    assert m["t_arrive"] - m["t_send"] == pytest.approx(expected, rel=1e-9)


def check_connections(run):  # a pair's messages go one after another, each alone on its links
    m = messages(run)
    waited = 0
    for src in (0, 1):
        mine = np.flatnonzero(m["src"] == src)
        assert len(mine) >= 2 and (m["dst"][mine] == 1 - src).all()
        through = 0.0
        sends = zip(m["t_send"][mine], m["bytes"][mine], m["t_arrive"][mine], strict=True)
        for sent, size, arrived in sends:
            waited += through > sent
            through = max(through, sent) + 8 * size / 2e6
            # still on its way when the run ended: so is every later one
            assert arrived == pytest.approx(through, rel=1e-9) or np.isnan(arrived)
    assert waited >= 2 and (~np.isnan(m["t_arrive"])).sum() >= 4


def check_update_time(run):  # the server (node 2) replies when each 60 ms update ends
    m = messages(run)
    grads = np.flatnonzero(m["dst"] == 2)
    grads = grads[np.argsort(m["t_arrive"][grads], kind="stable")]
    replies = np.flatnonzero(m["src"] == 2)
    replies = replies[np.argsort(m["t_send"][replies], kind="stable")]
    assert len(replies) == len(grads) >= 6
    end, queued = 0.0, 0
    for grad, reply in zip(grads, replies, strict=True):
        queued += m["t_arrive"][grad] < end
        end = max(end, m["t_arrive"][grad]) + 2 * 0.03
        assert m["dst"][reply] == m["src"][grad]
        assert m["t_send"][reply] == pytest.approx(end, rel=1e-12)
    assert queued >= 1
    steps = durations(run, 0)  # the workers' steps are the compute model's
    assert steps == pytest.approx(np.full(len(steps), STEP), rel=1e-12)


def check_update_time_merge(run):  # each worker's next step starts 30 ms after its reply
    m, steps = messages(run), read_csv(run / "steps.csv")
    for node in (0, 1):
        replies = np.sort(m["t_arrive"][(m["kind"] == "model") & (m["dst"] == node)])
        starts = np.sort(steps["t_start"][steps["node"] == node])
        assert len(starts) == 3 and len(replies) >= 2 and replies[1] > starts[1]
        assert starts[1:] == pytest.approx(replies[:2] + 0.03, rel=1e-12)
    assert durations(run, 0) == pytest.approx(np.full(3, STEP), rel=1e-12)


def check_noise(run):
    assert_losses(run, 0, changed=True)
    assert_losses(run, 1, changed=True)
    assert_losses(run, "global", changed=False)  # the server's: gradients at lr 0 change nothing


def check_edge_noise(run):  # only the edge of worker 0 and the server (node 2) is noisy
    assert_losses(run, 0, changed=True)
    assert_losses(run, 1, changed=False)


def check_step_time(run):
    assert durations(run, 0) == pytest.approx([0.25] * 3, rel=1e-12)


def check_device_flops(run):
    assert durations(run, 0) == pytest.approx([STEP_FLOPS / 1e6] * 3, rel=1e-12)


def check_heterogeneity(run):
    slowdowns = np.exp(np.random.default_rng([0, 2]).normal(0.0, 0.5, 4))
    for node in range(4):
        assert durations(run, node) == pytest.approx([STEP * slowdowns[node]] * 3, rel=1e-12)


def check_stragglers(run):
    per_node = sorted(durations(run, node)[0] / STEP for node in range(4))
    assert per_node == pytest.approx([1, 1, 3, 3], rel=1e-12)


def check_jitter(run):
    times = np.concatenate([durations(run, node) for node in range(2)])
    assert len(set(times)) == len(times) and STEP not in times


def check_calibrate(run):  # measured wall times replace the 100 s base
    times = durations(run, 0)
    assert len(times) == 3 and (times > 0).all() and 100.0 not in times


def check_slowdown(run):  # a role factor and an id factor multiply
    assert durations(run, 0) == pytest.approx([3 * STEP] * 3, rel=1e-12)
    assert durations(run, 1) == pytest.approx([6 * STEP] * 3, rel=1e-12)


def _as_json(value):
    if isinstance(value, dict) and any(isinstance(k, tuple) for k in value):
        return [[*k, v] for k, v in value.items()]
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("how", ["api", "cli"])
@pytest.mark.parametrize("name", list(RUNS))
def test_option(request, how, name):
    run = request.getfixturevalue(how) / name
    globals()[f"check_{name}"](run)
    config = read_json(run / "config.json")
    _, _, part, fields = RUNS[name]
    for key, value in fields.items():
        assert config[part][key] == _as_json(value), (part, key)
