"""python -m netsim EXPERIMENT.py [--set key=value ...] [--out DIR] [--device auto|cpu|cuda]
[--only RUN,...] [--timeline START:END] [--seeds K] [--sweep KEY=V1,V2 ...] [--jobs N]
[--ray [ADDRESS]]"""

from __future__ import annotations

import os
import signal
import sys


def _stopped_while_starting(signum, frame):
    # nothing was run and nothing written: leave at once. An exception raised here could land
    # inside a library's import that swallows it (a bare except), and the run went on.
    what = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    print(f"netsim: {what} while starting; nothing was run", file=sys.stderr, flush=True)
    os._exit(130 if signum == signal.SIGINT else 143)


if __name__ == "__main__":  # torch and the rest take seconds to load on a cold start
    signal.signal(signal.SIGINT, _stopped_while_starting)
    signal.signal(signal.SIGTERM, _stopped_while_starting)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from netsim import interrupts, specfile  # noqa: E402
from netsim.algorithms.ops import AlgorithmError  # noqa: E402
from netsim.data import DataError  # noqa: E402
from netsim.engine.compute import ComputeError  # noqa: E402
from netsim.experiment import ConfigError, Experiment  # noqa: E402
from netsim.network import NetworkError  # noqa: E402
from netsim.units import UnitError, parse_time  # noqa: E402
from topologies.graphs import TopologyError  # noqa: E402

USER_ERRORS = (
    AlgorithmError,
    ConfigError,
    ComputeError,
    DataError,
    NetworkError,
    TopologyError,
    UnitError,
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the program is, so that a run stops as on Ctrl-C: its rows
    flushed, its summary.json not complete, one line said."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if threading.current_thread() is threading.main_thread():  # loaded: Python's own handling
        if signal.getsignal(signal.SIGINT) is _stopped_while_starting:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if argv[:1] == ["worker"]:
        return worker(argv[1:])
    try:
        with _sigterm_interrupts():
            return experiment_main(argv)
    except KeyboardInterrupt as exc:  # before experiment_main's own handler (arguments)
        print(f"netsim: {exc or 'interrupted'} while starting; nothing was run", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM stops a run as Ctrl-C does; both wait for a row being written (interrupts.py)."""
    if threading.current_thread() is not threading.main_thread():  # signals go to the main one
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if set otherwise
        signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if signal.getsignal(signal.SIGINT) is _interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _terminate(signum, frame):
    interrupts.interrupt(Terminated("terminated (SIGTERM)"))


def _interrupt(signum, frame):
    interrupts.interrupt(KeyboardInterrupt())


def experiment_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m netsim", description=__doc__)
    parser.add_argument("experiment", help="an experiment file, e.g. experiments/ps_vs_p2p.py")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting (repeatable): steps=20, p2p.lr=0.1",
    )
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="where tensors live (default: the experiment's, else auto)",
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="RUN[,RUN]",
        help="run only these runs (others keep their earlier results)",
    )
    parser.add_argument(
        "--timeline",
        default=None,
        metavar="START:END",
        help="the simulated seconds timeline.png shows: 0:30, 100: (to the end); default 0:10",
    )
    parser.add_argument(
        "--runtime",
        choices=["sim", "real"],
        default="sim",
        help="sim: the simulated clock (default); real: one process per node on real TCP",
    )
    parser.add_argument(
        "--hosts",
        default=None,
        metavar="FILE",
        help="real runtime across hosts: one host[:port] per line, nodes dealt round-robin; "
        "each host runs `python -m netsim worker --connect THIS_HOST:PORT --host HOST`",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="the real runtime's control port (with --hosts)"
    )
    parser.add_argument(
        "--bind",
        default=None,
        help="address the control port listens on (default 0.0.0.0 with --hosts, else 127.0.0.1)",
    )
    parser.add_argument(
        "--seeds",
        default=None,
        metavar="K|S,S,...",
        help="make every run with K seeds (its own and the K-1 after it) or with these seeds, "
        "into RUN/seed=S/",
    )
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="make every run at each of these values (repeatable: the grid; keys as in --set)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="runs at a time in a local process pool (default: one per core; 1: one after "
        "another, each with its progress bar)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="make the runs as Ray tasks: on a local Ray, or on the cluster at ADDRESS "
        "(pip install -e '.[ray]')",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    sweeping = args.seeds, args.sweep or None, args.jobs, args.ray
    sweeping = any(option is not None for option in sweeping)
    try:
        timeline = parse_timeline(args.timeline) if args.timeline is not None else None
        experiment = load(args.experiment)
        experiment.override(args.set)
        if args.only:
            experiment.select(args.only.split(","))
        from netsim.runner import placement, run
        from netsim.sim import SimulationError

        where = placement(args.runtime, args.hosts, args.port, args.bind)
        if args.runtime == "real" and sweeping:
            raise ConfigError(
                "--seeds, --sweep, --jobs and --ray are for the simulation: the real runtime's "
                "nodes are processes already, one run at a time (loop over --set seed=S)"
            )

        try:
            if sweeping:
                from netsim.grid import parse_grid, parse_seeds
                from netsim.sweeps import sweep

                sweep(
                    experiment,
                    parse_grid(args.sweep),
                    parse_seeds(args.seeds) if args.seeds is not None else None,
                    args.out,
                    args.device,
                    progress=not args.no_progress,
                    timeline=timeline,
                    jobs=args.jobs,
                    ray=args.ray,
                )
            else:
                run(
                    experiment,
                    args.out,
                    args.device,
                    progress=not args.no_progress,
                    timeline=timeline,
                    runtime=args.runtime,
                    where=where,
                )
        except SimulationError as exc:
            raise ConfigError(str(exc)) from None
        except RuntimeError as exc:  # a real run (which node, why) or a pool worker that died
            if type(exc).__name__ not in ("RealRunError", "PoolError"):
                raise
            print(f"netsim: error: {exc}; results so far are under {args.out}/", file=sys.stderr)
            return 1
    except USER_ERRORS as exc:
        print(f"netsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        again = "; the same command again makes only the runs not done yet" if sweeping else ""
        what = str(exc) or "interrupted"
        print(f"netsim: {what}; results so far are under {args.out}/{again}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    table = Path(args.out) / experiment.name / "summary.md"
    print(table.read_text(), end="")
    print(f"results and plots: {table.parent}/")
    return 0


def parse_timeline(text: str) -> tuple[float, float | None]:
    """'0:30' -> (0.0, 30.0), '100:' -> (100.0, None) (to the end); units allowed: '1min:2min'."""
    start, colon, end = text.partition(":")
    try:
        window = (parse_time(start or 0), parse_time(end) if end else None)
    except UnitError:
        window = None
    if not colon or window is None or (window[1] is not None and window[1] <= window[0]):
        raise ConfigError(
            f"--timeline takes START:END in simulated seconds with START < END, e.g. 0:30, or "
            f"START: for the rest of the run, e.g. 100:; got {text!r}"
        )
    return window


def worker(argv: list[str]) -> int:
    """``python -m netsim worker``: a node process, or with --host a host's agent."""
    parser = argparse.ArgumentParser(prog="python -m netsim worker")
    parser.add_argument("--connect", required=True, metavar="HOST:PORT", help="the coordinator")
    parser.add_argument("--host", help="run as this host's agent: start the nodes dealt to it")
    parser.add_argument("--node", type=int, help="(started by an agent) the node to run")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    args = parser.parse_args(argv)
    if args.host is not None:
        from netsim.real.hosts import agent

        return agent(args.connect, args.host)
    if args.node is None:
        parser.error("give --host HOST (an agent) or --node I")
    from netsim.real.process import main as node_main

    return node_main(args.connect, args.node, args.listen)


def load(path: str) -> Experiment:
    return specfile.load(path)


if __name__ == "__main__":
    sys.exit(main())
