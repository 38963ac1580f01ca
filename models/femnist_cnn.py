"""The FEMNIST CNN of decentralizepy, the model of its FEMNIST experiments.

Reference: A. Dhasade, A.-M. Kermarrec, R. Pires, R. Sharma, M. Vujasinovic,
"Decentralized Learning Made Easy with DecentralizePy", EuroMLSys 2023,
https://github.com/sacs-epfl/decentralizepy (``datasets/Femnist.py``, class ``CNN``).

It is McMahan et al.'s CNN (models/mcmahan_cnn.py) with one output per FEMNIST class
(10 digits, 26 upper and 26 lower case letters), so it is that class with another default:

    conv 5x5, 32 (same) + ReLU + maxpool 2x2     1x28x28 -> 32x14x14
    conv 5x5, 64 (same) + ReLU + maxpool 2x2             -> 64x7x7
    linear 3136 -> 512 + ReLU, linear 512 -> 62

Parameters with the defaults (1x28x28 input, 62 classes): 1,690,046.
"""

import functools

from models.mcmahan_cnn import McMahanCNN

FemnistCNN = functools.partial(McMahanCNN, num_classes=62)
