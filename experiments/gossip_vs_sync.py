"""Gossip vs synchronous vs single thread: Blot, Picard, Cord, Thome, GoSGD (arXiv 1611.09726),
the slides' comparison of GoSGD with synchronous SGD and a single thread on CIFAR-10.

M = 8 workers, batch 20, lr 0.01, each sampling the whole training set, and a CNN of about
the study's size (models/cifar_cnn.py: 293,834 parameters, 1.18 MB per message, against the
study's 286k): GoSGD at exchange probabilities p = 0.01, 0.1 and 1 against synchronous SGD
whose gradients are averaged by a ring all-reduce, and a single thread, on a 1 Gbit/s and a
100 Mbit/s network. 30 ms of compute per batch; the figures plot accuracy against simulated
time and against steps. Momentum 0.9, which the slides do not state, lets the CPU-scale run
learn enough to compare.

Runs on CIFAR-10 when its python batches are found (data_root or NETSIM_DATA), else on the
clearly labelled substitute synthetic_cifar10. Scale up with e.g. --set steps=1000.
"""

from netsim import Compute, Experiment, Network, Run, data
from netsim.algorithms import SGD, AllReduceSGD, GoSGD

SLOW = Network(bandwidth="100Mbit/s", latency="0.1ms")
experiment = Experiment(
    name="gossip_vs_sync",
    data="cifar10" if data.available("cifar10") else "synthetic_cifar10",
    model="cifar_cnn",
    batch=20,
    lr=0.01,
    momentum=0.9,
    workers=8,
    topology="complete",
    partition="data_parallel",
    steps=60,
    eval_every=10,
    network=Network(bandwidth="1Gbit/s", latency="0.1ms"),
    compute=Compute(step_time="30ms", jitter=0.05),
    seed=0,
    runs=[
        Run("single", SGD(), workers=1),
        Run("allreduce_1g", AllReduceSGD()),
        Run("gosgd_p0.01_1g", GoSGD(p=0.01)),
        Run("gosgd_p0.1_1g", GoSGD(p=0.1)),
        Run("gosgd_p1_1g", GoSGD(p=1.0)),
        Run("allreduce_100m", AllReduceSGD(), network=SLOW),
        Run("gosgd_p0.01_100m", GoSGD(p=0.01), network=SLOW),
        Run("gosgd_p0.1_100m", GoSGD(p=0.1), network=SLOW),
        Run("gosgd_p1_100m", GoSGD(p=1.0), network=SLOW),
    ],
)
