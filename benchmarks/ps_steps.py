"""ps_vs_p2p's seconds per batch, simulated and for real: the parameter server and peer-to-peer
runs of experiments/ps_vs_p2p.py on the real runtime, each node in a network namespace with
htb-shaped NICs (the server's at 300 Mbit/s, the others' at 1 Gbit/s), against the simulation
of the same runs, at the McMahan CNN's size (6.65 MB a message) and at VGG-19's (80 MB).

Prints each run's step-time percentiles (p5, p50, p95; a worker's step time is the gap between
the ends of its consecutive steps, so it includes waiting, as Cui's Table I counts it) measured
and simulated, with max-min sharing ("sim"), with Network(unfairness="tcp") ("sim tcp"), with
Network(ramp="tcp") ("sim ramp") and with that and acks="tcp" ("sim ramp acks"), and
with those and the real server's update time ("sim update": Compute(update_time=...), the
median of the real run's, see update_time(); peer-to-peer: the real workers' time to merge a
reply, merge_time()), with those and Network(unfairness="tcp",
unfairness_among="together") ("sim together": uneven shares among flows that start together),
and with those at the rate this host's real runtime moved a message alone ("sim host": the
goodput measured by host_goodput(), a calibration of the test host, not of TCP), and their
errors, and draws the overlaid histograms of real, max-min, "sim update", "sim together" and
"sim host".
Per run it also prints how crowded the busiest node's links were (crowding(): how many other
messages were on the link while a message was, on average, into the node and out of it): the
server's workers taking turns give 0, four of them in lockstep 3.
With --repeats R each run is measured R times and simulated with seeds 0..R-1, and the step
times of all of them are pooled.

    sudo .venv/bin/python benchmarks/ps_steps.py [--steps N] [--models mcmahan_cnn,vgg19]
        [--runs async_ps,p2p] [--repeats R] [--goodput G] [--plot FILE]
        [--congestion cubic|bbr|reno|host]

The real runs' TCP is Cubic unless --congestion says otherwise (netsim/real/netns.py).

The emulated compute (0.58 s a batch, 2% jitter) is a minimum in the real runtime: a real step
that takes longer than that stretches the measured time. VGG-19 therefore trains at batch 1 on
32x32 inputs (synthetic_cifar10), which keeps its real step well under 0.58 s on two cores while
its messages keep their 80 MB; the McMahan CNN trains as in the experiment (batch 32,
Fashion-MNIST or its labelled substitute). Needs root and tc's htb; says so in one line
otherwise. Run it on a quiet machine: a second job on the same cores shows up as network time.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsim import data, run  # noqa: E402
from netsim.real import netns  # noqa: E402
from netsim.results.read import read_csv, step_times  # noqa: E402
from netsim.runner import check  # noqa: E402
from netsim.specfile import load  # noqa: E402
from validation import harness  # noqa: E402

RUNS = ("async_ps", "p2p")
SIZES = {  # model: settings that differ from the experiment's
    "mcmahan_cnn": {},
    "vgg19": {"batch": 1, "data": "synthetic_cifar10"},
}


def experiment(model: str, steps: int, goodput: float, runs=RUNS, seed: int = 0):
    spec = load(str(Path(__file__).resolve().parents[1] / "experiments" / "ps_vs_p2p.py"))
    spec.select(list(runs))
    fmnist = "fashion_mnist" if data.available("fashion_mnist") else "synthetic_fmnist"
    network = dataclasses.replace(spec.shared["network"], goodput=goodput)
    extra = {"data": fmnist} | SIZES[model]
    # evaluated at the start and the end only; as a time, so no warning about few points
    spec.shared |= {"model": model, "steps": steps, "eval_every": "1e9s", "eval_subset": 100}
    spec.shared |= {"lr_schedule": "constant", "network": network, "execution": "loop"} | extra
    spec.shared["seed"] = seed
    spec.name = f"ps_steps_{model}"
    return spec


# label: the simulation's Network options (besides the experiment's)
MODELS = {
    "sim": {},
    "sim tcp": {"unfairness": "tcp"},
    "sim ramp": {"ramp": "tcp"},
    "sim ramp acks": {"ramp": "tcp", "acks": "tcp"},
}
# simulated after the real run, with its server's update time (update_time()) as
# Compute(update_time=...)
UPDATED = {
    "sim update": {"ramp": "tcp", "acks": "tcp"},
    # and TCP's uneven shares among flows that start together (Network.unfairness_among)
    "sim together": {
        "ramp": "tcp",
        "acks": "tcp",
        "unfairness": "tcp",
        "unfairness_among": "together",
    },
    # and the rate this host's real runtime achieved (host_goodput()) as the goodput
    "sim host": {
        "ramp": "tcp",
        "acks": "tcp",
        "unfairness": "tcp",
        "unfairness_among": "together",
        "goodput": "host",
    },
}
PLOTTED = ("sim", "sim update", "sim together", "sim host", "real")  # the histograms' curves
MB = 10**6


def host_goodput(run_dir: Path, network, roles: list[str]) -> float:
    """The share of its path's slowest NIC that a real message of 1 MB or more moved while
    no other such message shared its sender's uplink or its receiver's downlink: the median
    over those messages of 8 bytes / transfer time / min(uplink, downlink). TCP's framing
    alone allows 1448/1514; a runtime or host that cannot keep up with the NIC moves less.
    NaN if no message travelled alone."""
    nics = dataclasses.replace(network, goodput=1.0).resolve(roles).nics
    rows = read_csv(Path(run_dir) / "messages.csv", text=("kind", "reason"))
    if not rows:
        return float("nan")
    src, dst = rows["src"].astype(int), rows["dst"].astype(int)
    start, stop = rows["t_send"], rows["t_arrive"]
    big = rows["bytes"] >= MB
    shares = []
    for k in np.flatnonzero(big & np.isfinite(stop)):
        near = big & ((src == src[k]) | (dst == dst[k])) & (start < stop[k])
        near &= ~(stop <= start[k])  # still on its way (NaN) counts as overlapping
        near[k] = False
        if not near.any():
            rate = min(nics[src[k]].up, nics[dst[k]].down)
            shares.append(8 * rows["bytes"][k] / (stop[k] - start[k]) / rate)
    return float(np.median(shares)) if shares else float("nan")


def update_time(run_dir: Path) -> float:
    """The median time the real server took per update: from a gradient's arrival, or from
    its previous reply if that left later (the gradient waited), to the reply's departure.
    It holds decoding the gradient, applying it and encoding the reply. Peer-to-peer (no
    gradients): merge_time(). 0 when neither has any."""
    rows = read_csv(Path(run_dir) / "messages.csv", text=("kind", "reason"))
    if not rows:
        return 0.0
    if not (rows["kind"] == "grad").any():
        return merge_time(run_dir, rows)
    grads = np.flatnonzero((rows["kind"] == "grad") & np.isfinite(rows["t_arrive"]))
    replies = np.flatnonzero(rows["kind"] == "params")
    taken, busy = [], 0.0
    for grad in grads[np.argsort(rows["t_arrive"][grads], kind="stable")]:
        arrived = rows["t_arrive"][grad]
        mine = replies[(rows["dst"][replies] == rows["src"][grad])]
        later = rows["t_send"][mine][rows["t_send"][mine] >= arrived]
        if not len(later):  # the run ended first
            continue
        start = max(arrived, busy)
        busy = float(later.min())
        taken.append(busy - start)
    return float(np.median(taken)) if taken else 0.0


def merge_time(run_dir: Path, rows) -> float:
    """The median time a real peer-to-peer worker took to merge a reply: from the reply's
    arrival while the worker waited for it (after one step's end, before the next's start)
    to the next step's start. It holds decoding the model and averaging it. 0 if none came
    in time."""
    steps = read_csv(Path(run_dir) / "steps.csv")
    taken = []
    for worker in np.unique(steps["node"]):
        mine = steps["node"] == worker
        ends, starts = np.sort(steps["t_end"][mine]), np.sort(steps["t_start"][mine])
        replies = rows["t_arrive"][(rows["kind"] == "model") & (rows["dst"] == worker)]
        for end, start in zip(ends, starts[1:], strict=False):
            came = replies[(replies > end) & (replies < start)]
            if len(came):
                taken.append(start - came.max())
    return float(np.median(taken)) if taken else 0.0


def crowding(run_dir: Path) -> tuple[float, float]:
    """How many other messages share a link with a message, on average over its transfer and
    over the messages into (out of) the node that receives (sends) the most, the server in
    async_ps: (into, out of). 0 when the workers take turns on the server's link, 3 when four
    of them push (or pull) together."""
    rows = read_csv(Path(run_dir) / "messages.csv", text=("kind", "reason"))
    kept = np.isfinite(rows["t_arrive"]) if rows else np.zeros(0, bool)  # drops never arrive
    if not kept.any():  # one worker alone, or nothing arrived
        return 0.0, 0.0
    found = []
    for end in ("dst", "src"):
        nodes, counts = np.unique(rows[end][kept], return_counts=True)
        mine = kept & (rows[end] == nodes[np.argmax(counts)])
        start, stop = rows["t_send"][mine], rows["t_arrive"][mine]
        overlap = np.clip(np.minimum.outer(stop, stop) - np.maximum.outer(start, start), 0, None)
        np.fill_diagonal(overlap, 0.0)
        found.append(float(np.mean(overlap.sum(axis=1) / np.maximum(stop - start, 1e-12))))
    return found[0], found[1]


def measure(
    spec, out: Path, congestion: str | None = netns.CONGESTION
) -> dict[str, dict[str, np.ndarray]]:
    """{run: {label: step times}}: each of MODELS simulated, and "real" measured (its TCP under
    the congestion control `congestion`; None: the host's)."""
    fair = spec.shared["network"]
    for label, options in MODELS.items():
        spec.shared["network"] = dataclasses.replace(fair, **options)
        run(spec, out=out / label, progress=False, plot=False)
    spec.shared["network"] = fair
    runs, checked = check(spec, out / "check")
    found = {}
    for (name, settings), (_, roles) in zip(runs, checked, strict=True):
        spec.select([name])
        harness.in_namespaces(spec, out / "real", roles, settings.network, congestion)
        real_dir = out / "real" / spec.name / name
        seconds = update_time(real_dir)
        host = host_goodput(real_dir, settings.network, roles)
        compute = spec.shared["compute"]
        for label, options in UPDATED.items():
            if options.get("goodput") == "host":
                options = options | {"goodput": host if np.isfinite(host) else fair.goodput}
            spec.shared["network"] = dataclasses.replace(fair, **options)
            spec.shared["compute"] = dataclasses.replace(compute, update_time=seconds)
            run(spec, out=out / label, progress=False, plot=False)
        spec.shared["network"], spec.shared["compute"] = fair, compute
        what = "server's update" if name == "async_ps" else "workers' merge"
        print(f"{spec.name} {name}: the real {what} time, median {seconds:.3f} s")
        print(f"{spec.name} {name}: a message alone moved {host:.3f} of its NIC's rate")
        labels = [*MODELS, *UPDATED, "real"]
        found[name] = {label: step_times(out / label / spec.name / name) for label in labels}
        crowded = {label: crowding(out / label / spec.name / name) for label in labels}
        print(
            f"{spec.name} {name}: other messages on the busiest node's link, in / out: "
            + ", ".join(f"{label} {c[0]:.2f} / {c[1]:.2f}" for label, c in crowded.items())
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per worker (default 20)")
    parser.add_argument("--models", default="mcmahan_cnn,vgg19", help="which sizes to run")
    parser.add_argument("--runs", default=",".join(RUNS), help="which runs (async_ps, p2p)")
    parser.add_argument("--repeats", type=int, default=1, help="measurements pooled per run")
    parser.add_argument("--goodput", type=float, default=1448 / 1514, help="the simulation's")
    parser.add_argument("--plot", default="ps_steps_hist.png", help="the histograms' file")
    harness.congestion_flag(parser)
    args = parser.parse_args()
    congestion = harness.real_runs("ps_steps", args.congestion)
    out = Path(tempfile.mkdtemp(prefix="ps-steps-"))
    results = {}
    for model in args.models.split(","):
        pooled: dict[str, dict[str, list]] = {}
        for seed in range(args.repeats):
            spec = experiment(model, args.steps, args.goodput, args.runs.split(","), seed)
            for name, times in measure(spec, out / f"seed={seed}", congestion).items():
                for label, values in times.items():
                    pooled.setdefault(name, {}).setdefault(label, []).append(values)
        print(
            f"{'model':<12} {'run':<9} {'':>8} {'p5 (s)':>8} {'p50 (s)':>8} {'p95 (s)':>8} "
            f"{'mean (s)':>8}"
        )
        for name, times in pooled.items():
            times = {label: np.concatenate(values) for label, values in times.items()}
            results[(model, name)] = times
            q = {
                label: np.percentile(v, [5, 50, 95]).tolist() + [v.mean()]
                for label, v in times.items()
            }
            for label, values in q.items():
                print(f"{model:<12} {name:<9} {label:>8} " + " ".join(f"{v:>8.3f}" for v in values))
            for label in [*MODELS, *UPDATED]:
                row = "err" + label[3:]
                error = np.array(q[label]) / np.array(q["real"]) - 1
                print(f"{model:<12} {name:<9} {row:>8} " + " ".join(f"{e:>+8.1%}" for e in error))
    histograms(results, args.plot)
    print(f"histograms: {args.plot}; results: {out}")
    return 0


def histograms(results, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = 1 if len(results) == 1 else 3  # the legend's columns, below the plots
    below = 0.12 + 0.16 * -(-len(PLOTTED) // ncol)  # inches for the legend
    fig, axes = plt.subplots(
        1, len(results), figsize=(4.2 * len(results), 3.2 + below), squeeze=False
    )
    styles = {
        "real": ("real (namespaces)", "tab:orange"),
        "sim": ("simulated, max-min", "tab:blue"),
        "sim update": ('simulated, ramp and acks "tcp", update time', "tab:red"),
        "sim together": ("simulated, those and unfairness together", "black"),
        "sim host": ("simulated, together at this host's rate", "tab:green"),
    }
    for ax, ((model, name), times) in zip(axes[0], results.items(), strict=True):
        bins = np.linspace(0, max(v.max() for v in times.values()) * 1.05, 30)
        for label in PLOTTED:
            values = times[label]
            text, color = styles[label]
            fill = label == "real"
            ax.hist(
                values,
                bins=bins,
                weights=np.full(len(values), 1 / len(values)),  # runs of different lengths
                alpha=0.5 if fill else 1.0,
                label=text,
                color=color,
                histtype="stepfilled" if fill else "step",
                linewidth=1.6,
            )
        ax.set_title(f"{name}, {model}")
        ax.set_xlabel("seconds per batch")
    axes[0][0].set_ylabel("share of steps")
    handles, labels = axes[0][0].get_legend_handles_labels()  # below the plots, off the bars
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.tight_layout(rect=(0, below / (3.2 + below), 1, 1))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
