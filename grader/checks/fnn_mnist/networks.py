"""FNN and DeepFNN, judged with the student's own `dense_layer` in place (a dense-layer
mistake is charged to the dense-layer checks only); `init_weights` on networks of the grader's;
the number answers, right when they match the reference's or are true of the student's own
FNNs (so an FNN or dense-layer mistake is not charged again)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from grader.checks import common, kit
from grader.checks.families import answers as answers_family
from grader.checks.families import behaviour, initialisation, modules
from grader.checks.families.behaviour import gradient_problem, parametrized_hint, same_outputs
from grader.checks.families.modules import single_problem, structure, torch_value
from grader.checks.kit import judged
from grader.spec import Definitions

OWN = Definitions()


def _deep_fnn_layers(values: list) -> list[tuple]:
    """The dense_layer calls DeepFNN(*values) is made of (classes already resolved)."""
    size_in, hidden_sizes, size_out, activation, batch_norm = values
    widths = [size_in, *hidden_sizes]
    hidden = [(a, b, activation, batch_norm) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return [*hidden, (widths[-1], size_out)]  # the output layer: no activation, no batch norm


def _fnn_layers(values: list) -> list[tuple]:  # FNN(i, h, o, ...) is DeepFNN(i, [h, h], o, ...)
    return _deep_fnn_layers([values[0], [values[1]] * 2, *values[2:]])


def _observe_network(ctx, entry: str, layers: Callable[[list], list[tuple]]) -> dict:
    """Per setting of manifest entry `entry`: the student's network's `structure` (families.
    modules), and that of the network the instructions describe made of the student's own
    dense_layer ("composed_")."""
    spec, seed = ctx.module(entry), int(ctx.settings["seed"])
    make, data = ctx.get(spec.callable_name), spec.fed_data

    def run(i, drawn):
        # Every other setting has its hidden sizes as a tuple, as DeepFNN's default.
        values = [tuple(v) if isinstance(v, list) and i % 2 else torch_value(v) for v in drawn]
        x = common.inputs(modules.BATCH, values[0], seed=seed + i)  # values[0]: the input size
        with kit.recorded({}) as composed:  # when it raises, only the reference's answer counts
            built = [modules.as_module(ctx.get("dense_layer")(*call)) for call in layers(values)]
            composed.update(structure(nn.Sequential(*built), x, seed + i, data))
        found = {f"composed_{k}": v for k, v in composed.items()}
        try:
            net = common.a_module(make(*values))
            seen = structure(net, x, seed + i, data)
            found.update(unregistered=common.unregistered_modules(net)[:5], **seen)
        except Exception as err:  # noqa: BLE001 - what its own dense layers raise is their matter
            same = common.describe_error(err) == found.get("composed_error")
            if not same or isinstance(err, NotImplementedError):  # work not done: charged
                raise
            found["dense_layer_error"] = found["composed_error"]
        return found

    return {"runs": kit.per_setting(ctx.settings["values"], seed, run)}


@OWN.observer(draw=modules.module_settings("fnn"))
def fnn_structure(ctx) -> dict:
    return _observe_network(ctx, "fnn", _fnn_layers)


@OWN.observer(draw=modules.module_settings("deep_fnn"))
def deep_fnn_structure(ctx) -> dict:
    return _observe_network(ctx, "deep_fnn", _deep_fnn_layers)


def _parameters(entry: dict, want: dict, ctx, i: int) -> str | None:
    """Right when the shapes are the reference's, or those of the network made of the
    student's own dense layers (a dense-layer mistake is the dense-layer checks' matter)."""
    shapes, own = entry.get("param_shapes"), entry.get("composed_param_shapes")
    if shapes in (want["param_shapes"], own) or "dense_layer_error" in entry:
        return None
    target = own or want["param_shapes"]
    problem = f"{entry.get('params')} parameters: {common.diff_shapes(target, shapes or [])}"
    return problem + modules.unregistered_hint(entry.get("unregistered"))


def _deep_shapes(entry: dict, want: dict, ctx, i: int) -> str | None:
    if "dense_layer_error" not in entry and entry.get("output_shape") != want["output_shape"]:
        return f"output per sample {entry.get('output_shape')}, expected {want['output_shape']}"
    own = entry.get("single_shape") == entry.get("composed_single_shape")  # dense_layer's
    return _parameters(entry, want, ctx, i) or (None if own else single_problem(entry, want))


def _behaviour(entry: dict, want: dict, ctx, i: int) -> str | None:
    """Right when the outputs are the reference's, or those of the network made of the
    student's own dense layers."""
    own = "dense_layer_error" in entry or same_outputs(entry, entry, "composed_")
    if own or same_outputs(entry, want):  # the right values: but can it be trained?
        if "composed_reached" in entry:  # what the student's own dense layers train
            want = {"unreached": entry["composed_unreached"], "reached": entry["composed_reached"]}
        return gradient_problem(entry, want)
    if entry.get("eval_random") and not want.get("eval_random"):  # F.dropout(x, p) (round 18)
        return behaviour.eval_random_problem(entry)
    activation = torch_value(ctx.settings["values"][i][3])
    if isinstance(activation, type) and isinstance(want.get("eval_tensor"), torch.Tensor):
        if common.same_values(entry.get("eval_tensor"), activation()(want["eval_tensor"])):
            return (
                "its outputs are the right ones passed through the activation once more: the "
                "output layer must have no activation (dense_layer(hidden, out))"
            )
    return (
        "with the same parameter values as the reference it computes other outputs (check the "
        "order of the layers, which get the activation and batch norm, and that forward applies "
        "them all and nothing more, no softmax or log_softmax: it returns logits)"
    ) + parametrized_hint(entry)


FNN, DEEP_FNN = modules.where_setting("fnn"), modules.where_setting("deep_fnn")
judged(OWN, fnn_structure, "runs", FNN, name="fnn_parameters")(_parameters)
judged(OWN, fnn_structure, "runs", FNN, name="fnn_behaviour")(_behaviour)
judged(OWN, deep_fnn_structure, "runs", DEEP_FNN, name="deep_fnn_shapes")(_deep_shapes)
judged(OWN, deep_fnn_structure, "runs", DEEP_FNN, name="deep_fnn_behaviour")(_behaviour)


# ---------------------------------------------------------------- init_weights


@OWN.observer(draw=kit.draws(initialisation.SIZES))
def init_weights(ctx) -> dict:
    """Every parameter of the grader's networks before and after the student's init_weights."""
    return initialisation.observe(ctx.get("init_weights"), ctx.settings)


NETWORKS = initialisation.NETWORKS
judged(OWN, init_weights, "nets", NETWORKS, name="init_weights")(initialisation.problem)


# ---------------------------------------------------------------- answers


OWN.observer()(answers_family.model_sizes)


def _own_answers(observed: Mapping[str, Any]) -> dict:
    """The count answers as they are true of the student's own FNNs (manifest [[models]] keys
    fnn and fnn_bn, as `model_sizes` counted them); {} when they could not be counted."""
    sizes = observed.get("sizes")
    plain, with_bn = (sizes.get(k) if isinstance(sizes, dict) else None for k in ("fnn", "fnn_bn"))
    if not all(isinstance(d, dict) and "all" in d for d in (plain, with_bn)):
        return {}
    return {
        "fnn_parameters": plain["all"],
        "fnn_batchnorm_parameters": with_bn["all"],
        "batchnorm_added_parameters": with_bn["norm"],
        "bias_saved_parameters": plain["linear_bias"] - with_bn["linear_bias"],
    }


# Counts true of the student's own FNNs are right too: an FNN mistake is not charged again.
OWN.check("answers", observe="answers", uses=("model_sizes",))(
    answers_family.judge_also("model_sizes", _own_answers)
)
