"""The sheet's constants that the parts of `mlp_tuning`'s own checks share."""

from __future__ import annotations

SIDE = 28  # Fashion-MNIST images are 28x28
CLASSES = 10
ARCHITECTURE = ("hidden_layers", "width", "activation", "dropout")  # MLP's arguments
SWITCHES = ("flip", "rotation", "resized_crop")  # make_transforms' augmentation switches
EPSILON = 1e-5  # the sheet's addition to the standard deviation
