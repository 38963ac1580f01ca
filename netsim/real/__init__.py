"""The real runtime: the same algorithm roles on asyncio, one OS process per node, real TCP.

- frames.py: length-prefixed frames on asyncio streams; control messages between processes;
- transport.py: a node's peer links: lazy connections, sender-side latency, loss and noise;
- node.py: ``RealNode``, the node verbs on real time (identical surface to netsim/node.py);
- process.py: one node process: builds its share of the workload, runs its roles, reports;
- coordinator.py: starts the node processes, the barrier and t0, collects rows into the
  same results folder as a simulation, evaluates, stops and cleans up;
- hosts.py: hosts files and the per-host agent (``python -m netsim worker``).

May import: ``netsim.network`` (the wire format, ``Network``), ``netsim.engine``,
``netsim.data``, ``netsim.results`` (the recorder), ``netsim.workload``, ``netsim.units``.
Never imports SimPy, the simulated kernel (``sim``, ``node``, ``runtime``) or an algorithm:
the roles arrive as the run's algorithm object, as in simulation.
"""
