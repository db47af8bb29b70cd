"""Layers a student built of their own matrices, kept (in, out) rather than nn.Linear's
(out, in) and applied as `x @ W` or by einsum: they compute what nn.Linear does, and are read so.

Blind round 18 (cifar_cnn_svm s11): a Dense of (in, out) nn.Parameters, right, lost its shape
check ("unexpected parameters of shape 3072x256") and would have lost its behaviour check, as
each parameter shape gets its own fixed values (`behaviour.value_for`). `behaviour.outputs`
records the outputs with these matrices given the transpose of nn.Linear's values; the module
checks accept that reading, which can only turn a failure into a pass where the computation is
the reference's.
"""

from __future__ import annotations

import torch
from torch import nn

from grader.checks.common import same_values

MODES = ("eval", "train")


def hand_matrices(module: nn.Module) -> list[nn.Parameter]:
    """The non-square matrices registered by hand (nn.Parameter attributes, a ParameterList),
    not a torch layer's weight, whose (out, in) layout torch fixes. Kept as (in, out) and applied
    as `x @ W` or by einsum, such a layer computes what nn.Linear does."""
    lists = (nn.ParameterList, nn.ParameterDict)
    own = [m for m in module.modules() if isinstance(m, lists) or not _torch_layer(m)]
    return [p for m in own for p in m.parameters(recurse=False) if p.dim() == 2 and _oblong(p)]


def _torch_layer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.")


def _oblong(matrix: torch.Tensor) -> bool:  # a square one reads the same either way round
    return matrix.shape[0] != matrix.shape[1]


def transposed_layout(seen: dict, want: dict, outputs: bool = False) -> bool:
    """Whether the parameter shapes are the reference's once the matrices registered by hand
    ("hand_shapes": `hand_matrices`) are read as (in, out); with `outputs`, whether the outputs
    are then too, in both modes (`_transposed`). Blind round 18: a Dense of (in, out)
    nn.Parameters applied as x @ W, right, lost its shape check ("unexpected parameters of shape
    3072x256")."""
    hand, rest = seen.get("hand_shapes") or [], list(seen.get("param_shapes") or [])
    for shape in hand:
        if shape not in rest:
            return False
        rest.remove(shape)
    if not hand or sorted(rest + [s[::-1] for s in hand]) != want.get("param_shapes"):
        return False
    return not outputs or all(
        same_values(seen.get(f"transposed_{m}_tensor"), want.get(f"{m}_tensor")) for m in MODES
    )
