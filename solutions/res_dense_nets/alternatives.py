"""Readings of the instructions as right as the reference's, each accepted (manifest
`[alternatives]`, grader/reference.py).

Each `# %% alternative: <name>` section replaces definitions of student.py in a copy of its
namespace: the reference's DenseNet, which looks DenseBlock up by name, is then built on it.
"""

import torch
from torch import nn

# %% alternative: newest_first


class DenseBlock(nn.Module):
    """The reference's block, concatenating the newest feature maps in front:
    [x_l, ..., x_1, x_0] instead of [x_0, x_1, ..., x_l]."""

    def __init__(self, in_channels, num_layers, growth_rate):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(in_channels + i * growth_rate),
                nn.ReLU(),
                nn.Conv2d(in_channels + i * growth_rate, growth_rate, kernel_size=3, padding=1),
            )
            for i in range(num_layers)
        )

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([layer(x), x], dim=1)
        return x
