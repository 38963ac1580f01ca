"""``netsim.plots``: the public path of the figures and the table (netsim/results/plots.py)."""

from netsim.results.plots import plot_experiment, step_times, summary_table

__all__ = ["plot_experiment", "step_times", "summary_table"]
