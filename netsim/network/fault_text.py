"""Faults written as text, as ``--set faults=...`` gives them: a fault, a list of them, or
``none`` / ``[]``. The text is parsed with ``ast`` and only the fault classes of
netsim/network/faults.py are built, by name, from literal arguments; it is never evaluated.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import MISSING, fields

from netsim.network.faults import KINDS, FaultError

_USE = ", ".join(kind.__name__ for kind in KINDS[:-1]) + f" or {KINDS[-1].__name__}"


def parse_faults(text: str, error: type[Exception] = FaultError) -> list:
    """Faults from text: ``Crash(1, at="2s")`` (a list of one), ``[Crash(1, at="2s"),
    LossBurst(0.5, at="2s", until="6s")]``, or ``none`` / ``None`` / ``[]`` (no faults).

    Only calls of the fault classes, by name, with literal arguments: numbers, text, None,
    and lists or tuples of numbers or of lists of numbers (Partition's groups). Anything else
    raises ``error`` in one line starting "faults: "; the values themselves are checked as
    any fault's are (``plan``)."""
    if text.strip().lower() == "none":
        return []
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise error(
            f"faults: cannot read {_clip(text)!r}: write a fault such as Crash(1, at='2s'), "
            "a list [...] of them, or none"
        ) from None
    if isinstance(tree, ast.Constant) and tree.value is None:
        return []
    calls = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    return [_fault(call, text, error) for call in calls]


def _fault(node: ast.expr, text: str, error: type[Exception]):
    shown = _clip(ast.get_source_segment(text, node) or ast.unparse(node))
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise error(f"faults: {shown} is not a fault such as Crash(1, at='2s'); use {_USE}")
    kind = {kind.__name__: kind for kind in KINDS}.get(node.func.id)
    if kind is None:
        raise error(f"faults: unknown fault {node.func.id!r}; use {_USE}")
    args = [_literal(arg, shown, text, error) for arg in node.args]
    kwargs = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise error(f"faults: {shown}: name each argument (name=value), no **")
        kwargs[keyword.arg] = _literal(keyword.value, shown, text, error)
    takes = ", ".join(
        f.name if f.default is MISSING else f"{f.name}={f.default!r}" for f in fields(kind)
    )
    unknown = [name for name in kwargs if name not in {f.name for f in fields(kind)}]
    try:
        if unknown:
            raise TypeError(f"no argument {unknown[0]!r}")
        inspect.signature(kind).bind(*args, **kwargs)
    except TypeError as problem:
        raise error(f"faults: {shown}: {problem}; {kind.__name__} takes {takes}") from None
    return kind(*args, **kwargs)


def _literal(node: ast.expr, shown: str, text: str, error: type[Exception], depth: int = 0):
    """A number, text or None; a list or tuple of numbers or of lists of numbers."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = getattr(node.operand, "value", None)  # -1, -0.5: a sign and a number
        if isinstance(node.operand, ast.Constant) and _number(value):
            return -value if isinstance(node.op, ast.USub) else value
    elif isinstance(node, ast.Constant):
        value = node.value
        if _number(value) or (depth == 0 and (value is None or isinstance(value, str))):
            return value
    elif isinstance(node, (ast.List, ast.Tuple)) and depth < 2:
        items = [_literal(item, shown, text, error, depth + 1) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    what = _clip(ast.get_source_segment(text, node) or ast.unparse(node))
    raise error(
        f"faults: {shown}: {what} is not a literal; arguments are numbers, text such as '2s', "
        "None, or lists of node ids"
    )


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clip(text: str, most: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 3] + "..."
