"""Execution of SGD steps: the steps in flight on the simulated clock, computed together.

A node that starts a step submits it here (its batch, drawn now) and sleeps for the step's
simulated compute time; the gradient is computed only when some step's result is needed (its
end on the clock) or when a pending node's parameters are touched (``node.x``), whichever comes
first. By then every step that started and has not yet finished is pending, so they are all
computed at once. Nothing a pending node's parameters go through changes before that (the
node itself is asleep, and any other access flushes first), so each gradient is taken at the
parameters of its step's start: the causality rule holds exactly as with eager steps.
Models with BatchNorm (whose forward pass writes statistics) and calibrated compute times
(which need each step's wall time) step eagerly.

How the pending steps are computed (``Settings.execution``):

- ``loop``: one node after another, each through its own module whose parameters are views of
  its row of the population tensor (what a per-node loop does, minus the copies);
- ``stacked``: for models that are chains of Flatten, Linear and ReLU, all pending nodes'
  layers as stacked batched matrix products over their rows, with a hand-written backward
  pass. When the run's optimizer is plain SGD at a constant rate and the steps end at the
  instant they are computed (equal step times), the update is applied inside the
  weight-gradient products (x <- x - lr g in the same pass), and no gradient is stored;
- ``grouped``: for chains of Conv2d, ReLU and MaxPool2d, then Flatten and Linear layers, the
  pending nodes' networks as one network of grouped convolutions (see netsim/grouped.py);
- ``vmap``: any model without buffers, through ``torch.func.vmap`` of the per-node gradient;
- ``auto``: a short calibration times the candidates on scratch copies of the rows and keeps
  the fastest, leaving ``loop`` only for a clear (10%) gain, so the choice is stable. On CPU
  the candidates are loop, stacked and grouped (vmap loses to the loop for convolutions
  there); on CUDA vmap as well. It runs once per process and workload, so the runs of an experiment
  share one choice, which is written to config.json (the timings to summary.json).

All modes give the same gradients and losses up to float rounding (tests pin this).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netsim.grouped import conv_chain, grouped_forward, grouped_step
from netsim.population import bind, view

MODES = ("auto", "loop", "stacked", "grouped", "vmap")
_NEEDS = {
    "stacked": "it is not a chain of Flatten, Linear and ReLU layers",
    "grouped": "it is not a chain of Conv2d, ReLU and MaxPool2d, then Flatten and Linear layers",
    "vmap": "its loss is not one vmap can batch",
    "loop": "",
}
_CHAIN_LAYERS = (nn.Flatten, nn.Linear, nn.ReLU, nn.Identity)
_BLOCK, _GATHER = 16, 64  # rows: a run this long is used in place; gathers go this far
_CALIBRATED: dict[tuple, tuple[str, dict[str, float]]] = {}
_GAIN = 1.1  # a batched mode must beat the loop by this factor to be chosen
_CALIBRATION_BUDGET = 0.05  # s of loop steps timed per candidate when choosing a mode


class ExecutionError(ValueError):
    pass


@dataclass(eq=False)
class Ticket:
    """One submitted step: its node, batch, optional proximal term, and (once computed) loss."""

    node: int
    batch: np.ndarray
    prox: tuple[float, torch.Tensor] | None = None
    end: float | None = None  # the step's end on the simulated clock
    apply: bool = False  # the node applies the step with the run's optimizer at its end
    loss: float | None = None
    applied: bool = False  # the engine applied the update itself (fused, see Steps.flush)


def chain(module: nn.Module) -> list[nn.Module] | None:
    """The module's leaf layers if it is a plain chain of Flatten/Linear/ReLU, else None.

    The layer types are necessary, not sufficient (forward could wire them differently), so
    Steps also checks the stacked forward against the module's own on a random input.
    """
    leaves = [m for m in module.modules() if not list(m.children())]
    if not leaves or not all(isinstance(m, _CHAIN_LAYERS) for m in leaves):
        return None
    if not any(isinstance(m, nn.Linear) for m in leaves):
        return None
    return leaves


def stacked_forward(layers: list[nn.Module], P: torch.Tensor, inputs: torch.Tensor):
    """Outputs (k, b, out) of k chains whose flat parameters are the rows of P (k, params),
    on inputs (k, b, ...)."""
    k, b = inputs.shape[:2]
    h = inputs.reshape(k, b, -1)
    offset = 0
    for layer in layers:
        if isinstance(layer, nn.Linear):
            n_w = layer.out_features * layer.in_features
            w = P[:, offset : offset + n_w].view(k, layer.out_features, layer.in_features)
            offset += n_w
            if layer.bias is not None:
                bias = P[:, offset : offset + layer.out_features].unsqueeze(1)
                offset += layer.out_features
                h = torch.baddbmm(bias, h, w.transpose(1, 2))
            else:
                h = torch.bmm(h, w.transpose(1, 2))
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
    return h


def stacked_step(layers, P, G, inputs, targets, update=None) -> torch.Tensor:
    """k chains' cross-entropy gradients into the rows of G (k, params), by hand-written
    backward passes over stacked batched products; returns the k mean losses.

    Activations are kept for the backward pass; ReLU's derivative is read from its output
    (a > 0 exactly where its input was). Weight gradients are written straight into G; or,
    with ``update=(lr, weight_decay)`` and no G, the SGD step is applied to P in place inside
    the products, P <- (1 - lr wd) P - lr g, each layer after its gradient has been passed
    on to the layer below.
    """
    k, b = inputs.shape[:2]
    h = inputs.reshape(k, b, -1)
    kept, params = [], []  # each Linear's input, and (weight, bias, their slots in G)
    offset = 0
    for layer in layers:
        if isinstance(layer, nn.Linear):
            n_out, n_in = layer.out_features, layer.in_features
            slots = [(offset, offset + n_out * n_in)]
            offset += n_out * n_in
            if layer.bias is not None:
                slots.append((offset, offset + n_out))
                offset += n_out
            w = P[:, slots[0][0] : slots[0][1]].view(k, n_out, n_in)
            bias = P[:, slots[1][0] : slots[1][1]].unsqueeze(1) if len(slots) > 1 else None
            kept.append(h)
            params.append((layer, w, slots))
            h = (
                torch.baddbmm(bias, h, w.transpose(1, 2))
                if bias is not None
                else (torch.bmm(h, w.transpose(1, 2)))
            )
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
            params.append((layer, h, None))
    log_p = torch.log_softmax(h, dim=2)
    losses = -log_p.gather(2, targets.unsqueeze(2)).squeeze(2).mean(1)
    d = log_p.exp_()  # d loss / d logits = (softmax - onehot) / b
    d.scatter_add_(2, targets.unsqueeze(2), torch.full((k, b, 1), -1.0, device=d.device))
    d.div_(b)
    first_linear = next(i for i, (layer, *_) in enumerate(params) if isinstance(layer, nn.Linear))
    for position in range(len(params) - 1, -1, -1):
        layer, tensor, slots = params[position]
        if isinstance(layer, nn.ReLU):
            d.mul_(tensor > 0)
            continue
        a = kept.pop()
        (w0, w1), n_out, n_in = slots[0], layer.out_features, layer.in_features
        below = torch.bmm(d, tensor) if position > first_linear else None
        if update is None:
            torch.bmm(d.transpose(1, 2), a, out=G[:, w0:w1].view(k, n_out, n_in))
            if len(slots) > 1:
                torch.sum(d, dim=1, out=G[:, slots[1][0] : slots[1][1]])
        else:
            lr, decay = update
            w = P[:, w0:w1].view(k, n_out, n_in)
            w.baddbmm_(d.transpose(1, 2), a, beta=1 - lr * decay, alpha=-lr)
            if len(slots) > 1:
                bias = P[:, slots[1][0] : slots[1][1]]
                bias.mul_(1 - lr * decay).sub_(d.sum(1), alpha=lr)
        d = below
    return losses


class Steps:
    """The pending steps of one simulation and the kernels that compute them."""

    def __init__(self, sim, template: nn.Module, mode: str, defer: bool = True):
        if mode not in MODES:
            raise ExecutionError(f"execution must be one of {', '.join(MODES)}, got {mode!r}")
        self.sim = sim
        self.defer = defer
        self.pending: dict[int, Ticket] = {}
        self.flushes = 0  # how many times pending steps were computed, and how many steps
        self.computed = 0
        self.fused = 0  # steps whose SGD update was applied inside the stacked products
        self._template = copy.deepcopy(template)
        self._modules: dict[int, nn.Module] = {}
        self._workspace: dict[str, torch.Tensor] = {}
        settings = sim.settings
        # plain SGD at a constant rate can be applied inside the stacked products (flush)
        plain = settings.momentum == 0 and settings.lr_schedule == "constant"
        self._fused_lr = settings.lr if plain else None
        self._fused_decay = settings.weight_decay
        self._has_buffers = any(True for _ in self._template.buffers())
        self._vmap = None
        self.candidates = ["loop"]
        self._layers = self._convs = None
        if not self._has_buffers:
            if sim.loss_fn is F.cross_entropy:
                self._layers = self._verified(chain(self._template), stacked_forward)
                self._convs = self._verified(conv_chain(self._template), grouped_forward)
            self.candidates += ["stacked"] if self._layers is not None else []
            self.candidates += ["grouped"] if self._convs is not None else []
            self.candidates += ["vmap"]
        possible = list(self.candidates)
        if "vmap" in self.candidates and not sim.X.is_cuda:
            # on CPU vmap loses to the loop for convolutions and to the stacked products for
            # chains (its tracing costs a second as well), so auto times it on CUDA only
            self.candidates.remove("vmap")
        if mode != "auto" and mode not in possible:
            why = "it has buffers (BatchNorm)" if self._has_buffers else _NEEDS[mode]
            raise ExecutionError(
                f"execution={mode!r} cannot run model {sim.settings.model!r}: {why}; "
                "use execution='loop' or 'auto'"
            )
        self.timings: dict[str, float] = {}  # calibration: seconds per candidate
        self.mode = "loop"
        if mode == "auto":
            key = (
                sim.settings.model,
                sim.X.shape[1],
                tuple(sim.x_train.shape[1:]),
                sim.settings.batch,
                str(sim.X.device),
                min(len(sim.workers), 64),
                tuple(self.candidates),
                defer,
            )
            if key not in _CALIBRATED:  # once per process and workload: runs of an experiment
                _CALIBRATED[key] = self._calibrate(), self.timings
            mode, self.timings = _CALIBRATED[key]
        self.mode = mode

    # -- the clock side ----------------------------------------------------------------
    def submit(self, node: int, batch: np.ndarray, prox=None, end=None, apply=False) -> Ticket:
        ticket = Ticket(node, batch, prox, end, apply)
        self.pending[node] = ticket
        if not self.defer:
            self.flush()
        return ticket

    def result(self, ticket: Ticket) -> float:
        """The step's loss (its gradient is in the node's row of G): computes if still pending."""
        if ticket.loss is None:
            self.flush()
        return ticket.loss

    def flush(self) -> None:
        """Computes every pending step now."""
        if not self.pending:
            return
        # by node: a whole population in flight is one block of rows, used in place
        tickets = sorted(self.pending.values(), key=lambda t: t.node)
        self.pending.clear()
        self.flushes += 1
        self.computed += len(tickets)
        if self.mode == "loop" or len(tickets) == 1:
            self._loop(tickets)
            return
        groups: dict[tuple[int, bool], list[Ticket]] = {}
        now = self.sim.env.now
        stacked = self.mode == "stacked" and self._fused_lr is not None
        for t in tickets:  # a node holding fewer samples than the batch has shorter batches
            fuse = stacked and t.apply and t.prox is None and t.end == now
            groups.setdefault((len(t.batch), fuse), []).append(t)
        for (_, fuse), group in groups.items():
            if len(group) == 1 and not fuse:
                self._loop(group)
                continue
            for piece in _pieces(group):
                self._batched(piece, fuse)

    # -- kernels -----------------------------------------------------------------------
    def _module(self, i: int) -> nn.Module:
        """Node i's module, parameters viewing row i of X and gradients row i of G."""
        module = self._modules.get(i)
        if module is None:
            sim = self.sim
            module = self._modules[i] = _view_module(self._template, sim.X[i], sim.G[i], sim.B[i])
        return module

    def _loop(self, tickets: list[Ticket]) -> None:
        sim = self.sim
        losses = []
        for t in tickets:
            inputs, targets = sim.dataset_train(torch.from_numpy(t.batch))
            sim.G[t.node].zero_()
            loss = sim.loss_fn(self._module(t.node)(inputs), targets)
            loss.backward()
            losses.append(loss.detach())
        self._finish(tickets, torch.stack(losses))

    def _batched(self, tickets: list[Ticket], fuse: bool = False) -> None:
        sim = self.sim
        k = len(tickets)
        rows = [t.node for t in tickets]
        first = rows[0]
        contiguous = rows == list(range(first, first + k))
        index = torch.tensor(rows, device=sim.X.device)
        inputs, targets = sim.dataset_train(
            torch.from_numpy(np.concatenate([t.batch for t in tickets]))
        )
        inputs = inputs.view(k, -1, *inputs.shape[1:])
        targets = targets.view(k, -1, *targets.shape[1:])
        # rows in one block are used in place; scattered rows go through reused workspaces
        # (fresh multi-megabyte tensors cost page faults that outweigh the arithmetic)
        if contiguous:
            params, grads = sim.X[first : first + k], sim.G[first : first + k]
        else:
            params = torch.index_select(sim.X, 0, index, out=self._space("params", k))
            grads = self._space("grads", k)
        if fuse:  # the steps end now: update the rows in the weight-gradient products
            losses = stacked_step(
                self._layers, params, None, inputs, targets, (self._fused_lr, self._fused_decay)
            )
            if not contiguous:
                sim.X.index_copy_(0, index, params)
            for t in tickets:
                t.applied = True
            self.fused += len(tickets)
            self._finish(tickets, losses)
            return
        if self.mode == "stacked":
            losses = stacked_step(self._layers, params, grads, inputs, targets)
        elif self.mode == "grouped":
            losses = grouped_step(self._convs, params, grads, inputs, targets)
        else:
            losses = self._vmapped(params, grads, inputs, targets)
        if not contiguous:
            sim.G.index_copy_(0, index, grads)
        self._finish(tickets, losses)

    def _space(self, name: str, k: int, *shape: int) -> torch.Tensor:
        """A reused scratch tensor of shape (k, *shape) (default: (k, parameters))."""
        shape = (k, *(shape or (self.sim.X.shape[1],)))
        size = int(np.prod(shape))
        buffer = self._workspace.get(name)
        if buffer is None or buffer.numel() < size:
            buffer = self._workspace[name] = torch.empty(size, device=self.sim.X.device)
        return buffer[:size].view(shape)

    def _vmapped(self, params, grads, inputs, targets) -> torch.Tensor:
        if self._vmap is None:
            self._vmap = _vmap_step(self._template, self.sim.loss_fn)
        segments = list(zip(self._template.named_parameters(), self.sim.segments, strict=True))
        split = {name: view(params[:, a:b], p.shape) for (name, p), (a, b) in segments}
        per_layer, losses = self._vmap(split, inputs, targets)
        for (name, p), (a, b) in segments:
            view(grads[:, a:b], p.shape).copy_(per_layer[name])
        return losses.detach()

    def forward(self, P: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Outputs (k, m, ...) of the k models in the rows of P on inputs (k, m, ...), through
        the batched kernel of this engine's mode (evaluation uses it; no gradients)."""
        if self.mode == "stacked":
            return stacked_forward(self._layers, P, inputs)
        if self.mode == "grouped":
            return grouped_forward(self._convs, P, inputs)
        from torch.func import functional_call, vmap

        split = {
            name: view(P[:, a:b], p.shape)
            for (name, p), (a, b) in zip(
                self._template.named_parameters(), self.sim.segments, strict=True
            )
        }
        return vmap(lambda params, x: functional_call(self._template, params, (x,)))(split, inputs)

    def _finish(self, tickets: list[Ticket], losses: torch.Tensor) -> None:
        sim = self.sim
        for t, loss in zip(tickets, losses.tolist(), strict=True):
            t.loss = loss
            if t.prox is not None:  # FedProx: + mu (x - w), at the step-start parameters
                mu, anchor = t.prox
                sim.G[t.node].add_(sim.X[t.node] - anchor, alpha=mu)

    # -- choosing a mode ---------------------------------------------------------------
    def _verified(self, layers: list[nn.Module] | None, forward) -> list[nn.Module] | None:
        """layers if the batched forward over them computes what the model does, else None."""
        if layers is None:
            return None
        sim = self.sim
        x0 = sim.X[0:1]
        probe = sim.dataset_train(torch.arange(min(4, len(sim.x_train))))[0]
        with torch.no_grad():
            try:
                mine = forward(layers, x0, probe.unsqueeze(0))[0]
            except RuntimeError:  # shapes the kernel cannot take
                return None
            theirs = _view_module(self._template, sim.X[0], None, sim.B[0])(probe)
        return layers if torch.allclose(mine, theirs, rtol=1e-4, atol=1e-5) else None

    def _calibrate(self) -> str:
        """Times each candidate on scratch rows; returns the fastest (see the module doc).

        The rows are copies of node 0's and the batches come from a generator of their own,
        so the run's state and random streams are untouched. One step through the loop sets
        how many nodes' steps are timed: as many as fit in about 50 ms of loop time (at most
        64, at least 2), so calibration stays a small cost even for models whose steps are
        slow, which are compute-bound and gain little from batching anyway.
        """
        sim = self.sim
        workers = len(sim.workers)
        if len(self.candidates) == 1 or workers < 2 or not self.defer:
            return "loop"
        batch = min(sim.settings.batch, len(sim.x_train))
        rng = np.random.default_rng(0)
        saved = sim.X, sim.G, self._modules, self.mode
        scratch = lambda k: (
            sim.X[:1].repeat(k, 1),
            torch.zeros(k, sim.X.shape[1], device=sim.X.device),
        )
        tickets = lambda k: [Ticket(i, rng.integers(0, len(sim.x_train), batch)) for i in range(k)]

        def timed(mode: str, k: int) -> float:
            self.mode = mode
            started = time.perf_counter()
            (self._loop if mode == "loop" else self._batched)(tickets(k))
            if sim.X.is_cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - started

        try:
            self._modules = {}
            sim.X, sim.G = scratch(1)
            timed("loop", 1)  # first calls: allocations and kernel selection
            one = min(timed("loop", 1) for _ in range(2))
            k = int(min(64, max(2, min(workers, _CALIBRATION_BUDGET // max(one, 1e-6)))))
            sim.X, sim.G = scratch(k)
            for mode in self.candidates:
                try:
                    first = timed(mode, k)
                except RuntimeError:  # an operation vmap cannot batch
                    continue
                loop = self.timings.get("loop")
                if loop is not None and first > 3 * loop:  # clearly slower, even if warming up
                    self.timings[mode] = first
                    continue
                self.timings[mode] = min(timed(mode, k) for _ in range(2))
        finally:
            sim.X, sim.G, self._modules, self.mode = saved
        best = min(self.timings, key=self.timings.get)
        return best if self.timings[best] * _GAIN < self.timings["loop"] else "loop"


def _pieces(tickets: list[Ticket]) -> list[list[Ticket]]:
    """Tickets sorted by node, cut so that each piece is either one block of consecutive rows
    (used in place, however long) or at most _GATHER rows gathered into a workspace; so the
    workspaces stay small whatever the population."""
    runs: list[list[Ticket]] = []
    for t in tickets:
        if runs and runs[-1][-1].node + 1 == t.node:
            runs[-1].append(t)
        else:
            runs.append([t])
    pieces, scattered = [], []
    for run in runs:
        if len(run) >= _BLOCK:
            pieces.append(run)
            continue
        for t in run:
            scattered.append(t)
            if len(scattered) == _GATHER:
                pieces.append(scattered)
                scattered = []
    return pieces + ([scattered] if scattered else [])


def _view_module(template: nn.Module, x: torch.Tensor, g, b) -> nn.Module:
    """A copy of template whose parameters are views of x (gradients of g, floating buffers
    of b), made without allocating parameter storage."""
    # deepcopy takes shape-only (meta) placeholders for the weights, then bind swaps in views
    memo = {id(p): nn.Parameter(torch.empty(p.shape, device="meta")) for p in template.parameters()}
    module = copy.deepcopy(template, memo)
    bind(module, x, g, b)
    return module


def _vmap_step(template: nn.Module, loss_fn):
    from torch.func import functional_call, grad_and_value, vmap

    def one(params, inputs, targets):
        return loss_fn(functional_call(template, params, (inputs,)), targets)

    return vmap(grad_and_value(one))
