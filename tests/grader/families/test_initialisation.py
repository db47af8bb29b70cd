"""Does the initialisation judge hold init_weights to the sheet's kaiming_uniform_ draw in every
grading run (the networks are drawn per course), and accept every way of making that draw?"""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from grader.checks.families import initialisation
from solutions.fnn_mnist.student import init_weights as reference

LAYERS = (nn.Linear, nn.Conv2d)


def _by_hand(model):  # the same distribution from its formula, biases zero
    for m in model.modules():
        if isinstance(m, LAYERS):
            bound = math.sqrt(6 / m.weight[0].numel())
            m.weight.data.uniform_(-bound, bound)
            m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm1d):
            m.reset_parameters()


def _normal(model):
    for m in model.modules():
        if isinstance(m, LAYERS):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            m.reset_parameters()


def _default(model):
    for m in model.modules():
        if isinstance(m, LAYERS + (nn.BatchNorm1d,)):
            m.reset_parameters()


def _problems(init, network: int, seeds=range(200)) -> list:
    found = []
    for seed in seeds:
        r = random.Random(seed)
        sizes = {k: r.randint(*span) for k, span in initialisation.SIZES.items()}
        torch.manual_seed(seed)
        want = initialisation.through(reference, initialisation.network(network, sizes))
        torch.manual_seed(seed)
        found.append(
            initialisation.problem(
                initialisation.through(init, initialisation.network(network, sizes)), want
            )
        )
    return found


@pytest.mark.parametrize("network", [0, 1])
@pytest.mark.parametrize("init", [reference, _by_hand], ids=["reference", "by hand"])
def test_is_every_kaiming_uniform_draw_accepted(init, network):
    assert [p for p in _problems(init, network) if p] == []


def _xavier(model):  # blind round 10: on the old sizes its draw passed as the sheet's
    for m in model.modules():
        if isinstance(m, LAYERS):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            m.reset_parameters()


@pytest.mark.parametrize(
    "init", [_normal, _default, _xavier], ids=["kaiming_normal_", "PyTorch's default", "xavier"]
)
@pytest.mark.parametrize("network", [0, 1])
def test_is_another_draw_refused(init, network):
    assert all(_problems(init, network))
