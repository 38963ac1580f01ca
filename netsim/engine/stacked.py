"""The stacked kernel: k chains of Flatten, Linear and ReLU layers as batched matrix products.

For logistic regression and MLPs, the pending nodes' layers are stacked over their rows of the
population, so each layer is one batched product for all k nodes, with a hand-written
backward pass that writes weight gradients straight into the gradient population. When the
run's optimizer is plain SGD at a constant rate and the steps end at the instant they are
computed (equal step times), the update is applied inside the weight-gradient products
(x <- x - lr g in the same pass), and no gradient is stored at all.
"""

from __future__ import annotations

import torch
from torch import nn

_CHAIN_LAYERS = (nn.Flatten, nn.Linear, nn.ReLU, nn.Identity)


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
            h, offset = linear(layer, P, offset, h)
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
    return h


def linear(layer: nn.Linear, P: torch.Tensor, offset: int, h: torch.Tensor):
    """k copies of layer, whose parameters start at offset in the rows of P, on h (k, b, in):
    their outputs (k, b, out), and the offset of the next layer's parameters."""
    k, n_out, n_in = P.shape[0], layer.out_features, layer.in_features
    w = P[:, offset : offset + n_out * n_in].view(k, n_out, n_in)
    offset += n_out * n_in
    if layer.bias is None:
        return torch.bmm(h, w.transpose(1, 2)), offset
    bias = P[:, offset : offset + n_out].unsqueeze(1)
    return torch.baddbmm(bias, h, w.transpose(1, 2)), offset + n_out


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
