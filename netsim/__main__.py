"""python -m netsim EXPERIMENT.py [--set key=value ...] [--out DIR] [--device auto|cpu|cuda]
[--only RUN,...] [--timeline START:END]"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from netsim.algorithms.ops import AlgorithmError
from netsim.data import DataError
from netsim.engine.compute import ComputeError
from netsim.experiment import ConfigError, Experiment
from netsim.network import NetworkError
from netsim.units import UnitError, parse_time
from topologies.graphs import TopologyError

USER_ERRORS = (
    AlgorithmError,
    ConfigError,
    ComputeError,
    DataError,
    NetworkError,
    TopologyError,
    UnitError,
)


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        timeline = parse_timeline(args.timeline) if args.timeline is not None else None
        experiment = load(args.experiment)
        experiment.override(args.set)
        if args.only:
            experiment.select(args.only.split(","))
        from netsim.runner import run
        from netsim.sim import SimulationError

        try:
            run(
                experiment,
                args.out,
                args.device,
                progress=not args.no_progress,
                timeline=timeline,
            )
        except SimulationError as exc:
            raise ConfigError(str(exc)) from None
    except USER_ERRORS as exc:
        print(f"netsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"netsim: interrupted; results so far are under {args.out}/", file=sys.stderr)
        return 130
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


def load(path: str) -> Experiment:
    if not Path(path).is_file():
        raise ConfigError(f"no experiment file {path!r}: pass a path like experiments/ps_vs_p2p.py")
    namespace = runpy.run_path(path)
    experiment = namespace.get("experiment")
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"{path} must define `experiment = Experiment(...)`")
    return experiment


if __name__ == "__main__":
    sys.exit(main())
