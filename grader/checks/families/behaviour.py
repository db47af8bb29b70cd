"""Behaviour under fixed weights: the same parameter values, chosen from each shape alone.

Two modules that compute the same function give the same outputs once every parameter holds a
value that depends only on its shape (and the run's seed): parameter names, their order, the
module layout (`nn.Sequential`, functional calls, other attribute names) do not matter, the
computation does. An activation in another place, a pooling window that keeps the output size
but averages other pixels, a missing skip connection: the outputs differ.

Values: tensors of two or more dimensions get uniform values scaled by 1/sqrt(fan_in) (so
activations stay of order one through deep stacks); vectors (biases, batch-norm scales and
shifts) get values in [0.5, 1.5), positive so that a batch-norm scale never flips a sign.
Buffers (batch-norm running statistics) keep their initial values.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import nn


def value_for(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The fixed value of any parameter of `shape` in a run seeded with `seed`."""
    salt = zlib.crc32(repr(tuple(shape)).encode())
    generator = torch.Generator().manual_seed((seed * 1_000_003 + salt) % (2**63))
    uniform = torch.rand(shape, generator=generator)
    if len(shape) <= 1:
        return 0.5 + uniform
    fan_in = math.prod(shape[1:])
    return (uniform * 2 - 1) * math.sqrt(3 / fan_in)


@torch.no_grad()
def fix_parameters(module: nn.Module, seed: int) -> None:
    """Give every parameter of `module` its shape's fixed value."""
    for parameter in module.parameters():
        parameter.copy_(value_for(tuple(parameter.shape), seed))


def outputs(module: nn.Module, x: torch.Tensor, seed: int) -> dict:
    """The module's outputs on `x` under fixed weights, in evaluation then training mode.

    Evaluation first, while batch-norm running statistics still hold their initial values;
    dropout masks come from the seeded global generator, the same for student and reference.
    """
    fix_parameters(module, seed)
    seen = {}
    for mode in ("eval", "train"):
        module.train(mode == "train")
        torch.manual_seed(seed)
        with torch.no_grad():
            out = module(x)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            seen[f"{mode}_tensor"] = out.detach().float()
        else:
            seen[f"{mode}_output"] = f"<{type(out).__name__}, not a float tensor>"
    return seen
