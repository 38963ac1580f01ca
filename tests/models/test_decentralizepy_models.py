import pytest
import torch

import models
from models import celeba_cnn, femnist_cnn, matrix_factorization
from models.celeba_cnn import CelebaCNN
from models.matrix_factorization import MatrixFactorization
from netsim.data import load


@pytest.mark.parametrize(
    ("name", "kwargs", "count"),
    [
        # conv 1->32 5x5, conv 32->64 5x5, linear 64*7*7 -> 512, linear 512 -> 62, with biases.
        ("femnist_cnn", {}, (25 + 1) * 32 + (32 * 25 + 1) * 64 + (3136 + 1) * 512 + 513 * 62),
        # 4 x (conv 3x3 to 32 + BatchNorm scale and shift), linear 32*6*6 -> 2.
        ("celeba_cnn", {}, (3 * 9 + 1) * 32 + 3 * (32 * 9 + 1) * 32 + 4 * 64 + (1152 + 1) * 2),
        # (users + items) x (20 factors + 1 bias) + the global bias.
        ("mf", {"num_users": 610, "num_items": 9724}, (610 + 9724) * 21 + 1),
    ],
)
def test_parameter_counts_match_the_docstrings(name, kwargs, count):
    assert count in (1_690_046, 31_202, 217_015)
    assert models.count_parameters(models.build(name, **kwargs)) == count
    module = {"femnist_cnn": femnist_cnn, "celeba_cnn": celeba_cnn, "mf": matrix_factorization}
    assert f"{count:,}" in module[name].__doc__


def test_femnist_cnn_has_decentralizepys_layers_and_62_outputs():
    model = models.build("femnist_cnn")
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [
        (32, 1, 5, 5),
        (32,),
        (64, 32, 5, 5),
        (64,),
        (512, 3136),
        (512,),
        (62, 512),
        (62,),
    ]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 62)
    # The simulation passes the data set's shape.
    assert models.build("femnist_cnn", num_classes=10, in_channels=3, image_size=32)(
        torch.randn(2, 3, 32, 32)
    ).shape == (2, 10)


def test_celeba_cnn_pools_like_tensorflows_same_padding():
    model = models.build("celeba_cnn")
    assert isinstance(model, CelebaCNN)
    assert model.features(torch.randn(2, 3, 84, 84)).shape == (2, 32, 6, 6)
    assert model(torch.randn(2, 3, 84, 84)).shape == (2, 2)
    assert [tuple(b.shape) for b in model.buffers()][:2] == [(32,), (32,)]  # running statistics
    assert models.build("celeba_cnn", in_channels=1, image_size=28)(
        torch.randn(2, 1, 28, 28)
    ).shape == (2, 2)


def test_matrix_factorization_predicts_biases_plus_dot_product():
    torch.manual_seed(0)
    model = models.build("mf", num_users=3, num_items=4, dim=5)
    x = torch.tensor([[0, 0], [2, 3], [1, 3]])
    p, q = model.p.weight, model.q.weight
    want = torch.stack(
        [model.mu[0] + model.b_u.weight[u, 0] + model.b_i.weight[i, 0] + p[u] @ q[i] for u, i in x]
    )
    got = model(x)
    assert got.shape == (3,) and torch.allclose(got, want)
    assert p.abs().max() < 0.06 and model.mu.item() == 0  # small normal(0, 0.01) start


def test_matrix_factorization_learns_the_synthetic_ratings():
    ds = load("synthetic_movielens")
    torch.manual_seed(0)
    model = MatrixFactorization(ds.num_users, ds.num_items)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = torch.randint(len(ds.y_train), (500, 32), generator=torch.Generator().manual_seed(0))
    for idx in batches:
        loss = ((model(ds.x_train[idx]) - ds.y_train[idx]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        mse = ((model(ds.x_test) - ds.y_test) ** 2).mean()
    baseline = ((ds.y_train.mean() - ds.y_test) ** 2).mean()  # predict the mean rating
    assert mse < 0.8 * baseline


def test_flops_per_sample_of_every_model():
    femnist = 2 * (32 * 28 * 28 * 25 + 64 * 14 * 14 * 32 * 25 + 3136 * 512 + 512 * 62)
    assert models.flops_per_sample(models.build("femnist_cnn"), (1, 28, 28)) == femnist
    sides = (84, 42, 21, 11)
    celeba = 2 * (sum(32 * s * s * c * 9 for s, c in zip(sides, (3, 32, 32, 32), strict=True)))
    celeba += 2 * 1152 * 2
    model = models.build("celeba_cnn")
    before = model.features[1].running_mean.clone()
    assert models.flops_per_sample(model, (3, 84, 84)) == celeba
    assert torch.equal(model.features[1].running_mean, before) and model.training
    # The simulator passes a data set's input shape, (2,) for ratings; look-ups cost nothing.
    mf = models.build("mf", num_users=3, num_items=4, dim=7)
    assert models.flops_per_sample(mf, (2,)) == 2 * 7
