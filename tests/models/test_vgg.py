import pytest
import torch

import models
from models import vgg


def test_vgg19_has_its_documented_size_and_flops():
    model = models.build("vgg19")
    assert models.count_parameters(model) == 20_029_514
    assert "20,029,514" in vgg.__doc__
    # sixteen 3x3 convolutions and one linear layer: 2 x multiply-adds, counted by hand
    sizes = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16)]
    sizes += [(128, 256, 8)] + [(256, 256, 8)] * 3
    sizes += [(256, 512, 4)] + [(512, 512, 4)] * 3 + [(512, 512, 2)] * 4
    macs = sum(cin * cout * 9 * side * side for cin, cout, side in sizes) + 512 * 10
    assert models.flops_per_sample(model, (3, 32, 32)) == 2 * macs


def test_vgg19_classifies_a_batch_and_refuses_small_images():
    assert models.build("vgg19")(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="32x32"):
        models.build("vgg19", in_channels=1, image_size=28)
