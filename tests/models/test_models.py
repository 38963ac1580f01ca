import sys

import pytest
import torch
from torch import nn

import models


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("logistic", 7_850),
        ("mcmahan_cnn", 1_663_370),
        ("mlp", 199_210),
        ("mlp1", 159_010),
        ("small_cnn", 20_490),
    ],
)
def test_parameter_counts_match_the_docstrings(name, count):
    model = models.build(name)
    assert models.count_parameters(model) == count
    assert f"{count:,}" in sys.modules[type(model).__module__].__doc__


@pytest.mark.parametrize(
    "name", ["logistic", "mcmahan_cnn", "mlp", "mlp1", "small_cnn"]
)  # the 1x28x28 models
def test_forward_shape_on_a_batch_of_two(name):
    out = models.build(name)(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("name", ["mcmahan_cnn", "small_cnn"])
def test_cnns_adapt_to_colour_images_and_class_count(name):
    model = models.build(name, in_channels=3, num_classes=100, image_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_flops_of_one_linear_layer_are_twice_its_multiply_adds():
    assert models.flops_per_sample(nn.Linear(784, 10), (784,)) == 2 * 7840


def test_flops_of_a_convolution_count_every_output_position():
    # 16 x 28 x 28 outputs, each a 1 x 3 x 3 dot product.
    conv = nn.Conv2d(1, 16, kernel_size=3, padding=1)
    assert models.flops_per_sample(conv, (1, 28, 28)) == 2 * 16 * 28 * 28 * 9


def test_flops_of_the_2nn_sum_its_layers():
    expected = 2 * (784 * 200 + 200 * 200 + 200 * 10)
    assert models.flops_per_sample(models.build("mlp"), (1, 28, 28)) == expected


def test_flops_leave_the_module_as_it_was():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    before = model[1].running_mean.clone()
    models.flops_per_sample(model, (4,))
    assert model.training
    assert torch.equal(model[1].running_mean, before)
    assert not model[0]._forward_hooks


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(
        ValueError, match="unknown model 'resnet'.*logistic, mcmahan_cnn, mf, mlp, mlp1, small_cnn"
    ):
        models.build("resnet")
