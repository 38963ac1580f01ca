"""Decentralized training under churn and a partition (issue 14's faults): D-PSGD, RWM, GoSGD
and P2P pull averaging, each with no churn, 10% and 30% churn, and a partition that heals,
beside the baseline practitioners run: synchronous SGD with an elastic ring all-reduce.

Eight workers on a 4-regular graph, logistic regression on Fashion-MNIST (iid), for 30
simulated seconds. Churn: every worker alternates online sessions of 5 s on average with
offline periods drawn so that it is offline 10% (30%) of the time, parameters kept while
away (netsim.faults.Churn). The partition cuts the workers into {0..3} and {4..7} from 10 s
to 20 s. Every algorithm that waits does so for at
most 0.5 s (D-PSGD's round, RWM's walk, P2P's reply, a message of the all-reduce, after
which its group re-forms without the missing worker); GoSGD never waits. The accuracy
figure against simulated time shades each run's offline periods, the timeline each node's.
Scale up with --set until=120s --set workers=32 --set model=small_cnn.
"""

from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import DPSGD, RWM, AllReduceSGD, GoSGD, P2PPull
from netsim.faults import Churn, Partition

ALGORITHMS = {
    "dpsgd": DPSGD(timeout="0.5s"),
    "rwm": RWM(timeout="0.5s"),
    "gosgd": GoSGD(p=0.5),
    "p2p": P2PPull(timeout="0.5s"),
    "allreduce": AllReduceSGD(timeout="0.5s"),
}
FAULTS = {
    "none": [],
    "churn10": [Churn(fraction=0.1, session="5s")],
    "churn30": [Churn(fraction=0.3, session="5s")],
    "partition": [Partition([[0, 1, 2, 3]], at="10s", until="20s")],
}
experiment = Experiment(
    name="churn",
    data="fashion_mnist",
    model="logistic",
    batch=32,
    lr=0.05,
    workers=8,
    topology="k_regular",
    degree=4,
    until="30s",
    eval_every="2s",
    network=Network(bandwidth="100Mbit/s", latency="5ms"),
    compute=Compute(step_time="0.1s", jitter=0.05),
    seed=0,
    runs=[
        Run(f"{name}_{fault}", algorithm, faults=faults)
        for name, algorithm in ALGORITHMS.items()
        for fault, faults in FAULTS.items()
    ],
)
