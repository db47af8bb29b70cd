"""The checks that are `fnn_mnist`'s own; the rest come from the families (manifest).

Graded here: FNN and DeepFNN (parameters, outputs under fixed weights), judged with the
student's own `dense_layer` in place, so a dense-layer mistake is charged to the dense-layer
checks only; `init_weights` on networks of the grader's; `flatten`, `mean_std` and the
normalisation `make_loaders` applies; `sum_correct_preds` and the L1/L2 penalties on known
cases; a regularised training step of the trainer; the NetworkUser's save -> load round trip
and the mode predict runs in; the number answers, right when they match the reference or the
student's own networks. The models, data and penalties the observers use are the grader's own,
built from this run's seeds, so each check depends on the one piece of student code it judges.
Each observer probes a list of cases with `kit.per_setting`; the judge of a check, `_judged`'s
`kit.every_setting`, asks each case's test (`test(entry, reference's entry, ctx, i)`).
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from grader.checks import kit
from grader.checks.common import (
    WrongValue,
    a_module,
    describe_error,
    diff_shapes,
    inputs,
    jsonable,
    param_count,
    param_shapes,
    same_values,
    sample_shape,
    unregistered_modules,
)
from grader.checks.families import answers as answers_family
from grader.checks.families import behaviour
from grader.checks.families.loops import GRAD_CLASS, MODE_CLASS, Marks, count_correct
from grader.checks.families.modules import BATCH, as_module, describe, module_settings, torch_value
from grader.spec import Definitions, Verdict

OWN = Definitions()
register = OWN.register


def _judged(name: str, observer: Callable, key: str, where: Any):
    """Declare the decorated test as the judge of check `name`: every entry of `observer`'s list
    `key` must pass it. `where` names entry i: a text, a list of texts or a function
    (ctx, i, reference's entry) -> text."""
    if not callable(where):
        texts = [where] if isinstance(where, str) else where
        where = lambda ctx, i, want: texts[min(i, len(texts) - 1)]  # noqa: E731

    def declare(test):
        OWN.check(name, observe=observer)(kit.every_setting(key, test, where))
        return test

    return declare


def _near(got: Any, want: float) -> bool:
    """A returned number equal to `want` up to float rounding."""
    return isinstance(got, int | float) and abs(got - want) <= 1e-5 * max(1, want)


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


_judged("fnn_parameters", fnn_structure, "runs", _place("fnn"))(_parameters)
_judged("fnn_behaviour", fnn_structure, "runs", _place("fnn"))(_behaviour)
_judged("deep_fnn_shapes", deep_fnn_structure, "runs", _place("deep_fnn"))(_deep_shapes)
_judged("deep_fnn_behaviour", deep_fnn_structure, "runs", _place("deep_fnn"))(_behaviour)


# ---------------------------------------------------------------- init_weights


def _draw_init(rng, manifest) -> dict:
    seed = kit.seed(rng)
    return {"seed": seed, "channels": rng.randint(2, 6), "hidden": rng.randint(3, 12)} | {
        "features": rng.randint(2, 9)
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


@_judged("init_weights", init_weights, "nets", INIT_NETWORKS)
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


# ---------------------------------------------------------------- data: flatten, statistics


@OWN.observer(draw=lambda rng, manifest: {"seed": kit.seed(rng)})
def flatten_transform(ctx) -> dict:
    flatten, seed = ctx.get("flatten"), int(ctx.settings["seed"])

    def run(i, _):
        out = flatten(inputs(1, 28, 28, seed=seed + i))
        if not isinstance(out, torch.Tensor):
            raise WrongValue(f"it returned a {type(out).__name__}, not a tensor")
        return {"out_tensor": out.detach().float()}

    return {"cases": kit.per_setting(range(2), seed, run)}


@_judged("flatten_transform", flatten_transform, "cases", "flatten of a (1, 28, 28) image")
def _flattened(entry, want, ctx, i) -> str | None:
    out, target = entry["out_tensor"], want["out_tensor"]
    if out.shape != target.shape:
        return f"shape {list(out.shape)}, expected {list(target.shape)}"
    if not same_values(out, target):
        return "the pixels are in another order: rows one after another (torch.flatten)"
    return None


class _Images(Dataset):
    """A torchvision-style data set: `.data` uint8 (N, 28, 28); items (image (1, 28, 28) in
    0..1, label), as MNIST with transforms.ToTensor() gives them."""

    def __init__(self, data: torch.Tensor):
        self.data, self.targets = data, torch.zeros(len(data), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index].unsqueeze(0).float() / 255, int(self.targets[index])


def _draw_data(rng, manifest) -> dict:
    return {
        "seed": kit.seed(rng),
        "images": rng.randint(20, 40),
        "train": rng.randint(150, 250),
        "test": rng.randint(30, 60),
        "validation_size": rng.randint(30, 80),
        "split_seed": rng.randint(0, 10_000),
        "batch_size": rng.randint(8, 32),
    }


def _uint8_images(n: int, generator: torch.Generator, low: int, high: int) -> torch.Tensor:
    """`n` images (n, 28, 28) whose brightness varies from image to image (so subsets differ)."""
    scale = torch.randint(low, high, (n, 1, 1), generator=generator)
    return (torch.rand(n, 28, 28, generator=generator) * scale).to(torch.uint8)


def _write_mnist(root: Path, train: torch.Tensor, test: torch.Tensor, g: torch.Generator) -> None:
    """The four uncompressed IDX files torchvision's MNIST reads, under root/MNIST/raw/."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, images in (("train", train), ("t10k", test)):
        labels = torch.randint(0, 10, (len(images),), generator=g, dtype=torch.uint8)
        header = struct.pack(">IIII", 2051, len(images), 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.numpy().tobytes())
        header = struct.pack(">II", 2049, len(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.numpy().tobytes())


def _moments(batches) -> dict:
    """Per-image sums of values and of squares (the same whatever order the pixels are in),
    the labels in loader order and the per-sample shape."""
    xs, ys = zip(*batches, strict=True)
    x = torch.cat([b.reshape(len(b), -1) for b in xs]).double()
    return {
        "sample_shape": list(xs[0].shape[1:]),
        "sums_tensor": x.sum(1),
        "squares_tensor": (x**2).sum(1),
        "labels_tensor": torch.cat([torch.as_tensor(y) for y in ys]).long(),
    }


@OWN.observer(draw=_draw_data)
def data_statistics(ctx) -> dict:
    """mean_std on the three kinds of data set the instructions name, and the test images of
    make_loaders on a small MNIST-format folder whose test images are brighter than its
    training images (statistics of the wrong images give other standardised values)."""
    mean_std, s = ctx.get("mean_std"), ctx.settings
    seed = int(s["seed"])
    g = torch.Generator().manual_seed(seed)
    data = _Images(_uint8_images(int(s["images"]), g, 60, 256))
    half = torch.randperm(len(data), generator=g)[: len(data) // 2].tolist()

    def stats(i, dataset):
        result = mean_std(dataset)
        return {"types": [type(v).__name__ for v in result], "values": jsonable(list(result))}

    kinds = [data, Subset(data, half), [data[i] for i in range(len(data))]]
    out = {"stats": kit.per_setting(kinds, seed, stats)}
    train, test = (
        _uint8_images(int(s["train"]), g, 40, 200),
        _uint8_images(int(s["test"]), g, 150, 256),
    )
    with tempfile.TemporaryDirectory(prefix="dlgrade-mnist-") as folder:
        _write_mnist(Path(folder), train, test, g)
        sizes = {"batch_size": int(s["batch_size"]), "validation_size": int(s["validation_size"])}

        def loaders(i, _):
            made = ctx.get("make_loaders")(folder, **sizes, seed=int(s["split_seed"]))
            return _moments(list(made[2]))

        out["loaders"] = kit.per_setting([folder], seed, loaders)
    return out


def _mean_std(entry, want, ctx, i) -> str | None:
    values, target = entry.get("values"), want["values"]
    if not (isinstance(values, list) and len(values) == 2):
        return f"returned {values!r}, expected (mean, std)"
    if not all(_near(v, w) for v, w in zip(values, target, strict=True)):
        expected = [round(w, 6) for w in target]
        return f"(mean, std) = {values}, expected {expected} (all pixels, 0..1, population std)"
    if entry.get("types") != want["types"]:
        return f"returned {entry.get('types')}, expected two Python floats (use .item())"
    return None


def _standardised(entry, want, ctx, i) -> str | None:
    if entry.get("sample_shape") != want["sample_shape"]:
        return (
            f"its test images have shape {entry.get('sample_shape')}, expected "
            f"{want['sample_shape']} (transforms end with flatten)"
        )
    if not torch.equal(entry.get("labels_tensor"), want["labels_tensor"]):
        return "its test loader gives the images in another order: it must not shuffle"
    moments = ("sums_tensor", "squares_tensor")
    if not all(same_values(entry.get(k), want[k], rtol=1e-4, atol=1e-4) for k in moments):
        return (
            "its test images are not standardised with the mean and std of the training "
            "part of the split (not the validation or test images, not the whole split)"
        )
    return None


KINDS = ["a data set with .data", "a Subset of one", "a list of (image, label) pairs"]
MEAN_STD = kit.every_setting("stats", _mean_std, lambda ctx, i, w: f"mean_std on {KINDS[i]}")
LOADERS = kit.every_setting("loaders", _standardised, lambda ctx, i, w: "make_loaders")


@OWN.check(observe=data_statistics)
def normalisation_stats(seen, want, ctx) -> Verdict:
    # mean_std counts for half, make_loaders for the other half.
    verdicts = [judge(seen, want, ctx) for judge in (MEAN_STD, LOADERS)]
    fraction = sum(v.fraction for v in verdicts) / len(verdicts)
    problems = [v.message for v in verdicts if v.fraction < 1]
    return Verdict(fraction, "; ".join(problems) or "mean_std and make_loaders are right")


# ---------------------------------------------------------------- sum_correct_preds, penalties


def _draw_counts(rng, manifest) -> dict:
    return {
        "seed": kit.seed(rng),
        "cases": [[rng.randint(5, 20), rng.randint(2, 10)] for _ in range(2)],
    }


@OWN.observer(draw=_draw_counts)
def sum_correct_preds(ctx) -> dict:
    """Known counts: scores (N, C) whose argmax is each row's label in a drawn number of rows."""
    count, seed = ctx.get("sum_correct_preds"), int(ctx.settings["seed"])
    g = torch.Generator().manual_seed(seed)

    def run(i, case):
        n, classes = case
        scores = torch.randn(n, classes, generator=g)
        targets = scores.argmax(1)
        wrong = torch.randperm(n, generator=g)[: int(torch.randint(0, n, (1,), generator=g))]
        shift = torch.randint(1, classes, (len(wrong),), generator=g)
        targets[wrong] = (targets[wrong] + shift) % classes
        result = count(scores.clone(), targets.clone())
        return {"type": type(result).__name__, "value": jsonable(result)}

    return {"cases": kit.per_setting(ctx.settings["cases"], seed, run)}


def _counts_at(ctx, i, want) -> str:
    return "sum_correct_preds on ({}, {}) scores".format(*ctx.settings["cases"][i])


@_judged("sum_correct_preds", sum_correct_preds, "cases", _counts_at)
def _counted(entry, want, ctx, i) -> str | None:
    if entry.get("value") != want["value"]:
        return f"returned {entry.get('value')!r}, expected {want['value']} (a count)"
    if entry.get("type") != want["type"]:
        return f"returned a {entry.get('type')}, expected a Python int (use .item())"
    return None


def _draw_penalty(rng, manifest) -> dict:
    seed = kit.seed(rng)
    sizes = [rng.randint(2, 6), rng.randint(2, 6), rng.randint(2, 4)]
    return {"seed": seed, "sizes": sizes, "lambda": rng.choice([0.01, 0.05, 0.1, 0.5, 2.0])}


def _penalty_model(s: Mapping[str, Any]) -> nn.Module:
    """Linear -> BatchNorm1d -> Linear with parameters of both signs (batch norm's too)."""
    torch.manual_seed(int(s["seed"]))
    a, b, c = s["sizes"]
    model = nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.Linear(b, c))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model


@OWN.observer(draw=_draw_penalty)
def regularization_values(ctx) -> dict:
    """Each penalty with the drawn lambda and with its default: value and gradient."""
    s = ctx.settings
    calls = [
        (f, a) for f in ("l2_regularization", "l1_regularization") for a in ([s["lambda"]], [])
    ]

    def run(i, call):
        function, args = call
        model = _penalty_model(s)
        params = list(model.parameters())
        value = ctx.get(function)(model, *map(float, args))
        found = {"function": function, "args": args, "value": jsonable(value)}
        if isinstance(value, torch.Tensor) and value.requires_grad:
            grads = torch.autograd.grad(value, params, allow_unused=True)
            zero = [
                torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)
            ]
            found["grad_tensor"] = torch.cat([g.reshape(-1) for g in zero])
        return found

    return {"cases": kit.per_setting(calls, int(s["seed"]), run)}


def _penalty_at(ctx, i, want) -> str:
    return f"{want['function']}(model{''.join(f', {float(a)}' for a in want['args'])})"


@_judged("regularization_values", regularization_values, "cases", _penalty_at)
def _penalised(entry, want, ctx, i) -> str | None:
    if not _near(entry.get("value"), want["value"]):
        formula = "squares" if want["function"].startswith("l2") else "absolute values"
        return (
            f"returned {entry.get('value')!r}, expected {want['value']:.6g} (lambda times the "
            f"sum of the {formula} of all parameters)"
        )
    if not same_values(entry.get("grad_tensor"), want["grad_tensor"]):
        return (
            "its value is right but it is not a differentiable tensor of the parameters "
            "(return a 0-d tensor, not .item(); nothing detached)"
        )
    return None


def _draw_step(rng, manifest) -> dict:
    seed, rates = kit.seed(rng), {"lr": rng.choice([0.05, 0.1, 0.2])}
    return {
        "seed": seed,
        **rates,
        "lambda": rng.choice([0.05, 0.1, 0.3]),
        "batch": rng.randint(4, 12),
    }


@OWN.observer(draw=_draw_step)
def regularized_step(ctx) -> dict:
    """One training batch with the grader's own L2 penalty, SGD: the weights after the step,
    the training loss (with the penalty) and the validation loss (without) on that batch."""
    s = ctx.settings
    lam, n = float(s["lambda"]), int(s["batch"])

    def run(i, _):
        model = nn.Linear(6, 3)
        g = torch.Generator().manual_seed(int(s["seed"]))
        batch = TensorDataset(
            torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
        )
        data = DataLoader(batch, batch_size=n)
        trainer = ctx.get("NetworkTrainer")(
            model,
            data,
            data,
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=float(s["lr"])),
            "cpu",
            sum_correct_preds=count_correct,
            regularization=lambda m: lam * sum(p.pow(2).sum() for p in m.parameters()),
        )
        found = {"train_loss": jsonable(trainer.train_epoch())}
        found["weights_tensor"] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        return {**found, "validation": jsonable(trainer.validate())}

    return {"runs": kit.per_setting([s], int(s["seed"]), run)}


def _loss_of(result: Any) -> Any:
    return result[0] if isinstance(result, list) and result else result


@_judged("regularized_step", regularized_step, "runs", "NetworkTrainer with regularization")
def _stepped(entry, want, ctx, i) -> str | None:
    if not same_values(entry.get("weights_tensor"), want["weights_tensor"]):
        return (
            "after one SGD step the weights are not where loss + penalty sends them: add "
            "regularization(model) to the loss before loss.backward()"
        )
    got, target = entry.get("train_loss"), want["train_loss"]
    if not _near(got, target):
        return f"train_epoch returned {got!r}, expected {target:.5f} (the loss with the penalty)"
    got, target = _loss_of(entry.get("validation")), _loss_of(want["validation"])
    if not _near(got, target):
        return (
            f"validate returned the loss {got!r}, expected {target:.5f}: the validation loss "
            "is the plain criterion, without the penalty"
        )
    return None


# ---------------------------------------------------------------- NetworkUser


def _draw_user(rng, manifest) -> dict:
    return {"seed": kit.seed(rng), "features": rng.randint(4, 30), "hidden": rng.randint(3, 12)}


def _user_model(features: int, hidden: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 5)
    )
    with torch.no_grad():  # running statistics away from their start: they must travel too
        model.train()(torch.randn(64, features) * 3 + 1)
    return model


def _marked_model(features: int, hidden: int, seed: int) -> nn.Module:
    """A network in training mode that predicts MODE_CLASS in training mode and GRAD_CLASS
    while gradients are recorded (families.loops.Marks): its own predictions, which the
    reference gives, show only in evaluation mode without gradients."""
    torch.manual_seed(seed)
    layers = [nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 5)]
    with torch.no_grad():  # never predicted unless a mark pushes them
        layers[-1].bias[[MODE_CLASS, GRAD_CLASS]] -= 50.0
    return nn.Sequential(*layers, Marks(5, mode=True, grad=True)).train()


def _labels(labels: Any) -> dict:
    if not isinstance(labels, torch.Tensor):
        return {"labels": f"<{type(labels).__name__}>"}
    meta = {"dtype": str(labels.dtype), "device": labels.device.type}
    return {"labels_tensor": labels.detach().cpu(), "labels": meta}


def _saved(path: Path) -> Any:
    """What a saved file holds: sorted [shape, sum] of a state_dict's tensors, or why not."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            return f"<{type(state).__name__}>"
        return sorted([list(v.shape), round(float(v.double().sum()), 4)] for v in state.values())
    except Exception as err:  # noqa: BLE001 - the judge compares it with the reference's
        return f"<not loadable with weights_only=True: {describe_error(err)}>"


@OWN.observer(draw=_draw_user)
def save_load_roundtrip(ctx) -> dict:
    """Save a network of the grader's with NetworkUser, load the file into a fresh one, predict;
    then predict with a network whose predictions show the mode and the gradient state."""
    user_class, s = ctx.get("NetworkUser"), ctx.settings
    seed, features, hidden = int(s["seed"]), int(s["features"]), int(s["hidden"])
    x = inputs(16, features, seed=seed)

    def roundtrip(path: Path) -> dict:
        user_class(_user_model(features, hidden, seed)).save(path)
        saved, fresh = _saved(path), user_class(_user_model(features, hidden, seed + 1))
        fresh.load(path)
        return {"saved": saved, **_labels(fresh.predict(x))}

    def modes(path: Path) -> dict:
        return _labels(user_class(_marked_model(features, hidden, seed + 2)).predict(x))

    with tempfile.TemporaryDirectory(prefix="dlgrade-user-") as folder:
        path = Path(folder) / "weights.pt"
        return {"runs": kit.per_setting([roundtrip, modes], seed, lambda i, run: run(path))}


ROUND_TRIP = ["save -> load into a fresh network -> predict", "predict, model in training mode"]


@_judged("save_load_roundtrip", save_load_roundtrip, "runs", ROUND_TRIP)
def _round_tripped(entry, want, ctx, i) -> str | None:
    if i == 0 and entry.get("saved") != want["saved"]:
        return (
            f"the saved file holds {str(entry.get('saved'))[:120]}, expected the model's "
            "state_dict (torch.save(model.state_dict(), path))"
        )
    if entry.get("labels") != want["labels"]:
        return f"predict returned {entry.get('labels')}, expected {want['labels']}"
    if torch.equal(entry["labels_tensor"], want["labels_tensor"]):
        return None
    if i == 1:
        return (
            "its labels are not those of evaluation mode without gradients: predict must call "
            "self.model.eval() and compute under torch.no_grad()"
        )
    return (
        "after load, the fresh network predicts other labels than the saved one: load must put "
        "every saved parameter and buffer into the model (load_state_dict), predict must run "
        "in eval mode"
    )


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
