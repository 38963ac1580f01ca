"""Checking topologies: one-line errors for user graphs and arguments, and relabelling any
graph to nodes 0..n-1 with ascending adjacency lists (what graphs.py promises)."""

import numbers

import networkx as nx


class TopologyError(ValueError):
    pass


def check(graph, *, require_connected: bool = False) -> nx.Graph:
    """Validate a user-supplied topology; return it relabeled 0..n-1 in sorted label order.

    With `require_connected`, an undirected graph must be connected and a DiGraph strongly
    connected (every node's updates must be able to reach every other node).
    """
    if not isinstance(graph, nx.Graph):
        raise TopologyError(
            f"topology must be a networkx Graph or DiGraph, got "
            f"{type(graph).__name__}; e.g. use topologies.graphs.ring(n)"
        )
    if graph.is_multigraph():
        raise TopologyError(
            f"topology is a {type(graph).__name__}; parallel edges are not "
            f"supported, convert it with nx.Graph(G) or nx.DiGraph(G)"
        )
    n = graph.number_of_nodes()
    if n < 1:
        raise TopologyError("topology has no nodes; add at least one node")
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise TopologyError(
            f"topology has {len(loops)} self-loop(s), e.g. at node "
            f"{loops[0][0]!r}; remove them with "
            f"G.remove_edges_from(nx.selfloop_edges(G))"
        )
    try:
        labels = sorted(graph)
    except TypeError as error:
        raise TopologyError(
            f"topology node labels cannot be sorted ({error}); "
            f"use labels of one type, e.g. integers"
        ) from None
    if require_connected:
        if graph.is_directed():
            parts, kind = nx.number_strongly_connected_components(graph), "strongly connected"
        else:
            parts, kind = nx.number_connected_components(graph), "connected"
        if parts > 1:
            raise TopologyError(
                f"topology is not {kind}: it has {parts} components; "
                f"add edges or use topologies.graphs.ring({n})"
            )
    return _canonical(graph, labels)


def _canonical(graph, labels=None):
    """Copy of `graph` with node labels[i] (default: sorted labels) renamed i, in order."""
    labels = sorted(graph) if labels is None else labels
    index = {u: i for i, u in enumerate(labels)}
    H = graph.__class__()
    H.graph.update(graph.graph)
    H.add_nodes_from((index[u], graph.nodes[u]) for u in labels)
    edges = ((index[u], index[v], data) for u, v, data in graph.edges(data=True))
    if not graph.is_directed():
        edges = ((min(i, j), max(i, j), data) for i, j, data in edges)
    # Sorted insertion makes every adjacency list ascending, whatever order edges came in.
    H.add_edges_from(sorted(edges, key=lambda e: e[:2]))
    return H


def _require_int(value, minimum, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise TopologyError(f"{what} must be an integer >= {minimum}, got {value!r}")
