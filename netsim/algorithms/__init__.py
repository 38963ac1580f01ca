"""Algorithms: each a frozen dataclass of hyper-parameters with one ``async def`` per role.

hooks.py is what the kernel asks of an algorithm besides its roles (layout, global model, ...)
and the defaults for what it does not define; ops.py, sharing.py and collectives.py (all-reduce
schedules) hold the shared maths.
"""

from netsim.algorithms.adpsgd import ADPSGD
from netsim.algorithms.allreduce import AllReduceSGD
from netsim.algorithms.dpsgd import DPSGD
from netsim.algorithms.fedavg import FedAvg, FedProx
from netsim.algorithms.gosgd import GoSGD
from netsim.algorithms.p2p import P2PPull
from netsim.algorithms.parameter_server import AsyncPS, SyncPS
from netsim.algorithms.rwm import RWM
from netsim.algorithms.sgd import SGD
from netsim.algorithms.sgp import SGP

__all__ = [
    "SGD",
    "SyncPS",
    "AllReduceSGD",
    "AsyncPS",
    "P2PPull",
    "GoSGD",
    "SGP",
    "FedAvg",
    "FedProx",
    "DPSGD",
    "ADPSGD",
    "RWM",
]
