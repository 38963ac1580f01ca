import sys

import torch

import models
from models.cifar_cnn import CifarCNN


def test_parameter_count_matches_the_docstring():
    # conv 3->64 5x5, conv 64->128 5x5, conv 128->64 3x3, linear 64*4*4 -> 10, with biases.
    expected = (3 * 25 + 1) * 64 + (64 * 25 + 1) * 128 + (128 * 9 + 1) * 64 + (1024 + 1) * 10
    assert expected == 293_834
    model = models.build("cifar_cnn")
    assert isinstance(model, CifarCNN)
    assert models.count_parameters(model) == expected
    assert "293,834" in sys.modules[CifarCNN.__module__].__doc__


def test_forward_shape_on_cifar_images():
    assert models.build("cifar_cnn")(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_adapts_to_the_shape_the_simulation_passes():
    model = models.build("cifar_cnn", num_classes=7, in_channels=1, image_size=28)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)


def test_flops_per_sample_count_every_layer():
    # 2 x multiply-adds: each convolution at its (same-padded) input size, then the linear map.
    expected = 2 * (
        64 * 32 * 32 * 3 * 25 + 128 * 16 * 16 * 64 * 25 + 64 * 8 * 8 * 128 * 9 + 10 * 1024
    )
    assert models.flops_per_sample(models.build("cifar_cnn"), (3, 32, 32)) == expected > 0
