"""Settings held to the types their dataclass declares, before anything reads them.

A setting's annotation is its contract (``lr: float``, ``steps: int | None``); a value of
another type (``lr="abc"``, ``steps=True``, ``lr=1e400``, read from ``--set`` as text or inf)
would otherwise fail deep inside numpy or torch, or train to NaN. ``check_fields`` says which
setting, in one line, before the run starts; the value's range is each owner's own check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Mapping

_WORDS = {int: "an integer", float: "a finite number", str: "text", bool: "True or False"}


def check_fields(obj, prefix: str, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming ``prefix.field`` for the first field of the dataclass obj whose
    value its annotation does not admit; fields typed Any (or unresolvable) pass."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints.get(f.name, typing.Any)
        value = getattr(obj, f.name)
        if not admits(hint, value):
            name = f"{prefix}.{f.name}" if prefix else f.name
            raise error(f"{name} must be {describe(hint)}, got {value!r}")


_COUNT = (lambda v: v is None or v >= 1, "a positive integer")
# Settings' ranges (netsim/experiment.py), by name: (holds, what it must be)
RANGES = {
    "batch": _COUNT,
    "eval_subset": _COUNT,
    "shards_per_node": _COUNT,
    "steps": _COUNT,
    "lr": (lambda v: v >= 0, ">= 0"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "alpha": (lambda v: v > 0, "> 0"),
    "p": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "seed": (lambda v: 0 <= v < 2**63, "in [0, 2**63)"),
    "eval_nodes": (lambda v: v >= 0, ">= 0"),
}


def check_ranges(obj, ranges: dict, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming the first attribute of obj out of its range (its type held)."""
    for name, (holds, rule) in ranges.items():
        value = getattr(obj, name)
        if not holds(value):
            raise error(f"{name} must be {rule}, got {value!r}")


def check_folder_names(names, error: type[Exception] = ValueError) -> None:
    """Experiments and runs name folders of results: text, with no path in it."""
    for name in names:
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise error(
                f"{name!r} cannot name a results folder: name experiments and runs with text"
            )


@functools.cache
def _hints(cls: type) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that names what its module cannot see: nothing to hold
        return {}


def admits(hint, value) -> bool:
    if hint is typing.Any or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(admits(arg, value) for arg in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return real and math.isfinite(value)
    if origin is not None:  # dict[...], Mapping[...], tuple[...]: the container, not its items
        origin = dict if origin is Mapping else origin
        return isinstance(value, Mapping if origin is dict else origin)
    return not isinstance(hint, type) or isinstance(value, hint)


def describe(hint) -> str:
    if hint is None or hint is type(None):
        return "None"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe(arg) for arg in typing.get_args(hint))
    if hint in _WORDS:
        return _WORDS[hint]
    origin = typing.get_origin(hint) or hint
    name = getattr(origin, "__name__", str(origin))
    return f"a {name}" if name in ("dict", "list", "tuple", "Mapping") else f"{name}(...)"


@contextlib.contextmanager
def naming(run: str):
    """netsim's own one-line errors raised inside say which run they are about (the type is
    kept, so that callers catch what they caught)."""
    try:
        yield
    except ValueError as error:
        if ours(error) and not str(error).startswith("run "):
            error.args = (f"run {run!r}: {error}",)
        raise


def ours(error: BaseException) -> bool:
    """An error class of netsim's own (or its models' and topologies'): one line about a
    value, said as it is; anything else is a fault of the code."""
    return type(error).__module__.split(".")[0] in ("netsim", "topologies", "models")
