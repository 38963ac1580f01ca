"""netsim: a discrete-event network emulator for decentralized deep learning.

Real PyTorch training runs on every simulated node; a SimPy clock decides when each step ends and
when each message arrives. See README.md for the two commands and DESIGN.md for the architecture.
"""

from netsim.engine.compute import Compute
from netsim.experiment import Experiment, Run, Settings
from netsim.network import Network
from netsim.runner import run
from netsim.sweeps import sweep

__all__ = ["Compute", "Experiment", "Network", "Run", "Settings", "run", "sweep"]
