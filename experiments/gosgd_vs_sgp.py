"""GoSGD against SGP on CIFAR-10: Mirzaei, "Distributed Optimization and Learning".

Eight workers, each sampling the whole training set: GoSGD (p = 1) with its time-varying weights,
with a fixed doubly stochastic matrix (all 1/M) and a fixed random row-stochastic matrix, GoSGD
over noisy links (sigma 0.05 on every transmitted tensor), and SGP (Assran et al. 2019: push-sum
on the one-peer exponential graph), which the study found to match centralized training. Then
the data is distributed: GoSGD against FedAvg (E = 5, C = 0.1, B = 50). The study: seed CNN,
lr 0.01, weight decay 1e-4, batch 128, 1500 iterations, K = 100 clients for FedAvg.

Runs on CIFAR-10 when its python batches are found (data_root or NETSIM_DATA), else on the
clearly labelled substitute synthetic_cifar10. The CPU default is small; scale up with
--set steps=1500 --set batch=128 --set fedavg.workers=100 --set gosgd_distributed.workers=100.
"""

from netsim import Compute, Experiment, Network, Run, data
from netsim.algorithms import SGD, SGP, FedAvg, GoSGD
from topologies import weights

DISTRIBUTED = {"partition": "iid", "workers": 20}
experiment = Experiment(
    name="gosgd_vs_sgp",
    data="cifar10" if data.available("cifar10") else "synthetic_cifar10",
    model="cifar_cnn",
    batch=16,
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    workers=8,
    topology="complete",
    partition="data_parallel",
    steps=100,
    eval_every="2s",
    network=Network(bandwidth="1Gbit/s", latency="1ms"),
    compute=Compute(step_time="100ms", jitter=0.05),
    seed=0,
    runs=[
        Run("centralized", SGD(), workers=1, batch=128),  # 8 x 16: the combined batch
        Run("gosgd", GoSGD(p=1.0)),
        Run("gosgd_doubly", GoSGD(p=1.0, W=weights.uniform_doubly_stochastic(8))),
        Run("gosgd_row", GoSGD(p=1.0, W=weights.random_row_stochastic(8, seed=1))),
        Run("gosgd_noisy", GoSGD(p=1.0), network=Network(latency="1ms", noise=0.05)),
        Run("sgp", SGP()),
        Run("gosgd_distributed", GoSGD(p=1.0), steps=50, **DISTRIBUTED),
        Run("fedavg", FedAvg(rounds=20, C=0.1, E=5), batch=50, steps=None, **DISTRIBUTED),
    ],
)
