"""The checks that are `fnn_mnist`'s own; the rest come from the families (manifest).

Graded here: FNN and DeepFNN (parameters, outputs under fixed weights), judged with the
student's own `dense_layer` in place, so a dense-layer mistake is charged to the dense-layer
checks only; `init_weights` on a network of the grader's; `flatten`, `mean_std` and the
normalisation `make_loaders` applies; `sum_correct_preds` and the L1/L2 penalties on known
cases; a regularised training step of the trainer; the NetworkUser's save -> load round trip
and the mode predict runs in; and the number answers, right when they match the reference or the
student's own networks.
The models, data and penalty functions the observers use are the grader's own, built from this
run's seeds, so each check depends on the one piece of student code it judges.
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

from grader.checks.common import (
    WrongValue,
    describe_error,
    diff_shapes,
    failure,
    inputs,
    jsonable,
    param_count,
    param_shapes,
    same_values,
    sample_shape,
    summarise,
    unregistered_modules,
)
from grader.checks.families import answers as answers_family
from grader.checks.families import behaviour
from grader.checks.families.loops import GRAD_CLASS, MODE_CLASS, Marks, count_correct
from grader.checks.families.modules import (
    BATCH,
    as_module,
    describe,
    draw_settings,
    torch_value,
)
from grader.spec import Definitions, Verdict

OWN = Definitions()
register = OWN.register


def _seed(rng, manifest) -> dict:
    return {"seed": rng.randrange(2**31)}


def _module_settings(name: str):
    """Draw like the manifest's [[modules]] entry `name` (which only declares the settings)."""

    def draw(rng, manifest):
        spec = next(m for m in manifest["modules"] if m["name"] == name)
        return draw_settings(spec)(rng, manifest)

    return draw


def _each(key: str, test: Callable, where: Callable[[int, Any], str]):
    """A judge applying `test(entry, want_entry, ctx, i) -> problem | None` to every case the
    reference answered under `key`; the denominator is the reference's cases."""

    def judge(seen, want, ctx) -> Verdict:
        got = seen.get(key) if isinstance(seen.get(key), list) else []
        problems = []
        raised = False  # some setting raised or was not observed
        for i, want_entry in enumerate(want[key]):
            place = where(i, ctx)
            if "error" in want_entry:  # the reference itself failed: a grader bug
                raise RuntimeError(f"reference failed on {place}: {want_entry['error']}")
            entry = got[i] if i < len(got) else None
            if not isinstance(entry, dict):
                problems.append(f"{place}: nothing observed")
                raised = True
            elif "wrong" in entry:
                problems.append(f"{place}: {entry['wrong']}")
            elif "error" in entry:
                problems.append(f"{place} raised {entry['error']}")
                raised = True
            elif problem := test(entry, want_entry, ctx, i):
                problems.append(f"{place}: {problem}")
        total = len(want[key])
        return Verdict.partial(
            total - len(problems), total, summarise(problems) or "right", raised=raised
        )

    return judge


# ---------------------------------------------------------------- FNN and DeepFNN

# Each network as the instructions build it from dense_layer: the arguments of every call.
# values are the drawn settings of the manifest entry, classes already resolved.


def _fnn_layers(values: list) -> list[tuple]:
    size_in, hidden, size_out, activation, batch_norm = values
    return [
        (size_in, hidden, activation, batch_norm),
        (hidden, hidden, activation, batch_norm),
        (hidden, size_out),  # the output layer: no activation, no batch norm
    ]


def _deep_fnn_layers(values: list) -> list[tuple]:
    size_in, hidden_sizes, size_out, activation, batch_norm = values
    widths = [size_in, *hidden_sizes]
    hidden = [(a, b, activation, batch_norm) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return [*hidden, (widths[-1], size_out)]


def _observe_network(ctx, entry: str, layers: Callable[[list], list[tuple]]) -> dict:
    """Per setting of the manifest entry `entry`: the student's network's parameter shapes,
    output shape and outputs under fixed weights (families.behaviour), and the same for the
    network the instructions describe, made of the student's own dense_layer ("composed_")."""
    spec = ctx.module(entry)
    cls, seed = ctx.get(spec["class_name"]), int(ctx.settings["seed"])
    runs = []
    for i, drawn in enumerate(ctx.settings["values"]):
        values = [torch_value(v) for v in drawn]
        x = inputs(BATCH, values[0], seed=seed + i)  # values[0]: the input size
        record: dict = {}
        try:
            torch.manual_seed(seed + i)
            net = cls(*values)
            if not isinstance(net, nn.Module):
                raise WrongValue(f"it is a {type(net).__name__}, not an nn.Module")
            record["unregistered"] = unregistered_modules(net)[:5]
            record.update(_structure(net, x, seed + i))
        except Exception as err:  # noqa: BLE001 - one bad setting must not hide the others
            record.update(failure(err))
        try:
            dense_layer = ctx.get("dense_layer")
            built = [as_module(dense_layer(*call)) for call in layers(values)]
            composed = _structure(nn.Sequential(*built), x, seed + i)
            record.update({f"composed_{k}": v for k, v in composed.items()})
        except Exception as err:  # noqa: BLE001 - then only the reference's answer counts
            record["composed_error"] = describe_error(err)
        runs.append(record)
    return {"runs": runs}


@OWN.observer(draw=_module_settings("fnn"))
def fnn_structure(ctx) -> dict:
    return _observe_network(ctx, "fnn", _fnn_layers)


@OWN.observer(draw=_module_settings("deep_fnn"))
def deep_fnn_structure(ctx) -> dict:
    return _observe_network(ctx, "deep_fnn", _deep_fnn_layers)


def _structure(net: nn.Module, x: torch.Tensor, seed: int) -> dict:
    out: dict = {"param_shapes": param_shapes(net), "params": param_count(net)}
    net.eval()
    with torch.no_grad():
        out["output_shape"] = sample_shape(net(x), BATCH)
    out.update(behaviour.outputs(net, x, seed))
    return out


def _place(entry: str):
    def where(i: int, ctx) -> str:
        spec = next(m for m in ctx.plain["modules"] if m["name"] == entry)
        return describe(spec, ctx.settings["values"][i], ctx.plain)

    return where


def _own_hint(entry: dict) -> str:
    if entry.get("unregistered"):
        return (
            f" (attribute {entry['unregistered'][0]!r} keeps layers in a plain Python list, "
            "which PyTorch does not register: use nn.Sequential or nn.ModuleList)"
        )
    return ""


def _parameter_problem(entry: dict, want: dict) -> str | None:
    """Right when the shapes are the reference's, or those of the network made of the
    student's own dense layers (a dense-layer mistake is the dense-layer checks' matter)."""
    shapes = entry.get("param_shapes")
    if shapes == want["param_shapes"] or shapes == entry.get("composed_param_shapes"):
        return None
    target = entry.get("composed_param_shapes") or want["param_shapes"]
    return (
        f"{entry.get('params')} parameters: {diff_shapes(target, shapes or [])}{_own_hint(entry)}"
    )


def _output_activation(entry: dict, want: dict, activation: Any) -> bool:
    """Whether the outputs are the reference's with `activation` applied once more."""
    if not isinstance(activation, type) or not isinstance(want.get("eval_tensor"), torch.Tensor):
        return False
    squashed = activation()(want["eval_tensor"])
    return same_values(entry.get("eval_tensor"), squashed)


def _same_outputs(entry: dict, target: dict, prefix: str = "") -> bool:
    return all(
        same_values(entry.get(f"{mode}_tensor"), target.get(f"{prefix}{mode}_tensor"))
        for mode in ("eval", "train")
    )


def _behaviour_problem(entry: dict, want: dict, activation: Any) -> str | None:
    """Right when the outputs are the reference's, or those of the network made of the
    student's own dense layers."""
    if _same_outputs(entry, want) or _same_outputs(entry, entry, "composed_"):
        return None
    if _output_activation(entry, want, activation):
        return (
            "its outputs are the right ones passed through the activation once more: the "
            "output layer must have no activation (dense_layer(hidden, out))"
        )
    return (
        "with the same parameter values as the reference it computes other outputs (check "
        "the order of the layers, which layers get the activation and batch norm, and that "
        "forward applies them all)"
    )


def _activation(ctx, i: int) -> Any:
    return torch_value(ctx.settings["values"][i][3])


@OWN.check("fnn_parameters", observe=fnn_structure)
def _(seen, want, ctx) -> Verdict:
    test = lambda e, w, ctx, i: _parameter_problem(e, w)  # noqa: E731
    return _each("runs", test, _place("fnn"))(seen, want, ctx)


@OWN.check("fnn_behaviour", observe=fnn_structure)
def _(seen, want, ctx) -> Verdict:
    test = lambda e, w, ctx, i: _behaviour_problem(e, w, _activation(ctx, i))  # noqa: E731
    return _each("runs", test, _place("fnn"))(seen, want, ctx)


@OWN.check("deep_fnn_shapes", observe=deep_fnn_structure)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        if entry.get("output_shape") != want_entry["output_shape"]:
            return (
                f"output per sample {entry.get('output_shape')}, expected "
                f"{want_entry['output_shape']}"
            )
        return _parameter_problem(entry, want_entry)

    return _each("runs", test, _place("deep_fnn"))(seen, want, ctx)


@OWN.check("deep_fnn_behaviour", observe=deep_fnn_structure)
def _(seen, want, ctx) -> Verdict:
    test = lambda e, w, ctx, i: _behaviour_problem(e, w, _activation(ctx, i))  # noqa: E731
    return _each("runs", test, _place("deep_fnn"))(seen, want, ctx)


# ---------------------------------------------------------------- init_weights


def _draw_init(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**31),
        "channels": rng.randint(2, 6),
        "hidden": rng.randint(3, 12),
        "features": rng.randint(2, 9),
    }


def _init_networks(s: Mapping[str, Any]) -> list[nn.Module]:
    """A network with every kind of layer the instructions name, nested, and a bare layer."""
    torch.manual_seed(int(s["seed"]))
    channels, hidden, features = int(s["channels"]), int(s["hidden"]), int(s["features"])
    net = nn.Sequential(
        nn.Conv2d(1, channels, 3),  # (N, 1, 6, 6) -> (N, channels, 4, 4)
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * 16, hidden),
        nn.Sequential(nn.Linear(hidden, features), nn.BatchNorm1d(features), nn.ReLU()),
        nn.Linear(features, 2),
    )
    with torch.no_grad():  # away from batch norm's start, so that a reset shows
        norm = net[4][1]
        norm.weight.uniform_(2.0, 3.0)
        norm.bias.uniform_(1.0, 2.0)
    return [net, nn.Linear(features, hidden)]


@OWN.observer(draw=_draw_init)
def init_weights(ctx) -> dict:
    init = ctx.get("init_weights")
    nets = []
    for net in _init_networks(ctx.settings):
        layers = [m for m in net.modules() if not list(m.children())]
        before = [(type(m).__name__, n, p.detach().clone()) for m in layers for n, p in _own(m)]
        record: dict = {}
        try:
            init(net)
            record["params"] = [
                {"layer": layer, "name": name, "before_tensor": old, "after_tensor": p.detach()}
                for (layer, name, old), (_, p) in zip(
                    before, [(n, p) for m in layers for n, p in _own(m)], strict=True
                )
            ]
        except Exception as err:  # noqa: BLE001
            record["error"] = describe_error(err)
        nets.append(record)
    return {"nets": nets}


def _own(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return list(module.named_parameters(recurse=False))


@OWN.check("init_weights", observe=init_weights)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        params = entry.get("params") or []
        if len(params) != len(want_entry["params"]):
            return "its parameters changed in number"
        problems = []
        for got, ref in zip(params, want_entry["params"], strict=True):
            label = f"{got['layer']}.{got['name']}"
            old, new = got.get("before_tensor"), got.get("after_tensor")
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

    names = ["a Conv2d/Linear/BatchNorm1d network", "a bare nn.Linear"]
    return _each("nets", test, lambda i, ctx: f"init_weights on {names[i]}")(seen, want, ctx)


# ---------------------------------------------------------------- data: flatten, statistics


@OWN.observer(draw=_seed)
def flatten_transform(ctx) -> dict:
    flatten, seed = ctx.get("flatten"), int(ctx.settings["seed"])
    cases = []
    for i in range(2):
        image = inputs(1, 28, 28, seed=seed + i)
        record: dict = {}
        try:
            out = flatten(image.clone())
            if isinstance(out, torch.Tensor):
                record["out_tensor"] = out.detach().float()
            else:
                record["out"] = f"<{type(out).__name__}>"
        except Exception as err:  # noqa: BLE001
            record["error"] = describe_error(err)
        cases.append(record)
    return {"cases": cases}


@OWN.check("flatten_transform", observe=flatten_transform)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        out = entry.get("out_tensor")
        if not isinstance(out, torch.Tensor):
            return f"it returned {entry.get('out')}, not a tensor"
        if list(out.shape) != list(want_entry["out_tensor"].shape):
            return f"shape {list(out.shape)}, expected {list(want_entry['out_tensor'].shape)}"
        if not same_values(out, want_entry["out_tensor"]):
            return "the pixels are in another order: rows one after another (torch.flatten)"
        return None

    return _each("cases", test, lambda i, ctx: "flatten of a (1, 28, 28) image")(seen, want, ctx)


class _Images(Dataset):
    """A torchvision-style data set: `.data` uint8 (N, 28, 28); items (image (1, 28, 28) in
    0..1, label), as MNIST with transforms.ToTensor() gives them."""

    def __init__(self, data: torch.Tensor):
        self.data = data
        self.targets = torch.zeros(len(data), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index].unsqueeze(0).float() / 255, int(self.targets[index])


def _draw_data(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**31),
        "images": rng.randint(20, 40),
        "train": rng.randint(150, 250),
        "test": rng.randint(30, 60),
        "validation_size": rng.randint(30, 80),
        "split_seed": rng.randint(0, 10_000),
        "batch_size": rng.randint(8, 32),
    }


def _uint8_images(n: int, generator: torch.Generator, low: int, high: int) -> torch.Tensor:
    """`n` images whose brightness varies from image to image (so subsets differ)."""
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
def normalisation_stats(ctx) -> dict:
    """mean_std on the three kinds of data set the instructions name, and the test images of
    make_loaders on a small MNIST-format folder whose test images are brighter than its
    training images (statistics of the wrong images give other standardised values)."""
    mean_std, s = ctx.get("mean_std"), ctx.settings
    g = torch.Generator().manual_seed(int(s["seed"]))
    data = _Images(_uint8_images(int(s["images"]), g, 60, 256))
    indices = torch.randperm(len(data), generator=g)[: len(data) // 2].tolist()
    pairs = [data[i] for i in range(len(data))]
    out: dict = {"stats": []}
    for dataset in (data, Subset(data, indices), pairs):
        record: dict = {}
        try:
            result = mean_std(dataset)
            record["types"] = [type(v).__name__ for v in result]
            record["values"] = jsonable(list(result))
        except Exception as err:  # noqa: BLE001
            record["error"] = describe_error(err)
        out["stats"].append(record)
    train, test = (
        _uint8_images(int(s["train"]), g, 40, 200),
        _uint8_images(int(s["test"]), g, 150, 256),
    )
    with tempfile.TemporaryDirectory(prefix="dlgrade-mnist-") as folder:
        _write_mnist(Path(folder), train, test, g)
        record = {}
        try:
            loaders = ctx.get("make_loaders")(
                folder,
                batch_size=int(s["batch_size"]),
                validation_size=int(s["validation_size"]),
                seed=int(s["split_seed"]),
            )
            record.update(_moments(list(loaders[2])))
        except Exception as err:  # noqa: BLE001
            record["error"] = describe_error(err)
        out["loaders"] = [record]
    return out


def _close(got: Any, want: float) -> bool:
    return isinstance(got, int | float) and abs(got - want) <= 1e-5


@OWN.check("normalisation_stats", observe=normalisation_stats)
def _(seen, want, ctx) -> Verdict:
    kinds = ["a data set with .data", "a Subset of one", "a list of (image, label) pairs"]

    def stats(entry, want_entry, ctx, i):
        values, target = entry.get("values"), want_entry["values"]
        if not (isinstance(values, list) and len(values) == 2):
            return f"returned {values!r}, expected (mean, std)"
        if not all(_close(v, w) for v, w in zip(values, target, strict=True)):
            return (
                f"(mean, std) = {values}, expected {[round(w, 6) for w in target]} (over all "
                "pixels, 0..1 scale, population std)"
            )
        if entry.get("types") != want_entry["types"]:
            return f"returned {entry.get('types')}, expected two Python floats (use .item())"
        return None

    def loaders(entry, want_entry, ctx, i):
        if entry.get("sample_shape") != want_entry["sample_shape"]:
            return (
                f"its test images have shape {entry.get('sample_shape')}, expected "
                f"{want_entry['sample_shape']} (transforms end with flatten)"
            )
        if not torch.equal(entry.get("labels_tensor"), want_entry["labels_tensor"]):
            return "its test loader gives the images in another order: it must not shuffle"
        moments = ("sums_tensor", "squares_tensor")
        if not all(same_values(entry.get(k), want_entry[k], rtol=1e-4, atol=1e-4) for k in moments):
            return (
                "its test images are not standardised with the mean and std of the training "
                "part of the split (not the validation or test images, not the whole split)"
            )
        return None

    verdicts = [
        _each("stats", stats, lambda i, ctx: f"mean_std on {kinds[i]}")(seen, want, ctx),
        _each("loaders", loaders, lambda i, ctx: "make_loaders")(seen, want, ctx),
    ]
    # mean_std counts for half, make_loaders for the other half.
    fraction = sum(v.fraction for v in verdicts) / len(verdicts)
    problems = [v.message for v in verdicts if v.fraction < 1]
    return Verdict(fraction, "; ".join(problems) or "mean_std and make_loaders are right")


# ---------------------------------------------------------------- sum_correct_preds, penalties


def _draw_counts(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**31),
        "cases": [[rng.randint(5, 20), rng.randint(2, 10)] for _ in range(2)],
    }


@OWN.observer(draw=_draw_counts)
def sum_correct_preds(ctx) -> dict:
    """Known counts: scores (N, C) whose argmax is each row's label in a drawn number of rows."""
    count, seed = ctx.get("sum_correct_preds"), int(ctx.settings["seed"])
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n, classes in ctx.settings["cases"]:
        scores = torch.randn(n, classes, generator=g)
        targets = scores.argmax(1)
        wrong = torch.randperm(n, generator=g)[: int(torch.randint(0, n, (1,), generator=g))]
        shift = torch.randint(1, classes, (len(wrong),), generator=g)
        targets[wrong] = (targets[wrong] + shift) % classes
        record: dict = {}
        try:
            result = count(scores.clone(), targets.clone())
            record["type"] = type(result).__name__
            record["value"] = jsonable(result)
        except Exception as err:  # noqa: BLE001
            record["error"] = describe_error(err)
        cases.append(record)
    return {"cases": cases}


@OWN.check("sum_correct_preds", observe=sum_correct_preds)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        if entry.get("value") != want_entry["value"]:
            return f"returned {entry.get('value')!r}, expected {want_entry['value']} (a count)"
        if entry.get("type") != want_entry["type"]:
            return f"returned a {entry.get('type')}, expected a Python int (use .item())"
        return None

    def where(i, ctx):
        n, classes = ctx.settings["cases"][i]
        return f"sum_correct_preds on ({n}, {classes}) scores"

    return _each("cases", test, where)(seen, want, ctx)


def _draw_penalty(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**31),
        "sizes": [rng.randint(2, 6), rng.randint(2, 6), rng.randint(2, 4)],
        "lambda": rng.choice([0.01, 0.05, 0.1, 0.5, 2.0]),
    }


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
    s, cases = ctx.settings, []
    for function in ("l2_regularization", "l1_regularization"):
        for args in ((float(s["lambda"]),), ()):
            model = _penalty_model(s)
            record: dict = {"function": function, "args": list(args)}
            try:
                value = ctx.get(function)(model, *args)
                record["value"] = jsonable(value)
                if isinstance(value, torch.Tensor) and value.requires_grad:
                    grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True)
                    record["grad_tensor"] = torch.cat(
                        [
                            (g if g is not None else torch.zeros_like(p)).reshape(-1)
                            for g, p in zip(grads, model.parameters(), strict=True)
                        ]
                    )
            except Exception as err:  # noqa: BLE001
                record["error"] = describe_error(err)
            cases.append(record)
    return {"cases": cases}


@OWN.check("regularization_values", observe=regularization_values)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        value, target = entry.get("value"), want_entry["value"]
        if not (isinstance(value, int | float) and abs(value - target) <= 1e-5 * max(1, target)):
            formula = "squares" if want_entry["function"].startswith("l2") else "absolute values"
            return (
                f"returned {value!r}, expected {target:.6g} (lambda times the sum of the "
                f"{formula} of all parameters)"
            )
        if not same_values(entry.get("grad_tensor"), want_entry["grad_tensor"]):
            return (
                "its value is right but it is not a differentiable tensor of the parameters "
                "(return a 0-d tensor, not .item(); nothing detached)"
            )
        return None

    def where(i, ctx):
        case = want["cases"][i]
        lam = f", {case['args'][0]}" if case["args"] else ""
        return f"{case['function']}(model{lam})"

    return _each("cases", test, where)(seen, want, ctx)


def _draw_step(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**31),
        "lr": rng.choice([0.05, 0.1, 0.2]),
        "lambda": rng.choice([0.05, 0.1, 0.3]),
        "batch": rng.randint(4, 12),
    }


@OWN.observer(draw=_draw_step)
def regularized_step(ctx) -> dict:
    """One training batch with the grader's own L2 penalty, SGD: the weights after the step,
    the training loss (with the penalty) and the validation loss (without) on that batch."""
    s = ctx.settings
    lam = float(s["lambda"])
    torch.manual_seed(int(s["seed"]))
    model = nn.Linear(6, 3)
    g = torch.Generator().manual_seed(int(s["seed"]))
    n = int(s["batch"])
    data = DataLoader(
        TensorDataset(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)),
        batch_size=n,
    )

    def penalty(m):
        return lam * sum(p.pow(2).sum() for p in m.parameters())

    record: dict = {}
    try:
        trainer = ctx.get("NetworkTrainer")(
            model,
            data,
            data,
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=float(s["lr"])),
            "cpu",
            sum_correct_preds=count_correct,
            regularization=penalty,
        )
        record["train_loss"] = jsonable(trainer.train_epoch())
        record["weights_tensor"] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        record["validation"] = jsonable(trainer.validate())
    except Exception as err:  # noqa: BLE001
        record["error"] = describe_error(err)
    return {"runs": [record]}


def _loss_of(result: Any) -> Any:
    return result[0] if isinstance(result, list) and result else result


@OWN.check("regularized_step", observe=regularized_step)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        if not same_values(entry.get("weights_tensor"), want_entry["weights_tensor"]):
            return (
                "after one SGD step the weights are not where loss + penalty sends them: add "
                "regularization(model) to the loss before loss.backward()"
            )
        got, target = entry.get("train_loss"), want_entry["train_loss"]
        if not (isinstance(got, int | float) and abs(got - target) <= 1e-5 * max(1, target)):
            return (
                f"train_epoch returned {got!r}, expected {target:.5f} (the loss with the penalty)"
            )
        got, target = _loss_of(entry.get("validation")), _loss_of(want_entry["validation"])
        if not (isinstance(got, int | float) and abs(got - target) <= 1e-5 * max(1, target)):
            return (
                f"validate returned the loss {got!r}, expected {target:.5f}: the validation loss "
                "is the plain criterion, without the penalty"
            )
        return None

    where = lambda i, ctx: "NetworkTrainer with regularization"  # noqa: E731
    return _each("runs", test, where)(seen, want, ctx)


# ---------------------------------------------------------------- NetworkUser


def _draw_user(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**31),
        "features": rng.randint(4, 30),
        "hidden": rng.randint(3, 12),
    }


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


def _labels(record: dict, labels: Any) -> None:
    if isinstance(labels, torch.Tensor):
        record["labels_tensor"] = labels.detach().cpu()
        record["labels"] = {"dtype": str(labels.dtype), "device": labels.device.type}
    else:
        record["labels"] = f"<{type(labels).__name__}>"


@OWN.observer(draw=_draw_user)
def save_load_roundtrip(ctx) -> dict:
    """Save a network of the grader's with NetworkUser, load the file into a fresh one, predict;
    then predict with a network whose predictions show the mode and the gradient state."""
    user_class, s = ctx.get("NetworkUser"), ctx.settings
    seed, features, hidden = int(s["seed"]), int(s["features"]), int(s["hidden"])
    x = inputs(16, features, seed=seed)
    record: dict = {}
    with tempfile.TemporaryDirectory(prefix="dlgrade-user-") as folder:
        path = Path(folder) / "weights.pt"
        try:
            user_class(_user_model(features, hidden, seed)).save(path)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                record["saved"] = (
                    sorted(
                        [list(v.shape), round(float(v.double().sum()), 4)] for v in state.values()
                    )
                    if isinstance(state, dict)
                    else f"<{type(state).__name__}>"
                )
            except Exception as err:  # noqa: BLE001
                record["saved"] = f"<not loadable with weights_only=True: {describe_error(err)}>"
            fresh = user_class(_user_model(features, hidden, seed + 1))
            fresh.load(path)
            _labels(record, fresh.predict(x))
        except Exception as err:  # noqa: BLE001
            record["error"] = describe_error(err)
    modes: dict = {}
    try:
        _labels(modes, user_class(_marked_model(features, hidden, seed + 2)).predict(x))
    except Exception as err:  # noqa: BLE001
        modes["error"] = describe_error(err)
    return {"runs": [record, modes]}


@OWN.check("save_load_roundtrip", observe=save_load_roundtrip)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, ctx, i):
        if i == 1:
            if entry.get("labels") != want_entry["labels"]:
                return f"it returned {entry.get('labels')}, expected {want_entry['labels']}"
            if not torch.equal(entry.get("labels_tensor"), want_entry["labels_tensor"]):
                return (
                    "its labels are not those of evaluation mode without gradients: predict "
                    "must call self.model.eval() and compute under torch.no_grad()"
                )
            return None
        if entry.get("saved") != want_entry["saved"]:
            return (
                f"the saved file holds {str(entry.get('saved'))[:120]}, expected the model's "
                "state_dict (torch.save(model.state_dict(), path))"
            )
        if entry.get("labels") != want_entry["labels"]:
            return f"predict returned {entry.get('labels')}, expected {want_entry['labels']}"
        if not torch.equal(entry.get("labels_tensor"), want_entry["labels_tensor"]):
            return (
                "after load, the fresh network predicts other labels than the saved one: load "
                "must put every saved parameter and buffer into the model (load_state_dict), "
                "predict must run in eval mode"
            )
        return None

    places = ("save -> load into a fresh network -> predict", "predict, model in training mode")
    return _each("runs", test, lambda i, ctx: places[i])(seen, want, ctx)


# ---------------------------------------------------------------- answers


def _own_answers(sizes: Mapping[str, Any]) -> dict:
    """The count answers as they are true of the student's own FNNs (manifest [[models]] keys
    fnn and fnn_bn, as `model_sizes` counted them); {} for what could not be counted."""
    plain, with_bn = sizes.get("fnn"), sizes.get("fnn_bn")
    if not (isinstance(plain, dict) and isinstance(with_bn, dict)):
        return {}
    return {
        "fnn_parameters": plain["all"],
        "fnn_batchnorm_parameters": with_bn["all"],
        "batchnorm_added_parameters": with_bn["norm"],
        "bias_saved_parameters": plain["linear_bias"] - with_bn["linear_bias"],
    }


@OWN.observer()
def model_sizes(ctx) -> dict:
    """Parameter counts of the manifest's models built from the student's own classes: all of
    them, those of batch-norm layers, and the biases of linear layers."""
    sizes = {}
    for spec in ctx.manifest["models"]:
        try:
            model = ctx.get(spec["class_name"])(*spec["args"], **spec["kwargs"])
            sizes[spec["key"]] = {
                "all": param_count(model),
                "norm": sum(
                    param_count(m)
                    for m in model.modules()
                    if isinstance(m, nn.modules.batchnorm._BatchNorm)
                ),
                "linear_bias": sum(
                    m.bias.numel()
                    for m in model.modules()
                    if isinstance(m, nn.Linear) and m.bias is not None
                ),
            }
        except Exception as err:  # noqa: BLE001
            sizes[spec["key"]] = describe_error(err)
    return {"sizes": sizes}


@OWN.check("answers", observe="answers", uses=("model_sizes",))
def _(seen, want, ctx) -> Verdict:
    expected = want["answers"]
    accepted = [expected]
    own = ctx.observations.get("model_sizes")
    if isinstance(own, dict) and isinstance(own.get("sizes"), dict):
        # Counts true of the student's own FNNs: an FNN or dense-layer mistake is not charged
        # again here.
        accepted.append({**expected, **_own_answers(own["sizes"])})
    wrong = answers_family.wrong_answers(seen["answers"], accepted)
    if wrong is None:
        return Verdict.wrong(f"answers() returned {seen['answers']!r}, not a dict")
    return Verdict.partial(
        len(expected) - len(wrong), len(expected), "; ".join(wrong) or "all answers right"
    )
