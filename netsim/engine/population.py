"""The population: every node's parameters as rows of one tensor, modules as views into it.

Binding makes an nn.Module's parameters views into a flat row (and their gradients views into a
row of the gradient population), so torch.optim updates the population in place and mixing
across nodes is plain tensor algebra on the rows.

Layout: each parameter is one segment of the row, in the module's parameter order. A 4-D
parameter (a convolution's weight, out x in x kh x kw) is stored channels-last (out, kh, kw, in)
in its segment, so its view has channels-last strides: oneDNN convolutions and max pooling then
run channels-last, 1.3-1.6 x faster per CNN step on CPU than on NCHW weights. Averaging, noise
and compression work on rows and do not care about the order; everything that turns rows into
tensors goes through `view` and `flatten` here.
"""

from __future__ import annotations

import copy

import numpy as np
import torch


def bind(module: torch.nn.Module, x: torch.Tensor, g=None, b=None) -> None:
    """Makes the module's parameters views into the flat vector x, their grads views into g,
    and its floating buffers (BatchNorm statistics) views into b."""
    offset = 0
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is None:
                continue
            n = p.numel()
            param = torch.nn.Parameter(view(x[offset : offset + n], p.shape))
            if g is not None:
                param.grad = view(g[offset : offset + n], p.shape)
            sub._parameters[name] = param
            offset += n
    offset = 0
    for sub, name, buffer in _float_buffers(module) if b is not None else ():
        sub._buffers[name] = b[offset : offset + buffer.numel()].view_as(buffer)
        offset += buffer.numel()


def view_module(template: torch.nn.Module, x: torch.Tensor, g, b) -> torch.nn.Module:
    """A copy of template whose parameters are views of x (gradients of g, floating buffers
    of b), made without allocating parameter storage."""
    # deepcopy takes shape-only (meta) placeholders for the weights, then bind swaps in views
    memo = {
        id(p): torch.nn.Parameter(torch.empty(p.shape, device="meta"))
        for p in template.parameters()
    }
    module = copy.deepcopy(template, memo)
    bind(module, x, g, b)
    return module


def zeros(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A float32 tensor of zeros that costs memory only where it is written, on CPU: numpy
    takes zeroed pages from the operating system (calloc), which maps them on first write.
    (A gradient population that fused SGD steps never write then costs nothing.)"""
    if torch.device(device).type != "cpu":
        return torch.zeros(shape, device=device)
    return torch.from_numpy(np.zeros(shape, np.float32))


def view(flat: torch.Tensor, shape) -> torch.Tensor:
    """The segment flat (..., n) as a parameter of shape (..., *shape) in the population's
    layout: channels-last for 4-D shapes, plain for the rest. Leading dimensions (a batch of
    rows) are kept."""
    lead = flat.shape[:-1]
    if len(shape) == 4:
        out, into, kh, kw = shape
        return flat.view(*lead, out, kh, kw, into).movedim(-1, -3)
    return flat.view(*lead, *shape)


def flat(p: torch.Tensor) -> torch.Tensor:
    """p's values as a segment, in the population's layout (the inverse of view)."""
    p = p.detach()
    return (p.movedim(-3, -1) if p.dim() == 4 else p).reshape(-1)


def flatten(module: torch.nn.Module) -> torch.Tensor:
    """The module's parameters as one row, in the population's layout."""
    return torch.cat([flat(p) for p in module.parameters()])


def flatten_buffers(module: torch.nn.Module) -> torch.Tensor:
    """The floating buffers as one vector (empty for models without BatchNorm)."""
    parts = [buffer.reshape(-1) for _, _, buffer in _float_buffers(module)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _float_buffers(module: torch.nn.Module):
    # integer buffers (BatchNorm's step counter) stay in each module: they are not averaged
    return [
        (sub, name, buffer)
        for sub in module.modules()
        for name, buffer in sub._buffers.items()
        if buffer is not None and buffer.is_floating_point()
    ]


class SGD:
    """torch.optim.SGD's update (weight decay, momentum, dampening, Nesterov) applied to one
    row of the population at a time, with the momentum buffers a population tensor too.

    Element for element the same arithmetic as torch.optim.SGD on the node's module, so a run
    gives the same numbers; but the state is one (nodes x parameters) tensor, allocated only
    when momentum is used, instead of one buffer per node and layer.
    """

    def __init__(self, X, G, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False):
        self.X, self.G = X, G
        self.momentum, self.weight_decay = momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov
        self.M = zeros(X.shape, X.device) if momentum else None
        self._started = [False] * X.shape[0]  # torch starts a buffer as a copy of the first d

    def reset(self, i: int) -> None:
        """Row i's optimizer state as at the start (a node restarted with state="reset")."""
        if self.M is not None:
            self.M[i].zero_()
        self._started[i] = False

    def state(self, i: int) -> dict:
        """Row i's optimizer state, as a message carries it: its momentum buffer (None
        without momentum) and whether the buffer has started."""
        return {"momentum": None if self.M is None else self.M[i], "started": self._started[i]}

    def load(self, i: int, state: dict) -> None:
        """Row i's optimizer state set to another row's (``state``'s result)."""
        if self.M is not None:
            self.M[i].copy_(state["momentum"])
        self._started[i] = state["started"]

    def step(self, i: int, lr: float) -> None:
        x, d = self.X[i], self.G[i]
        if self.weight_decay:
            d = d.add(x, alpha=self.weight_decay)
        if self.M is not None:
            buf = self.M[i]
            if self._started[i]:
                buf.mul_(self.momentum).add_(d, alpha=1 - self.dampening)
            else:
                buf.copy_(d)
                self._started[i] = True
            d = d.add(buf, alpha=self.momentum) if self.nesterov else buf
        x.add_(d, alpha=-lr)
