"""What the training benchmarks share: the plain per-node loop netsim is measured against, a
netsim run of the same D-PSGD steps, and running a case in a fresh process to read its peak
memory.

The plain loop trains the way real-process emulators (decentralizepy) and round-based simulators
do: every node has its own nn.Module and torch.optim.SGD; a round is `local_steps` SGD steps on
each node in turn, then each node's model is copied (what a node puts on the wire) and every
node averages its own and its neighbours' copies with Metropolis-Hastings weights, tensor by
tensor as decentralizepy averages state_dicts. It evaluates the average model on the same
schedule as netsim's default (every `eval_every` steps on the 1,000-sample test subset, then
the full test set). Both sides draw batches by indexing the same in-memory tensors.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from netsim import Compute, Experiment, Network, Run, data, run  # noqa: E402
from netsim.algorithms import DPSGD, GoSGD  # noqa: E402
from topologies import graphs, weights  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One D-PSGD training workload."""

    name: str
    model: str
    nodes: int
    batch: int
    rounds: int
    local_steps: int = 1
    topology: str = "k_regular"
    degree: int = 4
    lr: float = 0.05
    eval_every: int = 50
    data: str = "fashion_mnist"
    algorithm: str = "dpsgd"  # or "gosgd" (p = 0.1), netsim only
    jitter: float = 0.0  # compute-time noise: unequal steps, as on real machines

    @property
    def steps(self) -> int:
        return self.rounds * self.local_steps

    def graph(self):
        extra = {"k": self.degree} if self.topology == "k_regular" else {}
        return graphs.build(self.topology, self.nodes, **extra)


ALGORITHMS = {
    "dpsgd": lambda case: DPSGD(local_steps=case.local_steps),
    "gosgd": lambda case: GoSGD(p=0.1),
}


def netsim_run(case: Case, out: Path, execution: str = "auto", device: str = "cpu") -> dict:
    """The case through netsim (python API, no plots, no progress bar); returns the summary
    with `wall_time_s` from the call to its return (set-up included)."""
    experiment = Experiment(
        name=case.name,
        data=case.data,
        model=case.model,
        batch=case.batch,
        lr=case.lr,
        workers=case.nodes,
        topology=case.topology,
        degree=case.degree,
        steps=case.steps,
        eval_every=case.eval_every,
        network=Network(bandwidth="1Gbit/s", latency="1ms"),
        compute=Compute(step_time="10ms", jitter=case.jitter),
        device=device,
        execution=execution,
        seed=0,
        runs=[Run("run", ALGORITHMS[case.algorithm](case))],
    )
    started = time.perf_counter()
    summary = run(experiment, out=out, progress=False, plot=False)["run"]
    return summary | {"wall_time_s": time.perf_counter() - started}


def plain_loop(case: Case, device: str = "cpu") -> dict:
    """The same D-PSGD steps as a plain per-node PyTorch loop (see the module docstring)."""
    device = torch.device(device)
    ds = data.load(case.data)  # cached per process: load it before timing either side
    started = time.perf_counter()
    x_train, y_train = ds.x_train.to(device), ds.y_train.to(device)
    x_test, y_test = ds.x_test.to(device), ds.y_test.to(device)
    torch.manual_seed(0)
    c, h, _ = ds.input_shape
    shape = {"num_classes": ds.num_classes}
    shape |= (
        {"in_features": c * h * h}
        if case.model in ("logistic", "mlp", "mlp1")
        else {"in_channels": c, "image_size": h}
    )
    template = models.build(case.model, **shape).to(device)
    nets = [copy.deepcopy(template) for _ in range(case.nodes)]
    optimizers = [torch.optim.SGD(net.parameters(), lr=case.lr) for net in nets]
    rng = np.random.default_rng(0)
    parts = np.array_split(rng.permutation(len(y_train)), case.nodes)
    cursor = [0] * case.nodes
    graph = case.graph()
    W = weights.metropolis_hastings(graph)
    mixing = [[(j, float(W[i, j])) for j in [i, *graph.neighbors(i)]] for i in range(case.nodes)]
    subset = torch.from_numpy(np.random.default_rng(0).permutation(len(y_test))[:1000]).to(device)
    evaluator = copy.deepcopy(template)

    def evaluate(idx=None):
        with torch.no_grad():
            for name, p in evaluator.named_parameters():
                p.copy_(torch.stack([dict(n.named_parameters())[name] for n in nets]).mean(0))
        evaluator.eval()
        with torch.inference_mode():
            xs, ys = (x_test, y_test) if idx is None else (x_test[idx], y_test[idx])
            correct = sum(
                int((evaluator(xs[s : s + 2000]).argmax(1) == ys[s : s + 2000]).sum())
                for s in range(0, len(ys), 2000)
            )
        return correct / len(ys)

    losses, steps = [], 0
    evaluate(subset)
    for _ in range(case.rounds):
        for i, (net, optimizer) in enumerate(zip(nets, optimizers, strict=True)):
            for _ in range(case.local_steps):
                if cursor[i] + case.batch > len(parts[i]):
                    cursor[i] = 0
                idx = torch.from_numpy(parts[i][cursor[i] : cursor[i] + case.batch]).to(device)
                cursor[i] += case.batch
                optimizer.zero_grad()
                loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        sent = [{k: v.detach().clone() for k, v in net.state_dict().items()} for net in nets]
        with torch.no_grad():
            for i, net in enumerate(nets):
                for name, tensor in net.state_dict().items():
                    tensor.copy_(sum(w * sent[j][name] for j, w in mixing[i]))
        before, steps = steps, steps + case.local_steps
        if steps // case.eval_every > before // case.eval_every:
            evaluate(subset)
    accuracy = evaluate()
    return {"wall_time_s": time.perf_counter() - started, "final_accuracy": accuracy}


def in_fresh_process(args: list[str]) -> dict:
    """Runs `python benchmarks/harness.py ARGS` and returns its JSON result, with the wall time
    from process start to exit (imports and data loading included) and its peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    out, _ = proc.communicate()
    total = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"benchmark child {args} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    return result | {"process_s": total}


def _child(argv: list[str]) -> None:
    """In a fresh process: run one side of one case and print its figures as JSON."""
    import resource
    import tempfile

    side, spec = argv[0], json.loads(argv[1])
    case = Case(**spec["case"])
    data.load(case.data)
    if side == "plain":  # netsim never creates a torch.optim optimizer, so never pays this
        _warm_up()
    with tempfile.TemporaryDirectory() as out:
        if side == "netsim":
            summary = netsim_run(case, Path(out), spec.get("execution", "auto"), spec["device"])
            keep = ("wall_time_s", "final_accuracy", "mb_sent_per_worker", "messages", "bytes_sent")
            result = {key: summary[key] for key in keep} | {
                "execution": summary["execution"]["mode"],
                "steps_per_flush": summary["execution"]["steps_per_flush"],
            }
        else:
            result = plain_loop(case, spec["device"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(json.dumps(result | {"peak_rss_mb": peak}))


def _warm_up() -> None:
    """The first torch.optim optimizer imports torch._dynamo (1.3 s and 180 MB here) and the
    first backward pass initialises autograd: the plain loop pays that before its clock."""
    layer = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    F.cross_entropy(layer(torch.randn(3, 4)), torch.tensor([0, 1, 0])).backward()
    optimizer.step()


def fresh(side: str, case: Case, device: str = "cpu", execution: str = "auto") -> dict:
    spec = {"case": asdict(case), "device": device, "execution": execution}
    return in_fresh_process([side, json.dumps(spec)])


def machine() -> str:
    threads = torch.get_num_threads()
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    return (
        f"{os.cpu_count()} CPUs, torch {torch.__version__} with {threads} threads, "
        f"Python {sys.version.split()[0]}, {cuda}"
    )


if __name__ == "__main__":
    _child(sys.argv[1:])
