"""FNN and DeepFNN, judged with the student's own `dense_layer` in place (a dense-layer
mistake is charged to the dense-layer checks only); `init_weights` on networks of the grader's;
the number answers, right when they match the reference's or are true of the student's own
FNNs (so an FNN or dense-layer mistake is not charged again)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from grader.checks import kit
from grader.checks.common import (
    WrongValue,
    a_module,
    describe_error,
    diff_shapes,
    inputs,
    param_count,
    param_shapes,
    same_values,
    sample_shape,
    unregistered_modules,
)
from grader.checks.families import answers as answers_family
from grader.checks.families import behaviour
from grader.checks.families.modules import BATCH, as_module, describe, module_settings, torch_value
from grader.checks.kit import judged
from grader.spec import Definitions, Verdict

OWN = Definitions()


# ---------------------------------------------------------------- FNN and DeepFNN


def _deep_fnn_layers(values: list) -> list[tuple]:
    """The dense_layer calls DeepFNN(*values) is made of (classes already resolved)."""
    size_in, hidden_sizes, size_out, activation, batch_norm = values
    widths = [size_in, *hidden_sizes]
    hidden = [(a, b, activation, batch_norm) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return [*hidden, (widths[-1], size_out)]  # the output layer: no activation, no batch norm


def _fnn_layers(values: list) -> list[tuple]:
    """FNN(in, hidden, out, ...) is DeepFNN(in, [hidden, hidden], out, ...)."""
    return _deep_fnn_layers([values[0], [values[1]] * 2, *values[2:]])


def _structure(net: nn.Module, x: torch.Tensor, seed: int) -> dict:
    """Parameter shapes and count, output shape per sample for x (BATCH, in), and the outputs
    under fixed weights (families.behaviour)."""
    out: dict = {"param_shapes": param_shapes(net), "params": param_count(net)}
    net.eval()
    with torch.no_grad():
        out["output_shape"] = sample_shape(net(x), BATCH)
    return {**out, **behaviour.outputs(net, x, seed)}


def _observe_network(ctx, entry: str, layers: Callable[[list], list[tuple]]) -> dict:
    """Per setting of manifest entry `entry`: the student's network's `_structure`, and that of
    the network the instructions describe made of the student's own dense_layer ("composed_")."""
    make, seed = ctx.get(ctx.module(entry).callable_name), int(ctx.settings["seed"])

    def run(i, drawn):
        values = [torch_value(v) for v in drawn]
        x = inputs(BATCH, values[0], seed=seed + i)  # values[0]: the input size
        net = a_module(make(*values))
        found = {"unregistered": unregistered_modules(net)[:5], **_structure(net, x, seed + i)}
        try:
            built = [as_module(ctx.get("dense_layer")(*call)) for call in layers(values)]
            composed = _structure(nn.Sequential(*built), x, seed + i)
            found.update({f"composed_{k}": v for k, v in composed.items()})
        except Exception as err:  # noqa: BLE001 - then only the reference's answer counts
            found["composed_error"] = describe_error(err)
        return found

    return {"runs": kit.per_setting(ctx.settings["values"], seed, run)}


@OWN.observer(draw=module_settings("fnn"))
def fnn_structure(ctx) -> dict:
    return _observe_network(ctx, "fnn", _fnn_layers)


@OWN.observer(draw=module_settings("deep_fnn"))
def deep_fnn_structure(ctx) -> dict:
    return _observe_network(ctx, "deep_fnn", _deep_fnn_layers)


def _parameters(entry: dict, want: dict, ctx, i: int) -> str | None:
    """Right when the shapes are the reference's, or those of the network made of the
    student's own dense layers (a dense-layer mistake is the dense-layer checks' matter)."""
    shapes, own = entry.get("param_shapes"), entry.get("composed_param_shapes")
    if shapes in (want["param_shapes"], own):
        return None
    target = own or want["param_shapes"]
    problem = f"{entry.get('params')} parameters: {diff_shapes(target, shapes or [])}"
    if entry.get("unregistered"):
        problem += (
            f" (attribute {entry['unregistered'][0]!r} keeps layers in a plain Python list, "
            "which PyTorch does not register: use nn.Sequential or nn.ModuleList)"
        )
    return problem


def _deep_shapes(entry: dict, want: dict, ctx, i: int) -> str | None:
    if entry.get("output_shape") != want["output_shape"]:
        return f"output per sample {entry.get('output_shape')}, expected {want['output_shape']}"
    return _parameters(entry, want, ctx, i)


def _same_outputs(entry: dict, target: dict, prefix: str = "") -> bool:
    modes = ("eval", "train")
    return all(
        same_values(entry.get(f"{m}_tensor"), target.get(f"{prefix}{m}_tensor")) for m in modes
    )


def _behaviour(entry: dict, want: dict, ctx, i: int) -> str | None:
    """Right when the outputs are the reference's, or those of the network made of the
    student's own dense layers."""
    if _same_outputs(entry, want) or _same_outputs(entry, entry, "composed_"):
        return None
    activation = torch_value(ctx.settings["values"][i][3])
    if isinstance(activation, type) and isinstance(want.get("eval_tensor"), torch.Tensor):
        if same_values(entry.get("eval_tensor"), activation()(want["eval_tensor"])):
            return (
                "its outputs are the right ones passed through the activation once more: the "
                "output layer must have no activation (dense_layer(hidden, out))"
            )
    return (
        "with the same parameter values as the reference it computes other outputs (check the "
        "order of the layers, which get the activation and batch norm, and that forward applies "
        "them all)"
    )


def _place(entry: str):
    """`where` of a network check: manifest entry `entry` with setting i's arguments."""
    return lambda ctx, i, want: describe(
        ctx.manifest.module(entry), ctx.settings["values"][i], ctx.manifest
    )


judged(OWN, fnn_structure, "runs", _place("fnn"), name="fnn_parameters")(_parameters)
judged(OWN, fnn_structure, "runs", _place("fnn"), name="fnn_behaviour")(_behaviour)
judged(OWN, deep_fnn_structure, "runs", _place("deep_fnn"), name="deep_fnn_shapes")(_deep_shapes)
judged(OWN, deep_fnn_structure, "runs", _place("deep_fnn"), name="deep_fnn_behaviour")(_behaviour)


# ---------------------------------------------------------------- init_weights


def _draw_init(rng, manifest) -> dict:
    return {
        "seed": kit.seed(rng),
        "channels": rng.randint(2, 6),
        "hidden": rng.randint(3, 12),
        "features": rng.randint(2, 9),
    }


INIT_NETWORKS = [
    "init_weights on a Conv2d/Linear/BatchNorm1d network",
    "init_weights on a bare nn.Linear",
]


def _init_network(i: int, s: Mapping[str, Any]) -> nn.Module:
    """Network i of INIT_NETWORKS: every kind of layer the instructions name, nested; a bare
    layer."""
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


def _leaf_parameters(net: nn.Module) -> list[tuple[str, str, torch.Tensor]]:
    """(layer type, parameter name, its values) of every layer without children, in order."""
    leaves = [m for m in net.modules() if not list(m.children())]
    return [
        (type(m).__name__, n, p.detach().clone())
        for m in leaves
        for n, p in m.named_parameters(recurse=False)
    ]


@OWN.observer(draw=_draw_init)
def init_weights(ctx) -> dict:
    """Every parameter of the grader's networks before and after the student's init_weights
    (the network is built after the case's seed, so init draws other values than it did)."""
    init, s = ctx.get("init_weights"), ctx.settings

    def run(i, _):
        net = _init_network(i, s)
        before = _leaf_parameters(net)
        init(net)
        after = _leaf_parameters(net)
        if len(after) != len(before):
            raise WrongValue("its parameters changed in number")
        return {
            "params": [
                {"layer": layer, "name": name, "before_tensor": old, "after_tensor": new}
                for (layer, name, old), (_, _, new) in zip(before, after, strict=True)
            ]
        }

    return {"nets": kit.per_setting(INIT_NETWORKS, int(s["seed"]), run)}


@judged(OWN, init_weights, "nets", INIT_NETWORKS, name="init_weights")
def _initialised(entry, want, ctx, i) -> str | None:
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


# ---------------------------------------------------------------- answers


@OWN.observer()
def model_sizes(ctx) -> dict:
    """Parameter counts of the manifest's models built from the student's own classes: all of
    them, those of batch-norm layers, and the biases of linear layers."""
    models = ctx.manifest.models

    def run(i, spec):
        model = ctx.get(spec.class_name)(*spec.args, **spec.kwargs)
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        biases = [
            m.bias for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None
        ]
        return {
            "all": param_count(model),
            "norm": sum(param_count(m) for m in norms),
            "linear_bias": sum(b.numel() for b in biases),
        }

    sizes = kit.per_setting(models, 0, run)
    return {"sizes": {spec.key: size for spec, size in zip(models, sizes, strict=True)}}


def _own_answers(sizes: Mapping[str, Any]) -> dict:
    """The count answers as they are true of the student's own FNNs (manifest [[models]] keys
    fnn and fnn_bn, as `model_sizes` counted them); {} when they could not be counted."""
    plain, with_bn = sizes.get("fnn"), sizes.get("fnn_bn")
    if not all(isinstance(d, dict) and "all" in d for d in (plain, with_bn)):
        return {}
    return {
        "fnn_parameters": plain["all"],
        "fnn_batchnorm_parameters": with_bn["all"],
        "batchnorm_added_parameters": with_bn["norm"],
        "bias_saved_parameters": plain["linear_bias"] - with_bn["linear_bias"],
    }


@OWN.check(observe="answers", uses=("model_sizes",))
def answers(seen, want, ctx) -> Verdict:
    # Counts true of the student's own FNNs are right too: an FNN or dense-layer mistake is not
    # charged again here.
    observed = ctx.observations.get("model_sizes")
    sizes = observed.get("sizes") if isinstance(observed, dict) else None
    own = _own_answers(sizes) if isinstance(sizes, dict) else {}
    return answers_family.judge(seen, want, ctx, {**want["answers"], **own})
