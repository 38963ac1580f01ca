"""The network: what it is (the ``Network`` spec) and how bytes move through it.

- spec.py: ``Network``, per-node and per-edge settings, parsed from human units;
- message.py: the msgpack wire format and a message's exact size in bytes; unpack.py:
  reading it back with one copy of each tensor's data (the real runtime's receivers);
- noise.py: the Gaussian noise a noisy edge adds to a payload;
- fabric.py: messages on the simulated clock (latency, uplink, edge, downlink, loss, noise);
- maxmin.py: max-min fair sharing of links among concurrent flows (weighted, under
  ``unfairness`` and ``ramp``; a flow that carries a connection's messages one after another,
  under ``connections="pair"``);
- counters.py: bytes sent and received per node;
- faults.py: crashes, cut links, partitions, slow intervals, loss bursts and churn, declared
  and checked (``faults=[...]``); outages.py: them on the clock, asked by the fabric for
  every message and telling the simulation when nodes go offline and come back.

May import: numpy, torch, msgpack, simpy, ``netsim.units``, ``netsim.checks``. Never imports an
algorithm, the engine, data, results or the simulation: the network knows bytes, not learning.
"""

from netsim.network.spec import Edge, Network, NetworkError

__all__ = ["Edge", "Network", "NetworkError"]
