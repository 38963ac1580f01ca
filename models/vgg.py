"""VGG-19 for 32x32 inputs (Simonyan and Zisserman 2015, configuration E), as used on CIFAR-10
by the parameter-server study (Cui 2019): sixteen 3x3 convolutions with ReLU in five blocks,
each block closed by 2x2 max pooling, then one linear classifier on the 512 features left at
1x1 (the CIFAR variant drops the 4096-wide ImageNet head).

    block 1: 64, 64            32x32 -> 16x16
    block 2: 128, 128                -> 8x8
    block 3: 256 x 4                 -> 4x4
    block 4: 512 x 4                 -> 2x2
    block 5: 512 x 4                 -> 1x1
    flatten + linear 512 -> 10

No batch normalisation: the model is here for its size (20,029,514 parameters, 80 MB of
float32 per message) in network studies, and a model without buffers keeps netsim's batched
step computation available. Inputs smaller than 32x32 are refused (five poolings).
"""

from torch import nn

CONFIG_E = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)


class VGG19(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        if image_size < 32:
            raise ValueError(
                f"vgg19 needs inputs of at least 32x32 (five poolings), got {image_size}"
            )
        layers, channels = [], in_channels
        for width in CONFIG_E:
            if width == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU()]
                channels = width
        side = image_size // 32
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(512 * side * side, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
