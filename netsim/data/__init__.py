"""Data: data sets as in-memory tensors and who trains on which samples.

- sets.py: ``load`` a data set by name (real files or a labelled synthetic stand-in), ``decode``;
- files.py: finding and parsing Fashion-MNIST, CIFAR-10 and MovieLens files;
- leaf.py: LEAF's FEMNIST and CelebA;
- partition.py: iid, Dirichlet, shards and per-user partitions, and each node's batch walker;
- synthetic.py: labelled substitutes with the real sets' shapes.

May import: numpy, torch. Never imports the network, the engine, results, SimPy or an algorithm.
"""

from netsim.data.files import FMNIST_DEFAULT_DIR, DataError
from netsim.data.partition import LocalData, partition, partition_users
from netsim.data.sets import Dataset, available, decode, load

__all__ = [
    "FMNIST_DEFAULT_DIR",
    "DataError",
    "Dataset",
    "LocalData",
    "available",
    "decode",
    "load",
    "partition",
    "partition_users",
]
