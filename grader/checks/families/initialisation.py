"""A student's initialisation function (`init_weights(module)`: re-draws the weights of the
layers it knows, resets batch norms), judged by what it does to every parameter of a network of
the grader's: `through` records each leaf layer's parameters before and after, `problem` compares
them with what the reference's function did to the same network, and asks of the re-drawn
weights what the sheet's `kaiming_uniform_(weight, nonlinearity="relu")` gives: values within
its bound sqrt(6 / fan_in) that fill it as a uniform draw does (a normal draw overshoots the bound,
PyTorch's default draw, zeros or a constant fill a fraction of it), and biases within
1 / sqrt(fan_in). The networks are the grader's (`network`: every kind of layer such a function
handles, nested, and a bare layer; sized by `SIZES`); `observe` records `through` for each. Not a
family: an assignment's own check declares the observer and its judge with these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from grader.checks import kit
from grader.checks.common import WrongValue, same_values


def leaf_parameters(module: nn.Module) -> list[tuple[str, str, torch.Tensor]]:
    """(layer type, parameter name, a copy of its values) of every layer without children, in
    order."""
    leaves = [m for m in module.modules() if not list(m.children())]
    return [
        (type(m).__name__, n, p.detach().clone())
        for m in leaves
        for n, p in m.named_parameters(recurse=False)
    ]


def through(init, net: nn.Module) -> dict:
    """Every leaf parameter of `net` before and after `init(net)`, as {"params": [{"layer",
    "name", "before_tensor", "after_tensor"}]}; a `WrongValue` when their number changed."""
    before = leaf_parameters(net)
    init(net)
    after = leaf_parameters(net)
    if len(after) != len(before):
        raise WrongValue("its parameters changed in number")
    return {
        "params": [
            {"layer": layer, "name": name, "before_tensor": old, "after_tensor": new}
            for (layer, name, old), (_, _, new) in zip(before, after, strict=True)
        ]
    }


NETWORKS = [
    "init_weights on a Conv2d/Linear/BatchNorm1d network",
    "init_weights on a bare nn.Linear",
]
# A linear layer as wide as its inputs or wider: xavier_uniform_'s bound sqrt(6 / (fan_in +
# fan_out)) is then at most 0.71 of the sheet's (with few outputs it is within 0.9 of it).
SIZES = {"channels": (2, 6), "hidden": (96, 128), "features": (2, 9)}  # drawn per run


def network(i: int, s: Mapping[str, Any]) -> nn.Module:
    """Network i of NETWORKS, of the sizes `s` (SIZES' keys): every kind of layer an
    init_weights handles (convolution, linear, batch norm), nested; a bare layer."""
    channels, hidden, features = int(s["channels"]), int(s["hidden"]), int(s["features"])
    if i == 1:
        return nn.Linear(features, hidden)
    net = nn.Sequential(
        nn.Conv2d(1, channels, 3),  # (N, 1, 6, 6) -> (N, channels, 4, 4)
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * 16, hidden),
        nn.Sequential(nn.Linear(hidden, features), nn.BatchNorm1d(features), nn.ReLU()),
        nn.Linear(features, 2),
    )
    with torch.no_grad():  # away from batch norm's start, so that a reset shows
        net[4][1].weight.uniform_(2.0, 3.0)
        net[4][1].bias.uniform_(1.0, 2.0)
    return net


def observe(init, s: Mapping[str, Any]) -> dict:
    """{"nets": `through`} for each of NETWORKS, of the sizes `s`, each built after its case's
    seed (`kit.per_setting` from s["seed"]), so that `init` draws other values than the
    network's own initialisation did."""
    return {
        "nets": kit.per_setting(NETWORKS, int(s["seed"]), lambda i, _: through(init, network(i, s)))
    }


# Weights divided by their bound are uniform on [-1, 1] (std 1/sqrt(3) = 0.577) when drawn by
# kaiming_uniform_: over at least MIN_WEIGHTS of them the sample std is within 4.9 standard errors
# of that in FILLED_STD; PyTorch's default draw gives 0.236. Judged layer by layer (pooled, a
# narrow layer's near-right draw hid a wide one's), the layers with fewer weights by their bounds.
FILLED_STD, MIN_WEIGHTS = (0.45, 0.7), 100


def _kaiming_problem(params: list[dict]) -> str | None:
    """What is not a kaiming_uniform_(relu) draw among `params` (the layers' re-drawn weights
    and biases, in order: a bias follows its layer's weight)."""
    scaled, fan_in = [], 1
    for p in params:
        new = p["after_tensor"]
        if p["name"] == "weight":
            fan_in = new[0].numel()
            bound, what = math.sqrt(6 / fan_in), "kaiming_uniform_'s bound sqrt(6 / fan_in)"
            scaled.append(new.flatten().double() / bound)
        else:
            bound, what = 1 / math.sqrt(fan_in), "1 / sqrt(fan_in)"
        if new.abs().max() > bound * (1 + 1e-5):
            return f"{p['layer']}.{p['name']} has values beyond {what} = {bound:.4f}"
    stds = [float(s.std()) for s in scaled if len(s) >= MIN_WEIGHTS]
    std = next((x for x in stds if not FILLED_STD[0] <= x <= FILLED_STD[1]), None)
    if std is not None:
        return (
            f"the weights are not drawn by kaiming_uniform_(weight, nonlinearity='relu'): scaled "
            f"by its bound sqrt(6 / fan_in) their standard deviation is {std:.3f}, not about 0.577"
        )
    return None


def problem(entry: dict, want: dict, ctx=None, i: int = 0) -> str | None:
    """What is wrong with what the student's function did (`through`'s `entry`), compared with
    the reference's on the same network (`want`): a parameter that is not finite, a batch norm
    not reset as the reference resets it, any other parameter that kept its value or is not
    drawn as the sheet says (`_kaiming_problem`). A test for
    `kit.judged` (`ctx` and `i` are not needed)."""
    if len(entry["params"]) != len(want["params"]):
        return "its parameters changed in number"
    problems = []
    for got, ref in zip(entry["params"], want["params"], strict=True):
        label, old, new = f"{got['layer']}.{got['name']}", got["before_tensor"], got["after_tensor"]
        if not same_values(old, ref["before_tensor"]):
            return "the grader's network was not the one it built"  # tampering, or a bug
        if not isinstance(new, torch.Tensor) or not torch.isfinite(new).all():
            problems.append(f"{label} is not finite")
        elif ref["layer"].startswith("BatchNorm"):
            if not same_values(new, ref["after_tensor"]):
                problems.append(f"{label} was not reset (scale 1, shift 0)")
        elif torch.equal(new, old):
            problems.append(f"{label} kept its value")
    drawn = [p for p in entry["params"] if not p["layer"].startswith("BatchNorm")]
    if not problems and (wrong := _kaiming_problem(drawn)):
        problems.append(wrong)
    return "; ".join(problems) or None
