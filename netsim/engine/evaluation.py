"""Evaluation: an observer that costs no simulated time.

The global model (or a node's own model) is loaded into one evaluation module and run over the
test set in large batches. Classification reports accuracy and mean cross-entropy; rating data
(task "regress") reports no accuracy (NaN) and the test RMSE in the loss column.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from netsim.data.sets import decode
from netsim.engine.population import bind, flatten, flatten_buffers

EVAL_BATCH = 500  # samples per forward pass: a CNN's activations stay near 50 MB
_EVAL_FLOATS = 16 * 2**20  # activation floats of one batched forward over many models (64 MB)


class Evaluator:
    def __init__(self, template, dataset, device: torch.device, subset_size: int):
        self.regress = getattr(dataset, "task", "classify") == "regress"
        self.module = copy.deepcopy(template)
        self.x = flatten(self.module).clone()
        self.b = flatten_buffers(self.module).to(self.x.device)
        bind(self.module, self.x, b=self.b)
        self.module.eval()
        # stored rows (image bytes), normalized chunk by chunk as they are evaluated
        self.inputs, self.targets = dataset.raw_test.to(device), dataset.y_test.to(device)
        self.lut = None if dataset.lut is None else dataset.lut.to(device)
        # one fixed subset (same seed for every run) so that curves of different runs compare
        order = np.random.default_rng(0).permutation(len(self.targets))
        self.subset = torch.from_numpy(order[:subset_size]).to(device)
        self.width = self._widest()

    @torch.inference_mode()
    def _widest(self) -> int:
        """Floats per sample of the model's widest activation, its input included: what
        bounds the memory of a forward pass over many samples."""
        widths = [self.inputs[0].numel()]
        hooks = [
            m.register_forward_hook(lambda _m, _a, out: widths.append(out[0].numel()))
            for m in self.module.modules()
            if not list(m.children())
        ]
        try:
            if len(self.inputs):
                self.module(decode(self.inputs[:1], self.lut))
        finally:
            for hook in hooks:
                hook.remove()
        return max(widths)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, b: torch.Tensor, which) -> tuple[float, float, int]:
        """(accuracy, loss, samples) on "subset", "test" or a tensor of test indices."""
        self.x.copy_(x)
        self.b.copy_(b)
        if isinstance(which, str):
            idx = self.subset if which == "subset" else None
        else:
            idx = which
        inputs = self.inputs if idx is None else self.inputs[idx]
        targets = self.targets if idx is None else self.targets[idx]
        correct, total = 0, 0.0
        for start in range(0, len(targets), EVAL_BATCH):
            out = self.module(decode(inputs[start : start + EVAL_BATCH], self.lut))
            y = targets[start : start + EVAL_BATCH]
            if self.regress:
                total += F.mse_loss(out, y, reduction="sum").item()
            else:
                total += F.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
        n = max(len(targets), 1)
        if self.regress:
            return math.nan, math.sqrt(total / n), len(targets)
        return correct / n, total / n, len(targets)

    @torch.inference_mode()
    def many(self, X: torch.Tensor, B: torch.Tensor, which: list, engine=None):
        """[(accuracy, loss, samples)] of the models in the rows of X, model r on which[r]
        ("subset", "test" or a tensor of test indices).

        With an engine computing steps batched (stacked, grouped or vmap), the models go
        through its batched forward, as many at a time as keep the widest activation near
        64 MB; samples are padded per chunk to the longest set and masked out of the sums. A
        model whose samples alone exceed that goes alone, EVAL_BATCH samples at a time.
        """
        if engine is None or engine.mode == "loop" or B.shape[1]:
            return [self(X[r], B[r], w) for r, w in enumerate(which)]
        idx = [self._indices(w) for w in which]
        per_sample = self.width
        out = []
        start = 0
        while start < len(idx):
            if len(idx[start]) * per_sample > _EVAL_FLOATS:
                out.append(self(X[start], B[start], which[start]))
                start += 1
                continue
            longest, end = len(idx[start]), start + 1
            while end < len(idx):
                longest2 = max(longest, len(idx[end]))
                if (end + 1 - start) * longest2 * per_sample > _EVAL_FLOATS:
                    break
                longest, end = longest2, end + 1
            out += self._chunk(X[start:end], idx[start:end], longest, engine)
            start = end
        return out

    def _indices(self, which) -> torch.Tensor:
        if not isinstance(which, str):
            return which
        if which == "subset":
            return self.subset
        return torch.arange(len(self.targets), device=self.targets.device)

    def _chunk(self, X, idx, longest, engine):
        k = len(idx)
        padded = torch.zeros(k, longest, dtype=torch.long, device=X.device)
        valid = torch.zeros(k, longest, dtype=torch.bool, device=X.device)
        for r, rows in enumerate(idx):
            padded[r, : len(rows)] = rows
            valid[r, : len(rows)] = True
        out = engine.forward(X, decode(self.inputs[padded], self.lut))
        y = self.targets[padded]
        flat_out, flat_y = out.reshape(k * longest, *out.shape[2:]), y.reshape(k * longest)
        if self.regress:
            loss = F.mse_loss(flat_out, flat_y, reduction="none").view(k, longest)
        else:
            loss = F.cross_entropy(flat_out, flat_y, reduction="none").view(k, longest)
            correct = ((out.argmax(2) == y) & valid).sum(1).tolist()
        totals = (loss * valid).sum(1).tolist()
        results = []
        for r, rows in enumerate(idx):
            n = max(len(rows), 1)
            if self.regress:
                results.append((math.nan, math.sqrt(totals[r] / n), len(rows)))
            else:
                results.append((correct[r] / n, totals[r] / n, len(rows)))
        return results


def combine(results: list[tuple[float, float, int]], regress: bool) -> tuple[float, float]:
    """Sample-weighted mean of per-node results (RMSEs combine through their squares)."""
    n = sum(count for _, _, count in results) or 1
    if regress:
        return math.nan, math.sqrt(sum(c * loss**2 for _, loss, c in results) / n)
    accuracy = sum(c * acc for acc, _, c in results) / n
    return accuracy, sum(c * loss for _, loss, c in results) / n


def evaluate(run, split: str, t: float) -> None:
    """Writes a run's evaluation at time t (either runtime: ``run`` has the population X and
    B, ``workers``, ``sampled``, ``local_test``, ``evaluator``, ``engine``, ``recorder`` and
    ``global_model()``/``global_buffers()``).

    The global model on the test subset (during the run) or the full test set (at the end),
    and the eval_nodes sampled workers' own models on the same samples; with eval_local,
    every worker's own model on its users' test samples instead.
    """
    write, evaluator = run.recorder.evaluation, run.evaluator
    if run.settings.eval_local:
        workers = run.workers
        results = evaluator.many(run.X[workers], run.B[workers], run.local_test, run.engine)
        for i, result in zip(workers, results, strict=True):
            write(t, i, split, *result[:2])
        write(t, "global", split, *combine(results, evaluator.regress))
        return
    accuracy, loss, _ = evaluator(run.global_model(), run.global_buffers(), split)
    write(t, "global", split, accuracy, loss)
    if run.sampled:
        sampled = run.sampled
        which = [split] * len(sampled)
        results = evaluator.many(run.X[sampled], run.B[sampled], which, run.engine)
        for i, result in zip(sampled, results, strict=True):
            write(t, i, split, *result[:2])
