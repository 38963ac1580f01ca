"""Results: the recorder that writes a run's folder, reading folders back, plots, comparisons.

- recorder.py: steps.csv, messages.csv, evals.csv, records.csv, config.json and summary.json,
  flushed as the run goes;
- read.py: a results folder back as arrays (used by plots and compare), a run's seed=<s>/
  folders too;
- aggregate.py: means over seeds with 95% confidence intervals, and mean curves with bands;
- plots.py: the experiment's figures and its summary table (``netsim.plots`` re-exports it);
- timeline.py: the timeline figure (compute and transfers per node over a window of time);
- compare.py: cuts at equal rounds, time and bytes between pairs of runs.

May import: numpy, matplotlib, ``netsim.network.message`` (a message's fields). Never imports
torch models, SimPy, the engine or an algorithm: results are files, readable without a run.
"""
