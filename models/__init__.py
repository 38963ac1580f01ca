"""Model zoo: torch nn.Modules by name, with parameter and FLOP counts for the compute model."""

import math

import torch
from torch import nn

from models.celeba_cnn import CelebaCNN
from models.cifar_cnn import CifarCNN
from models.femnist_cnn import FemnistCNN
from models.matrix_factorization import MatrixFactorization
from models.mcmahan_cnn import McMahanCNN
from models.mlp import MLP2NN
from models.perceptron import MLP1, Logistic
from models.small_cnn import SmallCNN
from models.vgg import VGG19

MODELS = {
    "celeba_cnn": CelebaCNN,
    "cifar_cnn": CifarCNN,
    "femnist_cnn": FemnistCNN,
    "logistic": Logistic,
    "mcmahan_cnn": McMahanCNN,
    "mf": MatrixFactorization,
    "mlp": MLP2NN,
    "mlp1": MLP1,
    "small_cnn": SmallCNN,
    "vgg19": VGG19,
}


class UnknownModelError(ValueError):
    pass


def build(name: str, **kwargs) -> nn.Module:
    """The model registered as `name`, constructed with `kwargs` (for the image models the
    input and class counts, for "mf" `num_users` and `num_items`)."""
    if name not in MODELS:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(f"unknown model {name!r}; use one of: {known}")
    return MODELS[name](**kwargs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops_per_sample(module: nn.Module, input_shape: tuple) -> float:
    """Forward FLOPs for one sample: 2 x the multiply-adds of every Conv2d and Linear layer.

    Biases, activations and pooling are left out: they are a rounding error next to the
    matrix products, and this is the count the compute model scales (x3 for a training step).
    A model built of other layers (MatrixFactorization: table look-ups and a dot product)
    states its own count as a `flops_per_sample()` method, and `input_shape` is not used.
    """
    if hasattr(module, "flops_per_sample"):
        return float(module.flops_per_sample())
    weight = next(module.parameters(), None)
    if weight is None:
        return 0.0  # no parameters, so no Conv2d or Linear layer to count
    flops = 0

    def count(layer, inputs, output):
        nonlocal flops
        if isinstance(layer, nn.Conv2d):
            macs_per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        else:
            macs_per_output = layer.in_features
        flops += 2 * output.numel() * macs_per_output

    hooks = [
        layer.register_forward_hook(count)
        for layer in module.modules()
        if isinstance(layer, (nn.Conv2d, nn.Linear))
    ]
    # Eval mode so the dummy pass leaves BatchNorm statistics untouched.
    was_training = module.training
    dummy = torch.zeros((1, *input_shape), dtype=weight.dtype, device=weight.device)
    try:
        module.eval()
        with torch.no_grad():
            module(dummy)
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    return float(flops)
