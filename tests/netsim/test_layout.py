"""The layout holds: no import circles, each part imports only what its __init__ allows."""

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("netsim", "models", "topologies")

# every algorithm (what the kernel asks of one goes through netsim.algorithms.hooks)
ALGORITHMS = tuple(
    f"netsim.algorithms.{p.stem}"
    for p in (ROOT / "netsim" / "algorithms").glob("*.py")
    if p.stem not in ("__init__", "hooks", "ops", "sharing")
)

# part -> prefixes it must never import (the rules each subpackage's docstring states)
FORBIDDEN = {
    "netsim.sim": ALGORITHMS,
    "netsim.node": ALGORITHMS,
    "netsim.runtime": ALGORITHMS,
    "netsim.network": (
        "netsim.algorithms",
        "netsim.engine",
        "netsim.data",
        "netsim.results",
        "netsim.sim",
        "netsim.node",
        "netsim.runtime",
        "netsim.real",
    ),
    "netsim.engine": (
        "netsim.algorithms",
        "netsim.network",
        "netsim.results",
        "netsim.sim",
        "netsim.node",
        "netsim.runtime",
        "netsim.real",
        "simpy",
    ),
    "netsim.data": (
        "netsim.algorithms",
        "netsim.network",
        "netsim.engine",
        "netsim.results",
        "netsim.sim",
        "netsim.node",
        "netsim.runtime",
        "netsim.real",
        "simpy",
    ),
    "netsim.results": (
        "netsim.algorithms",
        "netsim.engine",
        "netsim.sim",
        "netsim.node",
        "netsim.runtime",
        "netsim.real",
        "simpy",
        "torch",
    ),
    "netsim.algorithms": (
        "netsim.sim",
        "netsim.node",
        "netsim.runtime",
        "netsim.real",
        "netsim.network",
        "netsim.engine",
        "simpy",
        "asyncio",
    ),
    "netsim.real": (
        "netsim.sim",
        "netsim.node",
        "netsim.runtime",
        "netsim.network.fabric",
        "simpy",
        *ALGORITHMS,
    ),
    "models": ("netsim",),
    "topologies": ("netsim",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module this file imports, at any depth (lazy imports count as circles too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
    return out


def _graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for imported in _imports(path, modules):
            graph.add_edge(name, imported)
    return graph


def test_no_import_circles():
    graph = _graph()
    ours = graph.subgraph([n for n in graph if n.split(".")[0] in PACKAGES])
    # a package's __init__ re-exporting its own modules is not a circle between modules
    edges = [(a, b) for a, b in ours.edges if not b.startswith(a + ".") or a not in _packages()]
    cycles = list(nx.simple_cycles(nx.DiGraph(edges)))
    assert cycles == []


def _packages() -> set[str]:
    return {_module_name(p) for p in ROOT.glob("**/__init__.py") if ".venv" not in p.parts}


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_parts_import_only_what_they_may(part):
    graph = _graph()
    bad = [
        (module, imported)
        for module in graph
        if module == part or module.startswith(part + ".")
        for imported in graph.successors(module)
        if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN[part])
    ]
    assert bad == []


def test_modules_stay_under_300_lines():
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert long == {}
