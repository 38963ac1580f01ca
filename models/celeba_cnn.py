"""LEAF's CelebA CNN: is the celebrity smiling?

Reference: S. Caldas et al., "LEAF: A Benchmark for Federated Settings", 2018,
https://github.com/TalwalkarLab/leaf (``models/celeba/cnn.py``). Four blocks, then a linear
classifier on the flattened features:

    conv 3x3, 32 (same) + BatchNorm + maxpool 2x2 + ReLU     3x84x84 -> 32x42x42
    ... three more blocks of 32 channels                            -> 32x21x21, 32x11x11, 32x6x6
    flatten + linear 1152 -> 2

LEAF pools with TensorFlow's "same" padding, which rounds odd sizes up (21 -> 11 -> 6);
``ceil_mode`` does the same here. decentralizepy's port drops the BatchNorm and rounds down
(to 5x5), for 30,242 parameters.

Parameters with the defaults (3x84x84 input, 2 classes): 31,202, of which 256 are BatchNorm
scales and shifts; the BatchNorm running statistics are buffers.
"""

from torch import nn


class CelebaCNN(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 2, image_size: int = 84):
        super().__init__()
        blocks, side = [], image_size
        for channels in (in_channels, 32, 32, 32):
            blocks += [
                nn.Conv2d(channels, 32, kernel_size=3, padding=1),
                nn.BatchNorm2d(32),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.ReLU(),
            ]
            side = -(-side // 2)
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * side * side, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
