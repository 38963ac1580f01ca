"""Execution of SGD steps: the steps in flight on the simulated clock, computed together.

A node that starts a step submits it here (its batch, drawn now) and sleeps for the step's
simulated compute time; the gradient is computed only when some step's result is needed (its
end on the clock) or a pending node's parameters are touched (``node.x``). By then every step
started and not finished is pending, and all are computed at once, each at the parameters of
its step's start (the node is asleep and any other access flushes first), so causality holds
exactly as with eager steps. Models with BatchNorm (whose forward pass writes statistics) and
calibrated compute times (which need each step's wall time) step eagerly. A Ctrl-C or SIGTERM
(the CLI's, netsim.interrupts) waits for the steps being computed: one taken from pending
without its loss would fail its node's next read, and the run with a TypeError.

How the pending steps are computed (``Settings.execution``):

- ``loop``: one node after another, each through a module whose parameters view its row;
- ``stacked``: for chains of Flatten, Linear and ReLU, all pending nodes' layers as stacked
  batched matrix products, with the SGD update fused in where it can be (stacked.py);
- ``grouped``: CNN chains (Conv2d, ReLU, MaxPool2d, Flatten, Linear) as grouped convolutions;
- ``vmap``: any model without buffers, through ``torch.func.vmap`` of the per-node gradient;
- ``auto`` (default): a fixed rule by model and population (calibration.rule), what timing
  picks on an idle machine, so results never depend on load; ``calibrate``: timing picks
  (calibration.choose), opt-in, not reproducible (the mode: config.json; timings: summary.json).

All modes give the same gradients and losses up to float rounding (tests pin this).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netsim import interrupts
from netsim.engine.grouped import conv_chain, grouped_forward, grouped_step
from netsim.engine.population import view, view_module
from netsim.engine.stacked import chain, stacked_forward, stacked_step

MODES = ("auto", "calibrate", "loop", "stacked", "grouped", "vmap")
CHOSEN = ("auto", "calibrate")  # modes that pick one of the others
NEEDS = {
    "stacked": "it is not a chain of Flatten, Linear and ReLU layers",
    "grouped": "it is not a chain of Conv2d, ReLU and MaxPool2d, then Flatten and Linear layers",
}
_BLOCK, _GATHER = 16, 64  # rows: a run this long is used in place; gathers go this far


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
        if mode not in CHOSEN and mode not in possible:
            why = "it has buffers (BatchNorm)" if self._has_buffers else NEEDS[mode]
            raise ExecutionError(
                f"execution={mode!r} cannot run model {sim.settings.model!r}: {why}; "
                "use execution='loop' or 'auto'"
            )
        # "auto" and "calibrate" compute with the loop until the caller sets the mode picked
        self.mode, self.timings = ("loop" if mode in CHOSEN else mode), {}

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
        """Computes every pending step now (a Ctrl-C meanwhile waits: the module's note)."""
        if not self.pending:
            return
        interrupts.hold()
        try:
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
        finally:
            interrupts.release()

    # -- kernels -----------------------------------------------------------------------
    def _module(self, i: int) -> nn.Module:
        """Node i's module, parameters viewing row i of X and gradients row i of G."""
        module = self._modules.get(i)
        if module is None:
            sim = self.sim
            module = self._modules[i] = view_module(self._template, sim.X[i], sim.G[i], sim.B[i])
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
            from torch.func import functional_call, grad_and_value, vmap

            def loss(params, x, y):
                return self.sim.loss_fn(functional_call(self._template, params, (x,)), y)

            self._vmap = vmap(grad_and_value(loss))
        per_layer, losses = self._vmap(self._split(params), inputs, targets)
        for name, grad in self._split(grads).items():
            grad.copy_(per_layer[name])
        return losses.detach()

    def _split(self, P: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parameters of the k models in the rows of P, by name, as (k, ...) views."""
        pairs = zip(self._template.named_parameters(), self.sim.segments, strict=True)
        return {name: view(P[:, a:b], p.shape) for (name, p), (a, b) in pairs}

    def forward(self, P: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Outputs (k, m, ...) of the k models in the rows of P on inputs (k, m, ...), through
        the batched kernel of this engine's mode (evaluation uses it; no gradients)."""
        if self.mode == "stacked":
            return stacked_forward(self._layers, P, inputs)
        if self.mode == "grouped":
            return grouped_forward(self._convs, P, inputs)
        from torch.func import functional_call, vmap

        one = lambda params, x: functional_call(self._template, params, (x,))
        return vmap(one)(self._split(P), inputs)

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
        probe = sim.dataset_train(torch.arange(min(4, len(sim.raw_train))))[0]
        with torch.no_grad():
            try:
                mine = forward(layers, x0, probe.unsqueeze(0))[0]
            except RuntimeError:  # shapes the kernel cannot take
                return None
            theirs = view_module(self._template, sim.X[0], None, sim.B[0])(probe)
        return layers if torch.allclose(mine, theirs, rtol=1e-4, atol=1e-5) else None


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
