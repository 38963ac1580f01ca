"""Gossip training on Fashion-MNIST: Ghaemi, "Gossip Training for Image Classification".

Six agents run GoSGD (Blot et al. 2016) with the original time-varying weights, a constant
row-stochastic matrix, a constant doubly stochastic matrix and a periodically strongly connected
sequence of 5 matrices (period 5); with Gaussian noise of sigma 0.1 and 0.5 on every transmitted
tensor; on iid and non-iid data (2 classes per agent); against centralized training, FedAvg (iid)
and FedProx (non-iid, mu = 3, client fraction 0.1). The study: McMahan CNN, batch 128, lr 0.05,
momentum 0.9, 25 local epochs. The CPU default is smaller (SmallCNN, batch 32, about 5 local
epochs); scale up with --set model=mcmahan_cnn --set batch=128 --set steps=2000.
"""

from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import SGD, FedAvg, FedProx, GoSGD
from topologies import schedules, weights

FEDERATED = {"momentum": 0.0, "steps": None}
experiment = Experiment(
    name="gossip_fmnist",
    data="fashion_mnist",
    model="small_cnn",
    batch=32,
    lr=0.05,
    momentum=0.9,
    workers=6,
    topology="complete",
    steps=1500,
    eval_every="5s",
    seed=0,
    network=Network(bandwidth="1Gbit/s", latency="1ms"),
    compute=Compute(step_time="50ms", jitter=0.05),
    runs=[
        Run("centralized", SGD(), workers=1, batch=192),  # all six agents' samples per step
        Run("gosgd_iid", GoSGD(p=0.1)),
        Run("const_stochastic", GoSGD(p=0.1, W=weights.random_row_stochastic(6, seed=1))),
        Run("const_doubly", GoSGD(p=0.1, W=weights.random_doubly_stochastic(6, seed=1))),
        Run("periodic", GoSGD(p=0.1, W=schedules.periodic_strongly_connected(6, 5, seed=1))),
        Run("noise_0.1", GoSGD(p=0.1), network=Network(latency="1ms", noise=0.1)),
        Run("noise_0.5", GoSGD(p=0.1), network=Network(latency="1ms", noise=0.5)),
        Run("gosgd_noniid", GoSGD(p=0.1), partition="shards"),
        Run("fedavg_iid", FedAvg(rounds=10, C=0.5, E=1), **FEDERATED),
        Run(
            "fedprox_noniid",
            FedProx(mu=3.0, rounds=20, C=0.1, E=1),
            partition="shards",
            **FEDERATED,
        ),
    ],
)
