"""Progressive filling: max-min fair rates of flows through shared links, in numpy.

The arithmetic behind maxmin.py, which keeps the flows on the SimPy clock: max_min() finds the
rates of a group of flows (weighted, and with a coefficient per row of link ids where a flow
takes a multiple of its rate on some links), connected() labels the groups.
"""

import numpy as np

NO_LINK = 0  # the link id of a missing link (a flow without an edge capacity); infinite


def max_min(
    links: np.ndarray,
    capacity: np.ndarray,
    weight: np.ndarray | None = None,
    coefficient: np.ndarray | None = None,
):
    """Max-min fair rates of flows through links of these capacities: links[:, i] are the
    link ids of flow i (a column, so that per-flow minima run over contiguous rows). With
    weights, weighted max-min: what rises is a link's spare capacity per unit of the weight of
    its unfrozen flows, and a flow gets its weight times that at its tightest link. With a
    coefficient per row, a flow of rate r takes coefficient[k] r of its link in row k, and a
    link's level is its spare capacity per unit of its unfrozen flows' weight times that."""
    if links.shape[1] == 1:  # often so, and worth a shortcut: its tightest link
        if coefficient is None:
            return capacity[links[:, 0]].min(keepdims=True)
        return (capacity[links[:, 0]] / coefficient).min(keepdims=True)

    def per_link(columns: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """Flows (or the values given) added up per link, over these columns of link ids,
        each row's scaled by its coefficient."""
        if coefficient is not None:
            values = np.ones(columns.shape[1]) if values is None else values
            values = np.outer(coefficient, values).ravel()
        elif values is not None:
            values = np.tile(values, len(columns))
        return np.bincount(columns.ravel(), values, minlength=len(capacity))

    total = per_link(links, weight)  # unfrozen flows (or their weight) on each link
    spare = capacity
    rate = todo = None  # made only when a first round does not freeze every flow
    while True:
        level = spare[links] / total[links]
        tightest = level.min(axis=0)
        # A link is a bottleneck unless one of its flows has a tighter link elsewhere.
        loose = np.zeros(len(capacity), dtype=bool)
        loose[links[level > tightest]] = True
        frozen = ~loose[links].all(axis=0)
        got = tightest if weight is None else weight * tightest
        if frozen.all():
            if rate is None:
                return got
            rate[todo] = got
            return rate
        if rate is None:
            rate, todo, spare = np.empty(links.shape[1]), np.arange(links.shape[1]), spare.copy()
        rate[todo[frozen]] = got[frozen]
        gone = links.compress(frozen, axis=1)
        spare -= per_link(gone, got[frozen])
        total -= per_link(gone, None if weight is None else weight[frozen])
        todo, links = todo[~frozen], links.compress(~frozen, axis=1)
        weight = None if weight is None else weight[~frozen]


def connected(links: np.ndarray, n_links: int) -> np.ndarray:
    """Label each flow (column of link ids) with the smallest flow connected to it by links."""
    label = np.arange(links.shape[1])
    while True:
        smallest = np.full(n_links, links.shape[1])
        np.minimum.at(smallest, links.ravel(), np.tile(label, len(links)))
        smallest[NO_LINK] = links.shape[1]  # a missing link connects nothing
        new = smallest[links].min(axis=0)
        if np.array_equal(new, label):
            return label
        label = new
