"""Communication topologies: graph builders and the mixing matrices defined on them."""

from topologies import graphs, weights

__all__ = ["graphs", "weights"]
