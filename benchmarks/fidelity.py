"""The simulated network against real TCP: the same traffic patterns in both runtimes.

Each pattern (validation/patterns.py) runs simulated and for real, its nodes in network
namespaces with htb-shaped NICs (netsim/real/netns.py), on the same Network. Prints, per
pattern, the last finisher's time in both and their error, then the distribution of the
per-message completion-time errors, a fit of the TCP goodput factor and per-message constant
from the single transfers, and draws the scatter plot (simulated vs measured, y = x).

The simulation replays the real run's send instants (validation/harness.py). Per-message errors
come two ways: paired (each message against itself) and by rank among alike messages (those
a pattern starts at the same instant with the same size: the k-th to end simulated against the
k-th to end measured; any other message against itself). Where alike flows share a link, which
of them TCP favours is a matter of chance, so no model can pair them; the ranks say whether the
spread of their completion times is right. With --repeats 2 or more it also prints real TCP
against itself (each measurement against the one before): a floor no model can beat.

--keep DIR keeps each measurement under DIR/<pattern>/<n>; --replay DIR simulates the ones
kept there again, without root or namespaces, on the network the flags give: one measurement,
any number of models.

    sudo .venv/bin/python benchmarks/fidelity.py [--quick] [--goodput G] [--unfairness U]
        [--unfairness-among all|together] [--ramp T] [--acks A] [--connections message|pair]
        [--rates R1,R2] [--repeats N]
        [--only TEXT] [--plot FILE] [--congestion cubic|bbr|reno|host]
        [--keep DIR | --replay DIR]

The real runs' TCP is Cubic (Linux's default) unless --congestion says otherwise, set in each
namespace rather than inherited from the host: a host tuned for BBR measures another TCP.

Each row also gives the shares of the host's CPU that were busy and stolen by the hypervisor
from the real run's first send to its last arrival: a row whose CPU was near 100% measured the
host, not the network. --repeats N measures each pattern N times and prints, per pattern, the
median, the best and the range of the last finisher's error.

Needs root and iproute2 (htb); says so in one line otherwise. Run it on a quiet machine: a
second job on the same cores shows up as network time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim import Network  # noqa: E402
from netsim.network.spec import NetworkError  # noqa: E402
from netsim.real import netns  # noqa: E402
from validation import errors, harness, patterns  # noqa: E402

KB, MB = 1000, 10**6
RATES = ("100Mbit/s", "1Gbit/s")  # of the patterns among 8 nodes, unless --rates says


def cases(
    quick: bool,
    goodput: float,
    unfairness=0.0,
    ramp=0.0,
    acks=0.0,
    connections="message",
    rates=RATES,
    unfairness_among="all",
) -> list[tuple[str, object, Network]]:
    """(name, pattern, network) of every case; rates: those of the patterns among 8 nodes."""
    options = {"goodput": goodput, "unfairness": unfairness, "ramp": ramp, "acks": acks}
    options |= {"connections": connections, "unfairness_among": unfairness_among}
    net = lambda rate, **kw: Network(rate, **options, **kw)
    slow_server = lambda: net("1Gbit/s", nodes={0: {"bandwidth": "300Mbit/s"}})
    if quick:
        return [
            ("one 4 MB @100M", patterns.one(4 * MB), net("100Mbit/s")),
            ("fan-in 4 x 4 MB", patterns.fan_in(4, 4 * MB), slow_server()),
        ]
    found = []
    for rate in ("100Mbit/s", "1Gbit/s"):
        for size in (64 * KB, 256 * KB, MB, 4 * MB, 16 * MB, 64 * MB):
            found.append((f"one {size // KB} kB{at(rate)}", patterns.one(size), net(rate)))
    for n in (2, 4, 8, 16):
        found.append((f"fan-in {n} x 4 MB", patterns.fan_in(n, 4 * MB), slow_server()))
    # 8 nodes that each send and receive at 1 Gbit/s ask more of 2 cores than they have
    # (docs/fidelity.md); --rates picks rates the host can carry
    for rate in rates:
        found += [
            (f"fan-out 8 x 4 MB{at(rate)}", patterns.fan_out(8, 4 * MB), net(rate)),
            (f"all-to-all 8 x 1 MB{at(rate)}", patterns.all_to_all(8, MB), net(rate)),
            (f"ring 8 x 4 MB{at(rate)}", patterns.ring(8, 4 * MB), net(rate)),
            (
                f"staggered 8, 40 x 2 MB{at(rate)}",
                patterns.staggered(8, 2 * MB, 40, 0.5),
                net(rate),
            ),
        ]
    return found


def folder(name: str) -> str:
    """A pattern's folder name (and its experiment's): "one 4 MB @100M" -> "one_4_MB_100M"."""
    return name.replace(" ", "_").replace("@", "").replace(",", "")


def at(rate: str) -> str:
    """A row name's rate: " @100M", " @1G"."""
    return f" @{rate.removesuffix('bit/s')}"


def fit(results, specs) -> tuple[float, float]:
    """real = c + 8 S / (g B) over the single transfers: the goodput g and the constant c."""
    xs, ys = [], []
    for result, (_, pattern, network) in zip(results, specs, strict=True):
        if len(pattern.schedule) == 1:
            _, _, _, size = pattern.schedule[0]
            rate = network.resolve(["worker", "worker"]).nics[0].up / network.goodput
            xs.append(8 * size / rate)
            ys.append(next(iter(result.real.values())))
    slope, c = np.polyfit(xs, ys, 1)
    return 1 / slope, c


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two small cases only")
    parser.add_argument("--goodput", type=float, default=1.0, help="the simulation's goodput")
    parser.add_argument(
        "--unfairness", default="0", help="the simulation's unfairness: a sigma, or tcp"
    )
    parser.add_argument(
        "--unfairness-among",
        default="all",
        help="whose weights count: all flows', or those of flows that start together",
    )
    parser.add_argument(
        "--ramp", default="0", help="the simulation's ramp: seconds (0.05, 50ms), or tcp"
    )
    parser.add_argument("--acks", default="0", help="the simulation's acks: a share, or tcp")
    parser.add_argument(
        "--connections",
        default="message",
        help="the simulation's connections: message (a flow each) or pair (one per sender and "
        "receiver, as the real runtime's TCP)",
    )
    parser.add_argument(
        "--rates",
        default=",".join(RATES),
        help="rates of the patterns among 8 nodes, comma-separated (100Mbit/s,1Gbit/s)",
    )
    harness.congestion_flag(parser)
    parser.add_argument("--repeats", type=int, default=1, help="measurements of each pattern")
    parser.add_argument("--only", default="", help="the patterns whose name holds this text")
    parser.add_argument("--plot", default="fidelity_scatter.png", help="the scatter plot's file")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", type=Path, help="keep each measurement under DIR/<pattern>/<n>")
    kept.add_argument("--replay", type=Path, help="simulate the measurements kept under DIR")
    args = parser.parse_args()
    options = settings(args)
    if isinstance(options, str):
        print(f"fidelity: {options}", file=sys.stderr)
        return 2
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        print(f"fidelity: --keep {args.keep} is not empty: give a new folder", file=sys.stderr)
        return 2
    if args.replay is None and (why := netns.why_not()) is not None:
        print(f"fidelity: cannot run: {why}", file=sys.stderr)
        return 2
    specs = [c for c in cases(args.quick, args.goodput, **options) if args.only in c[0]]
    if not specs:
        print(f"fidelity: no pattern's name holds {args.only!r}", file=sys.stderr)
        return 2
    if args.replay is not None:
        kept = {  # in the order measured: 1, 2, ..., 10
            name: sorted(
                args.replay.glob(f"{folder(name)}/*/real"), key=lambda p: int(p.parent.name)
            )
            for name, _, _ in specs
        }
        specs = [spec for spec in specs if kept[spec[0]]]
        if not specs:
            print(f"fidelity: {args.replay} holds no measurement of these patterns (made by "
                  "--keep DIR)", file=sys.stderr)  # fmt: skip
            return 2
    results = []  # per pattern, its measurements
    if args.replay is None:
        congestion = harness.congestion(args.congestion)
        host = f"{netns.congestion_in('')}, the host's own"
        print(f"real TCP: {congestion or host}")
    print(
        f"{'pattern':<28} {'msgs':>4} {'sim last (s)':>12} {'real last (s)':>13} {'error':>7} "
        f"{'CPU busy':>8} {'stolen':>6}"
    )
    for name, pattern, network in specs:
        results.append([])
        if args.replay is not None:
            where = [path.parent for path in kept[name]]
        else:
            where = [
                args.keep and args.keep / folder(name) / str(n + 1) for n in range(args.repeats)
            ]
        for repeat, out in enumerate(where):
            if args.replay is not None:
                result = harness.simulate(folder(name), pattern, network, out)
            else:
                result = harness.measure(folder(name), pattern, network, out, congestion)
            results[-1].append(result)
            error = result.sim_last / result.real_last - 1
            label = name if len(where) == 1 else f"{name} #{repeat + 1}"
            print(
                f"{label:<28} {len(result.real):>4} {result.sim_last:>12.4f} "
                f"{result.real_last:>13.4f} {error:>+7.1%} {result.busy:>8.0%} "
                f"{result.stolen:>6.0%}",
                flush=True,
            )
    if max(map(len, results)) > 1:
        print("\nlast finisher, simulated / measured - 1 over its measurements:")
        for (name, _, _), measured in zip(specs, results, strict=True):
            last = np.array([r.sim_last / r.real_last - 1 for r in measured])
            print(
                f"{name:<28} median {np.median(last):+7.1%}, best {min(last, key=abs):+7.1%},"
                f" from {last.min():+.1%} to {last.max():+.1%}"
            )
    # (spec, result) of every measurement
    flat = [(spec, r) for spec, measured in zip(specs, results, strict=True) for r in measured]
    pairs = np.array([pair for _, result in flat for pair in result.pairs()])
    paired = errors.relative(pairs)
    by_rank = errors.relative([p for spec, r in flat for p in errors.ranked(r, spec[1])])
    print(f"\nper-message |sim/real - 1| over {len(paired)} messages: {errors.spread(paired)}")
    print(f"the same, matched by rank among alike messages: {errors.spread(by_rank)}")
    itself = [
        errors.against_itself(measured, spec[1])
        for spec, measured in zip(specs, results, strict=True)
    ]
    if count := sum(len(p) for p, _ in itself):
        own, own_ranks = (np.concatenate(parts) for parts in zip(*itself, strict=True))
        print(f"real TCP against itself (the measurement before), {count}: {errors.spread(own)}")
        print(f"the same, matched by rank among alike messages: {errors.spread(own_ranks)}")
    singles = [(result, spec) for spec, result in flat if len(spec[1].schedule) == 1]
    if len({spec[1].schedule[0][3] for _, spec in singles}) >= 2:  # two sizes or more
        goodput, constant = fit(*zip(*singles, strict=True))
        print(
            f"fit of the single transfers: goodput {goodput:.4f}, constant {constant * 1e3:.2f} ms"
        )
    kinds = [spec[0].split()[0] for spec, result in flat for _ in result.pairs()]
    harness.scatter(pairs, args.plot, kinds)
    return 0


def settings(args) -> dict | str:
    """The simulation's unfairness (and among which flows), ramp, acks, connections and
    8-node rates from the command line, checked as Network checks them (and the real runs'
    congestion control as the kernel offers it); or the one line that says what is wrong."""
    unfairness = args.unfairness if args.unfairness == "tcp" else number(args.unfairness)
    ramp = args.ramp if args.ramp == "tcp" else number(args.ramp)
    acks = args.acks if args.acks == "tcp" else number(args.acks)
    rates = tuple(rate.strip() for rate in args.rates.split(",") if rate.strip())
    if args.repeats < 1:
        return f"--repeats {args.repeats}: use a whole number >= 1"
    if not rates:
        return f"--rates {args.rates!r}: give one rate or more, e.g. 100Mbit/s,25Mbit/s"
    try:
        harness.congestion(args.congestion)
    except ValueError as error:
        return str(error)
    for flag, value, kw in (
        ("--unfairness", args.unfairness, {"unfairness": unfairness}),
        (
            "--unfairness-among",
            args.unfairness_among,
            {"unfairness": unfairness, "unfairness_among": args.unfairness_among},
        ),
        ("--ramp", args.ramp, {"ramp": ramp}),
        ("--acks", args.acks, {"acks": acks}),
        ("--connections", args.connections, {"connections": args.connections}),
        ("--goodput", args.goodput, {"goodput": args.goodput}),
    ):
        try:
            Network("1Gbit/s", **kw).resolve(["worker"])
        except NetworkError as error:
            return f"{flag} {value}: {error}"
    for rate in rates:
        try:
            Network(rate).resolve(["worker"])
        except NetworkError as error:
            return f"--rates: {rate}: {error}"
    options = {"unfairness": unfairness, "ramp": ramp, "acks": acks, "rates": rates}
    return options | {"connections": args.connections, "unfairness_among": args.unfairness_among}


def number(text: str):
    """A float where text is one, else text as given (a time with its unit)."""
    try:
        return float(text)
    except ValueError:
        return text


if __name__ == "__main__":
    sys.exit(main())
