"""The flow model against packet-level TCP (ns-3) on the same traffic patterns at 64 and 256 nodes.

Each pattern (validation/patterns.py) is simulated by netsim first, and the same messages
(send times and sizes from its messages.csv) then run through ns-3 (validation/ns3_harness.py,
ns3_model.py: a star of point-to-point links into one router, TCP Cubic, a connection per
message, drop-tail queues). netsim runs with ns-3's TCP goodput (1448/1502) and the same
one-way latency, so what differs is the model: fluid max-min sharing against TCP's slow
start, losses and timeouts. Prints, per pattern, the last finisher in both and
their error (netsim / ns-3 - 1), the distribution of the per-message errors, and draws the
scatter plot of every message's completion time (netsim against ns-3, y = x).

    .venv/bin/python benchmarks/ns3_compare.py [--quick] [--queue bdp|PACKETS] [--no-hystart]
        [--only NAME] [--out DIR]

Needs the 'bench' extra (pip install -e '.[bench]'); says so in one line otherwise. The
default run takes about 4 minutes on two shared cores, --quick under a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim import Network  # noqa: E402
from netsim.network import NetworkError  # noqa: E402
from validation import ns3_harness, ns3_model, patterns  # noqa: E402

KB, MB = 1000, 10**6
LATENCY = "1ms"  # one way, node to node


def cases(quick: bool) -> list[tuple[str, patterns.Transfers, str]]:
    """(name, pattern, NIC rate) of every case; --quick keeps four small ones."""
    if quick:
        return [
            ("one 1 MB", patterns.one(MB), "1Gbit/s"),
            ("fan-in 63 x 1 MB", patterns.fan_in(63, MB), "1Gbit/s"),
            ("ring 64 x 1 MB", patterns.ring(64, MB), "1Gbit/s"),
            ("staggered 64, 100 x 1 MB", patterns.staggered(64, MB, 100, 0.5), "1Gbit/s"),
        ]
    sizes = {"64 kB": 64 * KB, "1 MB": MB, "16 MB": 16 * MB}
    found = [(f"one {k}", patterns.one(s), "1Gbit/s") for k, s in sizes.items()]
    found += [(f"one {k} @100M", patterns.one(sizes[k]), "100Mbit/s") for k in ("1 MB", "16 MB")]
    for n in (63, 255):
        found.append((f"fan-in {n} x 1 MB", patterns.fan_in(n, MB), "1Gbit/s"))
        found.append((f"fan-out {n} x 1 MB", patterns.fan_out(n, MB), "1Gbit/s"))
    return found + [
        ("all-to-all 64 x 100 kB", patterns.all_to_all(64, 100 * KB), "1Gbit/s"),
        ("ring 64 x 4 MB", patterns.ring(64, 4 * MB), "1Gbit/s"),
        ("ring 256 x 1 MB", patterns.ring(256, MB), "1Gbit/s"),
        ("staggered 64, 300 x 1 MB", patterns.staggered(64, MB, 300, 1.0), "1Gbit/s"),
        ("staggered 256, 1000 x 1 MB", patterns.staggered(256, MB, 1000, 2.0), "1Gbit/s"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four small cases, about a minute")
    parser.add_argument("--queue", default="bdp", help="drop-tail packets per port, or 'bdp'")
    parser.add_argument("--no-hystart", action="store_true", help="Cubic without HyStart")
    parser.add_argument("--only", default="", help="the cases whose name contains this")
    parser.add_argument("--out", default="results/ns3", help="folder for the plot and runs")
    parser.add_argument(
        "--ramp", default="0", help="netsim's Network ramp: seconds (0.05, 50ms) or tcp"
    )
    args = parser.parse_args()
    try:
        ramp = float(args.ramp)
    except ValueError:
        ramp = args.ramp  # "tcp" or a time with its unit
    try:
        Network("1Gbit/s", LATENCY, ramp=ramp).resolve(["worker"])
    except NetworkError as error:
        print(f"ns3_compare: --ramp {args.ramp}: {error}", file=sys.stderr)
        return 2
    if (why := ns3_model.available()) is not None:
        print(f"ns3_compare: cannot run: {why}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="ns3-", dir=out))
    hystart = "off" if args.no_hystart else "on"
    print(
        f"{LATENCY} one way, drop-tail queues of {args.queue} packets, HyStart {hystart}, "
        f"netsim's ramp {args.ramp}"
    )
    print("| pattern | messages | netsim last (s) | ns-3 last (s) | error | median | ns-3 drops |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    families: dict[str, list] = {}  # "fan-in": [(netsim, ns-3) per message]
    for name, pattern, rate in [c for c in cases(args.quick) if args.only in c[0]]:
        network = Network(rate, LATENCY, goodput=ns3_model.GOODPUT, ramp=ramp)
        folder = name.replace(" ", "_").replace(",", "")
        result = ns3_harness.compare(
            folder, pattern, network, runs, args.queue, hystart=not args.no_hystart
        )
        families.setdefault(name.split()[0], []).extend(result.pairs())
        lost = result.packet.count(None)
        note = f" ({lost} unfinished)" if lost else ""
        pairs = np.array(result.pairs())
        print(
            f"| {name} | {len(pattern.schedule)} | {result.flow_last:.4f} | "
            f"{result.packet_last:.4f}{note} | {result.flow_last / result.packet_last - 1:+.1%} "
            f"| {np.median(pairs[:, 0] / pairs[:, 1] - 1):+.1%} | {result.drops} |",
            flush=True,
        )
    pairs = np.array([pair for family in families.values() for pair in family])
    errors = np.abs(pairs[:, 0] / pairs[:, 1] - 1)
    p50, p95, p100 = np.percentile(errors, [50, 95, 100])
    print(
        f"\nper message |netsim/ns-3 - 1| over {len(errors)} messages: median {p50:.1%}, "
        f"p95 {p95:.1%}, max {p100:.1%}; netsim faster for {np.mean(pairs[:, 0] < pairs[:, 1]):.0%}"
    )
    scatter(families, out / "ns3_scatter.png")
    return 0


def scatter(families: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for family, pairs in families.items():
        pairs = np.array(pairs)
        ax.loglog(pairs[:, 1], pairs[:, 0], ".", alpha=0.4, markersize=4, label=family)
    every = np.array([pair for pairs in families.values() for pair in pairs])
    lo, hi = every.min() * 0.8, every.max() * 1.25
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="y = x")
    ax.set_xlabel("ns-3 completion time (s), packet-level TCP Cubic")
    ax.set_ylabel("netsim completion time (s), max-min flows")
    ax.set_title("netsim vs ns-3, one point per message")
    ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"scatter plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
