"""Communication topologies: graph builders, mixing matrices, and time-varying schedules."""

from topologies import graphs, schedules, weights

__all__ = ["graphs", "schedules", "weights"]
