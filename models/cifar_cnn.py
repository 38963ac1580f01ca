"""The seed CNN of Mirzaei's study of decentralized training on CIFAR-10.

Three convolutions with ReLU, each followed by 2x2 max pooling, and a linear classifier:

    conv 5x5, 64   + ReLU + maxpool 2x2     3x32x32 -> 64x16x16
    conv 5x5, 128  + ReLU + maxpool 2x2             -> 128x8x8
    conv 3x3, 64   + ReLU + maxpool 2x2             -> 64x4x4
    flatten + linear 1024 -> 10

"Same" padding (2 for 5x5, 1 for 3x3) keeps each convolution's spatial size, so only the
poolings shrink it. There is no hidden fully connected layer: the convolutions carry the
capacity, and a single linear map keeps the parameter count, and so every message, small.

Parameters with the defaults (3x32x32 input, 10 classes): 293,834.
"""

from torch import nn


class CifarCNN(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        side = image_size // 8
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(128, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * side * side, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
