"""Single-layer and one-hidden-layer perceptrons: the small models of scale studies.

``Logistic`` is multinomial logistic regression (one linear layer): 7,850 parameters with the
defaults (784 inputs, 10 classes). ``MLP1`` has one hidden layer of 200 ReLU units
(784-200-10): 159,010 parameters with the defaults. Both are plain chains of Flatten, Linear
and ReLU, so netsim can run many nodes' steps on them as stacked batched matrix products.
"""

from torch import nn


class Logistic(nn.Module):
    def __init__(self, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))

    def forward(self, x):
        return self.layers(x)


class MLP1(nn.Module):
    def __init__(self, in_features: int = 784, hidden: int = 200, num_classes: int = 10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.layers(x)
