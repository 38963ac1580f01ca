"""Runs a traffic pattern in both runtimes on the same Network and pairs up its messages.

The real run's nodes live in network namespaces with their NICs shaped by htb
(netsim/real/netns.py); the simulated run reads the same spec. Messages are matched by
(src, dst, k), k counting that pair's messages in order of sending, so each yields a
(simulated, measured) completion time t_arrive - t_send, and each pattern a last-finisher
time (the last arrival minus the first send).

The real run goes first, and the simulation replays its send instants (trace-driven). Real
nodes do not send at the same instant even where the pattern says so: 8 processes on 2 cores
each copy their payload first, and the last of them sends 20-70 ms after the first (200 ms for
40 MB). That skew is the test host's, not the network's, and the model is judged on the same
offered load.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from netsim import Compute, Experiment, Network, Run, run
from netsim.real import hosts, netns


@dataclass
class Result:
    name: str
    sim: dict[tuple[int, int, int], float]  # (src, dst, k) -> completion time, s
    real: dict[tuple[int, int, int], float]
    sim_last: float  # last arrival - first send, s
    real_last: float
    real_sent: dict[tuple[int, int, int], float] = field(default_factory=dict)  # s after the first
    # shares of the host's CPU time, from the real run's first send to its last arrival:
    busy: float = float("nan")  # not idle (steal included)
    stolen: float = float("nan")  # taken by the hypervisor for other machines (steal)

    def pairs(self) -> list[tuple[float, float]]:
        return [(self.sim[key], self.real[key]) for key in sorted(self.sim) if key in self.real]


def experiment(name: str, pattern, network: Network) -> Experiment:
    return Experiment(
        name,
        [Run(name, pattern)],
        data="synthetic_fmnist",
        model="logistic",
        workers=pattern.nodes,
        steps=1,
        eval_every="1e9s",  # the start and the end only; a time, so no few-points warning
        eval_subset=10,
        network=network,
        compute=Compute(step_time="1s"),
        execution="loop",
    )


def measure(
    name: str,
    pattern,
    network: Network,
    out: Path | None = None,
    congestion: str | None = netns.CONGESTION,
) -> Result:
    """The pattern run for real in namespaces (root and tc needed), the real run's TCP under
    the congestion control `congestion` (None: the host's), then simulated (`simulate`). The
    measurement stays under out (a new temporary folder if None): out/real holds the real
    run, out/cpu.json the host's CPU shares during it."""
    out = Path(out or tempfile.mkdtemp(prefix="fidelity-"))
    spec = experiment(name, pattern, network)
    with CpuSampler() as cpu:
        in_namespaces(spec, out / "real", ["worker"] * pattern.nodes, network, congestion)
    real_csv = out / "real" / name / name / "messages.csv"
    t0 = json.loads((real_csv.parent / "config.json").read_text())["t0"]
    first = t0 + float(_rows(real_csv)[0]["t_send"])
    busy, stolen = cpu.shares(first, first + completions(real_csv)[1])
    (out / "cpu.json").write_text(json.dumps({"busy": busy, "stolen": stolen}))
    return simulate(name, pattern, network, out)


def simulate(name: str, pattern, network: Network, out: Path) -> Result:
    """The measurement under out (made by `measure`) replayed in the simulation on network,
    which may differ from the one it was measured on in its model options (goodput, acks,
    connections...): one measurement, any number of models. The simulation's files go to
    out/sim, replaced each time."""
    out = Path(out)
    real_csv = out / "real" / name / name / "messages.csv"
    if not real_csv.is_file():
        raise FileNotFoundError(f"{out} holds no real run of {name!r} ({real_csv} is missing)")
    shutil.rmtree(out / "sim", ignore_errors=True)
    replayed = experiment(name, replay(pattern, real_csv), network)
    run(replayed, out=out / "sim", progress=False, plot=False)
    sim, sim_last = completions(out / "sim" / name / name / "messages.csv")
    real, real_last = completions(real_csv)
    cpu = out / "cpu.json"
    shares = json.loads(cpu.read_text()) if cpu.is_file() else {}
    busy, stolen = (shares.get(key, float("nan")) for key in ("busy", "stolen"))
    return Result(name, sim, real, sim_last, real_last, sends(real_csv), busy, stolen)


def in_namespaces(
    spec, out: Path, roles: list[str], network: Network, congestion: str | None
) -> None:
    """Runs spec on the real runtime, one network namespace per node (the NICs of network
    for the nodes of these roles; TCP under the congestion control `congestion`, None: the
    host's), results under out; the namespaces are gone afterwards."""
    spaces = netns.Namespaces(roles, network, congestion=congestion)
    with spaces as addresses:
        where = hosts.Placement(
            [(a, 0) for a in addresses], bind=spaces.gateway, wrap=spaces.command
        )
        run(spec, out=out, runtime="real", where=where, progress=False, plot=False)


def congestion_flag(parser) -> None:
    """Adds --congestion (the real runs' TCP congestion control) to a script's parser."""
    parser.add_argument(
        "--congestion",
        default=netns.CONGESTION,
        help=f"the real runs' TCP congestion control: {', '.join(netns.congestion_controls())}"
        f" or host (the host's own); default {netns.CONGESTION}",
    )


def congestion(value: str) -> str | None:
    """--congestion's value for Namespaces: None for "host"; raises ValueError with a line
    where the kernel lacks it."""
    if value == "host":
        return None
    if (why := netns.congestion_error(value)) is not None:
        raise ValueError(f"--congestion {value}: {why}, or host")
    return value


def real_runs(script: str, value: str) -> str | None:
    """What a measuring script checks before anything runs: namespaces can be made here, and
    --congestion's value is one the kernel has. Returns that value for Namespaces (None: the
    host's); else prints the one line that says what is wrong and exits with status 2."""
    why = netns.why_not()
    if why is None:
        try:
            return congestion(value)
        except ValueError as error:
            why = str(error)
    else:
        why = f"cannot run: {why}"
    print(f"{script}: {why}", file=sys.stderr)
    raise SystemExit(2)


class CpuSampler:
    """Reads the host's CPU times every `every` seconds in a thread, while in a with block."""

    def __init__(self, every: float = 0.01):
        self.every, self.samples = every, []  # (Unix time, cpu_times())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuSampler:
        self.samples.append((time.time(), cpu_times()))  # the first and last here, not in
        self._thread.start()  # the thread, which may wait for the GIL
        return self

    def __exit__(self, *_exc):
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), cpu_times()))

    def _sample(self):
        while not self._stop.wait(self.every):
            self.samples.append((time.time(), cpu_times()))

    def shares(self, start: float, end: float) -> tuple[float, float]:
        """(busy, stolen) over the shortest sampled span that holds [start, end] (Unix times)."""
        before = [times for at, times in self.samples if at <= start]
        after = [times for at, times in self.samples if at >= end]
        if not before or not after:
            return float("nan"), float("nan")
        return cpu_shares(before[-1], after[0])


def cpu_times() -> tuple[int, int, int]:
    """The host's CPU time so far, all CPUs, in clock ticks: (busy, stolen, total). Busy is all
    but idle and iowait, and counts steal, the time the hypervisor gave to other machines."""
    with open("/proc/stat") as handle:
        ticks = [int(value) for value in handle.readline().split()[1:9]]
    ticks += [0] * (8 - len(ticks))
    total = sum(ticks)
    return total - ticks[3] - ticks[4], ticks[7], total


def cpu_shares(before: tuple, after: tuple) -> tuple[float, float]:
    """(busy, stolen) as shares of the CPU time between two cpu_times(); nan if no tick passed."""
    busy, stolen, total = (b - a for a, b in zip(before, after, strict=True))
    return (busy / total, stolen / total) if total > 0 else (float("nan"), float("nan"))


def replay(pattern, path: Path):
    """The pattern with each transfer's time set to when the real run sent it (relative to the
    first send); its (src, dst, k) and sizes unchanged."""
    sent = sends(path)
    schedule = [(sent[key], *key[:2], size) for key, (_, size) in pattern.alike().items()]
    return replace(pattern, schedule=tuple(sorted(schedule)))


def sends(path: Path) -> dict[tuple[int, int, int], float]:
    """(src, dst, k) -> when the message was sent, in seconds after the first send."""
    rows = _rows(path)
    first = float(rows[0]["t_send"])
    return {key: float(row["t_send"]) - first for key, row in zip(_keys(rows), rows, strict=True)}


def _rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return sorted(csv.DictReader(handle), key=lambda r: float(r["t_send"]))


def _keys(rows: list[dict]) -> list[tuple[int, int, int]]:
    """(src, dst, k) of each row, k counting that pair's messages in order of sending."""
    seen: dict[tuple[int, int], int] = defaultdict(int)
    keys = []
    for row in rows:
        pair = (int(row["src"]), int(row["dst"]))
        keys.append((*pair, seen[pair]))
        seen[pair] += 1
    return keys


def completions(path: Path) -> tuple[dict[tuple[int, int, int], float], float]:
    """(src, dst, k) -> t_arrive - t_send, and the last arrival - the first send."""
    rows = _rows(path)
    times = {
        key: float(row["t_arrive"]) - float(row["t_send"])
        for key, row in zip(_keys(rows), rows, strict=True)
    }
    last = max(float(r["t_arrive"]) for r in rows)
    return times, last - float(rows[0]["t_send"])


def scatter(pairs, path: str, kinds=None) -> None:
    """The (simulated, measured) pairs, one point per message, against y = x and the band of
    +-15% (the per-message target), drawn to path; kinds: each pair's pattern, one colour
    each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pairs = np.asarray(pairs)
    kinds = np.asarray(kinds if kinds is not None else ["one message"] * len(pairs))
    fig, ax = plt.subplots(figsize=(6, 6))
    for kind in dict.fromkeys(kinds):
        mine = pairs[kinds == kind]
        ax.loglog(mine[:, 1], mine[:, 0], ".", alpha=0.6, label=f"{kind} ({len(mine)})")
    lo, hi = pairs.min() * 0.8, pairs.max() * 1.25
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="y = x")
    ax.fill_between([lo, hi], [lo * 0.85, hi * 0.85], [lo * 1.15, hi * 1.15], color="grey",
                    alpha=0.15, linewidth=0, label="within 15%")  # fmt: skip
    ax.set_xlabel("measured completion time (s), real TCP through htb")
    ax.set_ylabel("simulated completion time (s)")
    ax.set_title("Simulated vs measured, per message")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"scatter plot: {path}")
