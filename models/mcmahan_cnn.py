"""The CNN of McMahan et al. (2017), the standard FedAvg benchmark model.

Reference: H. B. McMahan, E. Moore, D. Ramage, S. Hampson, B. Aguera y Arcas,
"Communication-Efficient Learning of Deep Networks from Decentralized Data", AISTATS 2017,
Section 3: two 5x5 convolutions (32 and 64 channels), each followed by 2x2 max pooling, a
fully connected layer of 512 units with ReLU, and a linear output layer.

Parameters with the defaults (1x28x28 input, 10 classes): 1,663,370.
"""

from torch import nn


class McMahanCNN(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        # "same" padding keeps the spatial size, so only the two poolings shrink it.
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 512),
            nn.ReLU(),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
