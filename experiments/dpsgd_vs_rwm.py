"""D-PSGD vs the random-walk model, with full, partial and sub-sampled sharing: Dresevic (2022),
"Model sharing and communication techniques in decentralized systems" (EPFL SaCS, decentralizepy).

96 nodes on a 4-regular graph. The study (FEMNIST, 1.6M-parameter CNN): D-PSGD beats RWM per
round and per second, RWM wins at equal network load (77.98% vs about 46.85% at the same bytes),
sharing the 10-30% most-changed parameters can beat full sharing, and random sub-sampling is
worse than full sharing. Runs on FEMNIST (LEAF JSON, per-writer partition) when its files are
found (data_root or NETSIM_DATA); otherwise on the clearly labelled substitute: Fashion-MNIST
cut into writer-like non-iid shards (2 classes per node) with the small CNN. summary.md ends
with the equal-round, equal-time and equal-bytes cuts (also cuts.png).
Scale up with --set steps=1000 --set model=femnist_cnn.
"""

from netsim import Compute, Experiment, Network, Run, data
from netsim.algorithms import DPSGD, RWM, sharing

FEMNIST = data.available("femnist")
SHARING = {
    "full": sharing.Full(),
    "partial_0.1": sharing.Partial(alpha=0.1),
    "partial_0.3": sharing.Partial(alpha=0.3),
    "subsampling_0.5": sharing.SubSampling(0.5),
}
experiment = Experiment(
    name="dpsgd_vs_rwm",
    data="femnist" if FEMNIST else "fashion_mnist",
    partition="per_user" if FEMNIST else "shards",
    model="femnist_cnn" if FEMNIST else "small_cnn",
    batch=16,
    lr=0.05,
    workers=96,
    topology="k_regular",
    degree=4,
    steps=200,
    eval_every=20,
    network=Network(bandwidth="100Mbit/s", latency="5ms"),
    compute=Compute(step_time="50ms", jitter=0.1),
    seed=0,
    runs=[
        Run(f"{algo.__name__.lower()}_{name}", algo(share=share))
        for name, share in SHARING.items()
        for algo in (DPSGD, RWM)
    ],
    pairs=[(f"dpsgd_{name}", f"rwm_{name}") for name in SHARING],
)
