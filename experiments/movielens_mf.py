"""D-PSGD vs RWM on ratings with matrix factorization: Dresevic (2022), MovieLens latest-small.

Matrix factorization (embedding 20 with user and item biases) trained on each node's users'
ratings (70:30 per-user split), evaluated as the study does: every node's own model on its
users' test ratings, reported as RMSE (the "global" row combines the nodes). Runs on a seeded
synthetic low-rank ratings set by default (clearly labelled synthetic_movielens), and on
MovieLens with --set data=movielens --set data_root=/path/to/ratings.csv. The study: 96 nodes
on a 4-regular graph; the CPU default uses 24 nodes.
"""

from netsim import Compute, Experiment, Network, Run
from netsim.algorithms import DPSGD, RWM

experiment = Experiment(
    name="movielens_mf",
    data="synthetic_movielens",
    partition="per_user",
    eval_local=True,
    model="mf",
    batch=16,
    lr=0.1,
    workers=24,
    topology="k_regular",
    degree=4,
    steps=300,
    eval_every=25,
    network=Network(bandwidth="100Mbit/s", latency="5ms"),
    compute=Compute(step_time="10ms", jitter=0.1),
    seed=0,
    runs=[Run("dpsgd", DPSGD()), Run("rwm", RWM())],
    pairs=[("dpsgd", "rwm")],
)
