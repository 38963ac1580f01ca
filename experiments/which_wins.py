"""Which wins on which network: parameter server, all-reduce, peer-to-peer pull, GoSGD and
AD-PSGD at 1 Gbit/s, 100 Mbit/s and 10 Mbit/s (docs/results.md reads the crossovers off the
accuracy-against-time curves).

ps_vs_p2p's setup (Cui 2019: four workers, Fashion-MNIST, the McMahan CNN, 6.65 MB per model
or gradient, 0.58 s per batch) on a budget of simulated time: the most accurate after 120 s
wins. Every NIC, the server's too, runs at the run's bandwidth. The asynchronous server has no
momentum, as in ps_vs_p2p; GoSGD pushes with p = 0.1, as in gossip_fmnist. Scale up with e.g.
--set until=600s.
"""

from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import ADPSGD, AllReduceSGD, AsyncPS, GoSGD, P2PPull

G1 = Network(bandwidth="1Gbit/s", latency="0.2ms")
M100 = Network(bandwidth="100Mbit/s", latency="0.2ms")
M10 = Network(bandwidth="10Mbit/s", latency="0.2ms")
experiment = Experiment(
    name="which_wins",
    data="fashion_mnist",
    model="mcmahan_cnn",
    batch=32,
    lr=0.05,
    momentum=0.9,
    workers=4,
    compute=Compute(step_time="0.58s", jitter=0.02),
    until="120s",
    eval_every="10s",
    runs=[
        Run("ps_1g", AsyncPS(), momentum=0.0, network=G1),
        Run("allreduce_1g", AllReduceSGD(), network=G1),
        Run("p2p_1g", P2PPull(), network=G1),
        Run("gosgd_1g", GoSGD(p=0.1), network=G1),
        Run("adpsgd_1g", ADPSGD(), network=G1),
        Run("ps_100m", AsyncPS(), momentum=0.0, network=M100),
        Run("allreduce_100m", AllReduceSGD(), network=M100),
        Run("p2p_100m", P2PPull(), network=M100),
        Run("gosgd_100m", GoSGD(p=0.1), network=M100),
        Run("adpsgd_100m", ADPSGD(), network=M100),
        Run("ps_10m", AsyncPS(), momentum=0.0, network=M10),
        Run("allreduce_10m", AllReduceSGD(), network=M10),
        Run("p2p_10m", P2PPull(), network=M10),
        Run("gosgd_10m", GoSGD(p=0.1), network=M10),
        Run("adpsgd_10m", ADPSGD(), network=M10),
    ],
)
