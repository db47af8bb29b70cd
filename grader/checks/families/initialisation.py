"""A student's initialisation function (`init_weights(module)`: re-draws the weights of the
layers it knows, resets batch norms), judged by what it does to every parameter of a network of
the grader's: `through` records each leaf layer's parameters before and after, `problem` compares
them with what the reference's function did to the same network. Not a family: an assignment's
own check builds the networks its sheet names and uses these.
"""

from __future__ import annotations

import torch
from torch import nn

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


def problem(entry: dict, want: dict, ctx=None, i: int = 0) -> str | None:
    """What is wrong with what the student's function did (`through`'s `entry`), compared with
    the reference's on the same network (`want`): a parameter that is not finite, a batch norm
    not reset as the reference resets it, any other parameter that kept its value. A test for
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
    return "; ".join(problems) or None
