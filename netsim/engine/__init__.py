"""The engine: how the steps in flight and the evaluations are computed.

- population.py: every node's parameters as rows of one tensor, modules as views into it;
- execution.py: the pending steps and the modes that compute them (loop, stacked, grouped,
  vmap); stacked.py and grouped.py are the batched kernels;
- calibration.py: choosing a mode, by rule (``execution="auto"``) or by timing ("calibrate");
- evaluation.py: models evaluated on test data, many at once;
- compute.py: the ``Compute`` model, how long a step takes on the simulated clock.

May import: torch, numpy, ``netsim.data`` (decoding batches), ``netsim.units``,
``netsim.checks`` (settings held to their types), ``netsim.interrupts`` (a Ctrl-C waits for
the steps being computed). Never imports
SimPy, the network, an algorithm or the simulation: the engine computes, the clock decides when.
"""
