"""What the kernel asks of an algorithm, and the answer when the algorithm does not say.

An algorithm is a frozen dataclass with one ``async def`` per role; everything else is optional,
so a dataclass with only ``async def worker(self, node)`` is a whole algorithm. The simulation,
the runner and the experiment checks ask through these functions, the one place the defaults
live:

- ``layout(graph)`` -> (graph, [role names per node]): the nodes and which roles each runs;
  default: the workers' graph, every node a worker (``ops.solo``);
- ``global_model(X, roles)``: the model evaluated; default: the mean of the workers' rows; a
  hook that takes ``online`` also gets, under faults, which nodes are online (a bool each);
- ``check(workers)``: raises ``ops.AlgorithmError`` for hyper-parameters that do not fit the
  run, before it starts; default: nothing to check. Either way every field is first held to
  its annotation (netsim/checks.py), so a check compares values of the declared types;
- ``needs_connected``: the graph must be (strongly) connected; default: False;
- ``drives``: the roles whose return ends the run; default: ("worker",);
- ``stop``: "first" to end the run when the first worker is done; default: the run's setting;
- ``label``: the name in tables and plots; default: the class name;
- ``rounds``: the algorithm ends by itself after this many rounds, so the run needs no
  ``steps`` or ``until`` (FedAvg); default: 0, it does not;
- ``clients_per_round(workers)``: how many workers train in each of its rounds while the others
  wait (FedAvg), so that its steps axis counts rounds x local steps; default: None, all train.
"""

from __future__ import annotations

import dataclasses
import inspect

from netsim.algorithms import ops
from netsim.checks import check_fields


def layout(algorithm, graph):
    hook = getattr(algorithm, "layout", None)
    return hook(graph) if hook is not None else ops.solo(graph)


def global_model(algorithm, X, roles, online=None):
    hook = getattr(algorithm, "global_model", None)
    if hook is None:
        return ops.worker_mean(X, roles)
    if online is not None and "online" in inspect.signature(hook).parameters:
        return hook(X, roles, online=online)
    return hook(X, roles)


def check(algorithm, workers: int) -> None:
    if dataclasses.is_dataclass(algorithm):
        check_fields(algorithm, type(algorithm).__name__, ops.AlgorithmError)
    share = getattr(algorithm, "share", None)  # what messages carry (sharing.py)
    if share is not None and not all(
        callable(getattr(share, f, None)) for f in ("encode", "decode")
    ):
        raise ops.AlgorithmError(
            f"{label(algorithm)}.share is a sharing method from netsim.algorithms.sharing, e.g. "
            f"Full() or Partial(alpha=0.3), got {share!r}"
        )
    hook = getattr(algorithm, "check", None)
    if hook is not None:
        hook(workers)


def needs_connected(algorithm) -> bool:
    return bool(getattr(algorithm, "needs_connected", False))


def drives(algorithm) -> tuple[str, ...]:
    return tuple(getattr(algorithm, "drives", ("worker",)))


def stop(algorithm, default: str) -> str:
    return getattr(algorithm, "stop", default)


def label(algorithm) -> str:
    return getattr(algorithm, "label", type(algorithm).__name__)


def rounds(algorithm) -> int:
    return getattr(algorithm, "rounds", 0) or 0


def clients_per_round(algorithm, workers: int) -> int | None:
    hook = getattr(algorithm, "clients_per_round", None)
    return hook(workers) if hook is not None else None
