"""Parameter server vs peer-to-peer: Cui (2019), "Decentralized Deep Learning with Gradient
Compression", Table I.

Four workers and an asynchronous parameter server whose NIC is limited to 300 Mbit/s, against
peer-to-peer pull averaging with no server, and a single machine as the accuracy baseline; and
what a practitioner would otherwise run, synchronous SGD with a ring all-reduce. Every
run has the same compute model (0.58 s per batch with seeded jitter), so differences in seconds
per batch come from the network alone. The study: decentralized 0.58-0.73 s per batch,
centralized 0.62-3.43 s, because every worker's traffic crosses the server's link.

The asynchronous server runs without momentum: asynchrony already acts like momentum (Mitliagkas
et al. 2016, "Asynchrony begets momentum"), and with 0.9 on top, four workers diverge. Scale up
with e.g. --set steps=3000 --set batch=64.
"""

from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import SGD, AllReduceSGD, AsyncPS, P2PPull

experiment = Experiment(
    name="ps_vs_p2p",
    data="fashion_mnist",
    model="mcmahan_cnn",
    batch=32,
    lr=0.05,
    lr_schedule="cosine",
    momentum=0.9,
    workers=4,
    topology="complete",
    network=Network(
        bandwidth="1Gbit/s", latency="0.2ms", nodes={"server": {"bandwidth": "300Mbit/s"}}
    ),
    compute=Compute(step_time="0.58s", jitter=0.02),
    steps=1200,
    eval_every=100,
    seed=0,
    runs=[
        Run("single", SGD(), workers=1),
        Run("async_ps", AsyncPS(), momentum=0.0),
        Run("p2p", P2PPull(timeout="1s")),
        Run("allreduce", AllReduceSGD()),
    ],
)
