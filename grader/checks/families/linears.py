"""Linear layers as a forward pass applies them, for checks of what a network computes inside
(`linear_calls`: mlp_tuning's own, behaviour's fc features): nn.Linear modules, F.linear on
parameters of the network's own, or the product with a weight written out (`x @ W.T + b`,
torch.addmm, torch.mm, torch.einsum: blind round 14b, mlp_tuning n03 and n04, charged
mlp_activation and mlp_dropout_modes for "0 nn.Linear layer calls"). Not a family.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from grader.checks.common import modules_of_type

_PRODUCTS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm}
_PRODUCTS |= {torch.einsum}
_ADDS = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__}
_ADDS |= {torch.Tensor.add_, torch.Tensor.__iadd__}


class _FunctionalLinears(torch.overrides.TorchFunctionMode):
    """Records (input, output) of every F.linear call (nn.Linear's own included) under it, and
    of every product of a tensor with one of `model`'s 2-d parameters (or a view of one: W.T),
    each output taken after the bias parameter added to it right after, if any."""

    def __init__(self, calls: list, model: nn.Module, own: bool = False):
        super().__init__()
        self.calls, self.product, self.own = calls, None, own  # own: F.linear on its weights only
        self.weights = {id(p) for p in model.parameters() if p.dim() == 2}
        self.biases = {id(p) for p in model.parameters() if p.dim() == 1}

    def _weight(self, t) -> bool:
        return id(t) in self.weights or id(getattr(t, "_base", None)) in self.weights

    def __torch_function__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        product, self.product = self.product, None
        if not isinstance(output, torch.Tensor):
            return output
        if func in _ADDS and product is not None and any(t is product for t in tensors):
            if any(id(t) in self.biases for t in tensors):  # x @ W.T + b: the layer's output
                self.calls[-1] = (self.calls[-1][0], output.detach().clone())
            return output
        given = None
        if func is F.linear:
            weight = args[1] if len(args) > 1 else (kwargs or {}).get("weight")
            given = args[0] if not self.own or self._weight(weight) else None
        elif func in (torch.addmm, torch.Tensor.addmm) and len(tensors) == 3:
            given = tensors[1] if self._weight(tensors[2]) else None
        elif func in _PRODUCTS and len(tensors) == 2:
            weights = [self._weight(t) for t in tensors]
            given = tensors[weights.index(False)] if sum(weights) == 1 else None
        if given is not None:  # its bias may come next: F.linear(h, W) + b, h @ W.T + b
            self.calls.append((given.detach().clone(), output.detach().clone()))
            self.product = output
        return output


def linear_calls(
    model: nn.Module, x: torch.Tensor, *, training: bool, seed: int, own: bool = False
) -> list:
    """(input, output) of every linear layer call, in call order, in one forward pass of `x` in
    the given mode, without gradients, after `torch.manual_seed(seed)` (dropout's masks): of
    every nn.Linear call (a forward hook), or of every linear layer applied otherwise when those
    are more (`_FunctionalLinears`; F.linear on an nn.ParameterList's weights: blind round 14,
    mlp_tuning s14). `own`: F.linear calls count only on the model's own weights (a layer made
    inside forward is none of its layers)."""
    calls: list = []
    functional: list = []

    def hook(module, args, output):
        calls.append((args[0].detach().clone(), output.detach().clone()))

    handles = [m.register_forward_hook(hook) for m in modules_of_type(model, nn.Linear)]
    model.train(training)
    torch.manual_seed(seed)
    try:
        with torch.no_grad(), _FunctionalLinears(functional, model, own):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return functional if len(functional) > len(calls) else calls
