"""McMahan's "2NN": a multilayer perceptron with two hidden layers of 200 ReLU units.

Reference: H. B. McMahan, E. Moore, D. Ramage, S. Hampson, B. Aguera y Arcas,
"Communication-Efficient Learning of Deep Networks from Decentralized Data", AISTATS 2017,
Section 3.

Parameters with the defaults (784 inputs, 10 classes): 199,210.
"""

from torch import nn


class MLP2NN(nn.Module):
    def __init__(self, in_features: int = 784, hidden: int = 200, num_classes: int = 10):
        super().__init__()
        # Flatten first so image batches (B, C, H, W) can be fed unchanged.
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.layers(x)
