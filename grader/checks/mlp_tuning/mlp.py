"""`mlp_tuning`'s MLP checks that the modules family does not make: its activation (what its
hidden layer computes from its own pre-activations) and its dropout (off in evaluation mode, p
and 1/(1-p) in training mode), each judged on numbers that do not depend on the other."""

from __future__ import annotations

import torch
from torch import nn

from grader.checks import kit
from grader.checks.common import WrongValue, a_module, inputs, same_values
from grader.checks.families import behaviour
from grader.checks.families.linears import linear_calls
from grader.checks.kit import judged
from grader.checks.mlp_tuning.shared import SIDE
from grader.spec import Definitions

OWN = Definitions()
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
MODES = ("evaluation", "training")


def _hidden(model: nn.Module, x: torch.Tensor, *, training: bool, seed: int) -> dict:
    """The first linear layer's output (pre-activation) and what reaches the second linear layer
    (the first hidden layer's activation, after dropout), for one forward pass."""
    calls = linear_calls(model, x, training=training, seed=seed)
    if len(calls) < 2:
        raise ValueError(
            f"{len(calls)} nn.Linear layer calls in forward: hidden layers must be nn.Linear "
            "modules, followed by an output nn.Linear"
        )
    return {"pre_tensor": calls[0][1], "post_tensor": calls[1][0]}


def _fixed_mlp(MLP, seed: int, **kwargs) -> nn.Module:  # noqa: N803 - the student's class
    """The student's MLP(hidden_layers=2, **kwargs), every parameter at its fixed value."""
    model = a_module(MLP(hidden_layers=2, **kwargs))
    behaviour.fix_parameters(model, seed, inputs(1, 1, SIDE, SIDE, seed=seed))  # LazyLinear
    return model


@OWN.observer(draw=kit.draws({"width": (8, 200)}))
def mlp_hidden(ctx) -> dict:
    """MLP(hidden_layers=2, width, activation, dropout=0) for each activation, under fixed
    weights in evaluation mode: pre-activations of the first hidden layer and its outputs."""
    MLP = ctx.get("MLP")  # noqa: N806 - the student's class
    seed, width = int(ctx.settings["seed"]), int(ctx.settings["width"])
    x = inputs(6, 1, SIDE, SIDE, seed=seed)

    def run(i, name):
        model = _fixed_mlp(MLP, seed, width=width, activation=name, dropout=0.0)
        return _hidden(model, x, training=False, seed=seed)

    return {"runs": kit.per_setting(list(ACTIVATIONS), seed, run)}


@judged(
    OWN,
    mlp_hidden,
    "runs",
    lambda ctx, i, want: f"MLP(activation={list(ACTIVATIONS)[i]!r})",
    hint="each hidden layer must use the activation the argument names",
)
def mlp_activation(entry, want, ctx, i) -> str | None:
    # What the hidden layer computes from its pre-activations, whatever the widths (mlp_parameters')
    pre, post = entry["pre_tensor"], entry["post_tensor"]
    used = [
        n for n, f in ACTIVATIONS.items() if pre.shape == post.shape and same_values(post, f(pre))
    ]
    name = list(ACTIVATIONS)[i]
    if name in used:
        return None
    return f"applies {used[0]}" if used else f"its hidden layer does not apply {name}"


DROPOUT = {
    "width": (200, 400),
    "p": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    # Not relu: it commutes with dropout (zeros, 1/(1-p)), so it cannot tell dropout after the
    # activation from dropout before it.
    "activation": [a for a in ACTIVATIONS if a != "relu"],
}


@OWN.observer(draw=kit.draws(DROPOUT))
def mlp_dropout(ctx) -> dict:
    """In each mode, the first hidden layer's outputs of MLP(dropout=p) and of the same MLP with
    dropout=0, under the same fixed weights and seed: what dropout alone changes."""
    MLP = ctx.get("MLP")  # noqa: N806
    s, seed = ctx.settings, int(ctx.settings["seed"])
    x = inputs(16, 1, SIDE, SIDE, seed=seed)

    def run(i, mode):
        entry, models = {}, {}
        for key, p in (("dropout", float(s["p"])), ("none", 0.0)):
            models[key] = _fixed_mlp(
                MLP, seed, width=int(s["width"]), activation=s["activation"], dropout=p
            )
            hidden = _hidden(models[key], x, training=mode == "training", seed=seed + 1)
            entry[f"{key}_tensor"] = hidden["post_tensor"]
        # Dropout in place (nn.Dropout(inplace=True)) computes the right outputs but overwrites
        # the activation's, which its gradient needs: such an MLP cannot be trained.
        broken = mode == "training" and behaviour.backward_error(models["dropout"], x)
        if broken and not behaviour.backward_error(models["none"], x):
            raise WrongValue(
                f"training it raises in backward ({broken}): dropout in place (inplace=True) "
                "overwrites the activation's output, which the activation's gradient needs"
            )
        return entry

    return {"modes": kit.per_setting(MODES, seed, run)}


def _dropout_where(ctx, i, want) -> str:
    s = ctx.settings
    return f"MLP(dropout={float(s['p'])}, activation={s['activation']!r}) in {MODES[i]} mode"


@judged(OWN, mlp_dropout, "modes", _dropout_where)
def mlp_dropout_modes(entry, want, ctx, i) -> str | None:
    with_dropout, without = entry["dropout_tensor"], entry["none_tensor"]
    if MODES[i] == "training":
        return behaviour.dropout_problem(with_dropout, without, float(ctx.settings["p"]))
    if not same_values(with_dropout, without):
        return (
            "its hidden outputs differ from those of the same MLP with dropout=0: dropout must "
            "be off after model.eval() (nn.Dropout, or F.dropout(..., training=self.training))"
        )
    return None
