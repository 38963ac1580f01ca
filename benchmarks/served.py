"""ps_vs_p2p's patterns without training, closed-loop, real against simulated: does the network
alone set the step times, and how soon do the server's workers leave lockstep?

validation/patterns.py's Served: 4 workers each wait 0.58 s (2% jitter), push S bytes to the
server (its NIC at 300 Mbit/s, the workers' at 1 Gbit/s) and wait for its S-byte reply, for a
number of rounds; the server replies to each push as it has it. Nothing is decoded, applied or
trained, so the real run's CPU does little, and what remains is TCP. Real runs in network
namespaces (htb, netsim/real/netns.py); simulated runs with seeds 0..R-1 under each of the
Network options listed. The run is closed-loop in both runtimes (a worker pushes once its
reply is in), so timings are compared, not replayed.

Prints, per run, the workers' step times (the gaps between a worker's replies) at p5 / p50 /
p95, the median transfer time of a push and of a reply, and the longest step of each round:
every run starts in lockstep (four pushes at once), and the rounds it takes to leave it
decide the tail of a short run.

With --pattern pulled it runs Pulled instead, the peer-to-peer pattern (P2PPull) without
training: 4 workers, every NIC at 1 Gbit/s, each waits 0.58 s, asks a random peer for S bytes
and waits up to 1 s for them. Its step times are the gaps between a worker's requests, and
"push" is then the request's transfer time.

    sudo .venv/bin/python benchmarks/served.py [--pattern served|pulled] [--mb 80]
        [--rounds 20] [--repeats R] [--congestion cubic|bbr|reno|host]

Needs root and tc's htb; says so in one line otherwise. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim import Network, run  # noqa: E402
from netsim.results.read import read_csv  # noqa: E402
from validation import harness, patterns  # noqa: E402

SERVER = "300Mbit/s"
# label: the simulation's Network options (besides the NICs, goodput="tcp" and acks="tcp")
MODELS = {
    "max-min": {"acks": 0.0},
    'ramp "tcp"': {"ramp": "tcp"},
    "ramp 0.5 s": {"ramp": 0.5},
    'unfairness, ramp "tcp"': {"unfairness": "tcp", "ramp": "tcp"},
    "unfairness, ramp 0.5 s": {"unfairness": "tcp", "ramp": 0.5},
    # uneven shares only among flows that start within the ramp of one another
    'together, ramp "tcp"': {"unfairness": "tcp", "unfairness_among": "together", "ramp": "tcp"},
    # a pair's messages over one connection, as the real runtime sends them
    'pair, ramp "tcp"': {"connections": "pair", "ramp": "tcp"},
}


PATTERNS = {"served": patterns.Served, "pulled": patterns.Pulled}


def network(pattern=None, **options) -> Network:
    """The NICs: 1 Gbit/s, the server's (node 0 of Served) at 300 Mbit/s."""
    settings = {"goodput": "tcp", "acks": "tcp"}
    if not isinstance(pattern, patterns.Pulled):
        settings["nodes"] = {0: {"bandwidth": SERVER}}
    return Network("1Gbit/s", **(settings | options))


def steps(run_dir: Path) -> np.ndarray:
    """(workers, rounds - 1): each worker's step times, the gaps between its replies (Served)
    or between its requests (Pulled)."""
    m = read_csv(Path(run_dir) / "messages.csv", text=("kind", "reason"))
    if (m["kind"] == "pull").any():  # Pulled: a worker's steps end with its requests
        ends, who = m["t_send"], m["src"]
        mine = m["kind"] == "pull"
    else:
        ends, who = m["t_arrive"], m["dst"]
        mine = np.isfinite(m["t_arrive"]) & (m["src"] == 0)
    workers = sorted(set(who[mine].tolist()))
    gaps = [np.diff(np.sort(ends[mine & (who == w)])) for w in workers]
    k = min(len(g) for g in gaps)
    return np.array([g[:k] for g in gaps])


def transfers(run_dir: Path) -> tuple[float, float]:
    """The median transfer time (t_arrive - t_send) of a push (Pulled: a request) and of a
    reply."""
    m = read_csv(Path(run_dir) / "messages.csv", text=("kind", "reason"))
    took = m["t_arrive"] - m["t_send"]
    done = np.isfinite(took)
    if (m["kind"] == "pull").any():
        push, reply = m["kind"] == "pull", m["kind"] == "model"
    else:
        push, reply = m["dst"] == 0, m["src"] == 0
    return float(np.median(took[done & push])), float(np.median(took[done & reply]))


def name(pattern) -> str:
    return type(pattern).__name__.lower()


def simulate(pattern, options: dict, seed: int, out: Path) -> Path:
    spec = harness.experiment(name(pattern), pattern, network(pattern, **options))
    spec.shared["seed"] = seed
    run(spec, out=out, progress=False, plot=False)
    return out / name(pattern) / name(pattern)


def measure(pattern, seed: int, out: Path, congestion: str | None) -> Path:
    spec = harness.experiment(name(pattern), pattern, network(pattern))
    spec.shared["seed"] = seed
    roles = ["worker"] * pattern.nodes
    harness.in_namespaces(spec, out, roles, network(pattern), congestion)
    return out / name(pattern) / name(pattern)


def line(label: str, dirs: list[Path], real: np.ndarray | None = None) -> str:
    found = np.concatenate([steps(d).ravel() for d in dirs])
    q = np.percentile(found, [5, 50, 95])
    push, reply = np.median([transfers(d) for d in dirs], axis=0)
    text = f"{label:<24} {q[0]:>7.3f} {q[1]:>7.3f} {q[2]:>7.3f} {push:>7.2f} {reply:>7.2f}"
    if real is not None:
        error = q / np.percentile(real, [5, 50, 95]) - 1
        text += f"   p50 {error[1]:+.1%}, p95 {error[2]:+.1%}"
    rounds = " / ".join(" ".join(f"{s:.1f}" for s in steps(d).max(axis=0)) for d in dirs[:2])
    return text + f"\n{'':<24} longest step per round: {rounds}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", choices=PATTERNS, default="served", help="default served")
    parser.add_argument("--mb", type=float, default=80.0, help="S in MB (default: VGG-19's)")
    parser.add_argument("--rounds", type=int, default=20, help="pushes per worker")
    parser.add_argument("--repeats", type=int, default=1, help="real runs (and seeds)")
    harness.congestion_flag(parser)
    args = parser.parse_args()
    if args.mb <= 0 or args.rounds < 3 or args.repeats < 1:
        print("served: --mb must be > 0, --rounds >= 3 and --repeats >= 1", file=sys.stderr)
        return 2
    congestion = harness.real_runs("served", args.congestion)
    pattern = PATTERNS[args.pattern](4, round(args.mb * 10**6), args.rounds)
    out = Path(tempfile.mkdtemp(prefix=f"{args.pattern}-"))
    seeds = range(args.repeats)
    real = [measure(pattern, s, out / f"real{s}", congestion) for s in seeds]
    pooled = np.concatenate([steps(d).ravel() for d in real])
    print(f"{'':<24} {'p5 (s)':>7} {'p50':>7} {'p95':>7} {'push':>7} {'reply':>7}")
    print(line("real", real))
    for i, (label, options) in enumerate(MODELS.items()):
        dirs = [simulate(pattern, options, s, out / f"sim{i}-{s}") for s in seeds]
        print(line(label, dirs, pooled), flush=True)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
