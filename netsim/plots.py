"""``netsim.plots``: the public path of the figures and the table (netsim/results/plots.py)."""

from netsim.results.plots import plot_experiment, step_times, summary_table
from netsim.results.sweep_plot import plot as plot_sweep

__all__ = ["plot_experiment", "plot_sweep", "step_times", "summary_table"]
