"""The public path netsim.faults: the faults an experiment declares (netsim/network/faults.py)."""

from netsim.network.faults import Churn, Crash, LinkDown, LossBurst, Partition, Slow

__all__ = ["Churn", "Crash", "LinkDown", "LossBurst", "Partition", "Slow"]
