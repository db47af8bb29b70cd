"""The checks that are `mlp_tuning`'s own; the MLP's shapes and behaviour and the training and
evaluation functions come from the families (manifest).

Graded here, each part on data the grader makes for this run:

* statistics: `standardisation_images` on a small known `Subset` of a Fashion-MNIST-like data
  set (shapes; the mean image of the subset's images only; the std image's formula, 1/N and the
  1e-5), and the notebook's own `mean_image`/`std_image` against those of the real training
  split, which the judge computes itself with the sheet's seeded split;
* transforms: the outputs of `make_transforms(...)` on fixed PIL images under seeded RNG,
  compared with the reference's: augmentations in the training transform, each switch doing
  only its own, the evaluation transform without augmentation;
* the MLP's activation (what its hidden layer computes from its own pre-activations) and its
  dropout (off in evaluation mode, p and 1/(1-p) in training mode), each judged on numbers that
  do not depend on the other;
* the search: `run_search` with a tiny budget on a tiny data set while the notebook's test split
  is replaced by a tripwire; every trial's value is the validation accuracy it reported last to
  the pruner (on data where training and validation accuracies differ), and the trial it
  returns as best is its best validation accuracy;
* the final model: `MLP(**architecture of final_config.json)` loads `mlp_final.pt`, and its
  test accuracy with the student's own evaluation transform and statistics.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset, Subset

from grader.checks import kit
from grader.checks.common import (
    StopProbe,
    WrongValue,
    a_module,
    describe_error,
    diff_shapes,
    failure,
    inputs,
    jsonable,
    modules_of_type,
    same_values,
    summarise,
)
from grader.checks.families import accuracy as accuracy_family
from grader.checks.families.accuracy import Unjudgeable
from grader.checks.families.behaviour import fix_parameters
from grader.spec import Definitions, Verdict

OWN = Definitions()
register = OWN.register

SIDE = 28  # Fashion-MNIST images are 28x28
CLASSES = 10
ARCHITECTURE = ("hidden_layers", "width", "activation", "dropout")  # MLP's arguments
SWITCHES = ("flip", "rotation", "resized_crop")  # make_transforms' augmentation switches
TRANSFORM_KEYS = ("normalise", *SWITCHES)  # the configuration keys make_transforms takes
EPSILON = 1e-5  # the sheet's addition to the standard deviation


def _tensor(value: Any) -> torch.Tensor | None:
    """A float32 CPU copy of a returned tensor or array, None for anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().clone()
    if hasattr(value, "__array__") and not isinstance(value, str | bytes):
        try:
            return torch.as_tensor(value).float().clone()
        except Exception:  # noqa: BLE001 - not array-like after all
            return None
    return None


def _what(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _want_ok(want_entry: Mapping[str, Any], where: str) -> None:
    """The reference failed: a grader bug, said loudly."""
    if "error" in want_entry:
        raise RuntimeError(f"the reference failed on {where}: {want_entry['error']}")


# ---------------------------------------------------------------- images of the grader's own


class ImageSet(Dataset):
    """A stand-in for torchvision's FashionMNIST: `.data` uint8 (N, 28, 28), `.targets` (N,),
    and items (PIL image, label), as the notebook's functions expect of the real one."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor):
        self.data, self.targets = data, targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        return Image.fromarray(self.data[index].numpy()), int(self.targets[index])


def noise_images(n: int, seed: int) -> torch.Tensor:
    """uint8 (n, 28, 28) of seeded noise; the two top rows are black in every image and one
    pixel is the same in all of them, so the std image has pixels where it is exactly 1e-5."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, SIDE, SIDE), dtype=torch.uint8, generator=g)
    data[:, :2] = 0
    row, col = (int(v) for v in torch.randint(2, SIDE, (2,), generator=g))
    data[:, row, col] = int(torch.randint(1, 256, (1,), generator=g))
    return data


def class_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, 28, 28) images and their labels: a seeded pattern per class plus noise, so a
    few steps of training already tell the classes apart better than chance."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(CLASSES, SIDE, SIDE, generator=g)
    labels = torch.arange(n) % CLASSES
    labels = labels[torch.randperm(n, generator=g)]
    noise = torch.rand(n, SIDE, SIDE, generator=g)
    images = (0.7 * patterns[labels] + 0.3 * noise) * 255
    return images.round().to(torch.uint8), labels


def grader_statistics(subset) -> tuple[torch.Tensor, torch.Tensor]:
    """The sheet's mean and std images of a Subset's images, computed by the grader: put in
    place of the student's while the search is probed, so that a statistics mistake is charged
    to the statistics checks alone."""
    images = subset.dataset.data[torch.as_tensor(list(subset.indices))].float() / 255
    return images.mean(0), images.std(0, correction=0) + EPSILON


# ---------------------------------------------------------------- statistics


def _draw_statistics(rng, manifest) -> dict:
    cases = []
    for _ in range(2):
        n = rng.randint(30, 60)
        size = rng.randint(8, 16)
        cases.append({"seed": kit.seed(rng), "images": n, "indices": rng.sample(range(n), size)})
    return {"cases": cases}


@OWN.observer(draw=_draw_statistics)
def statistics(ctx) -> dict:
    """`standardisation_images` on a Subset of a known data set: a few of its images, shuffled."""
    fn = ctx.get("standardisation_images")
    runs = []
    for case in ctx.settings["cases"]:
        entry: dict = {}
        try:
            data = noise_images(case["images"], case["seed"])
            subset = Subset(
                ImageSet(data, torch.zeros(len(data), dtype=torch.long)), case["indices"]
            )
            result = fn(subset)
            if not isinstance(result, tuple | list) or len(result) != 2:
                raise WrongValue(f"it returned {_what(result)}, not (mean_image, std_image)")
            for name, value in zip(("mean", "std"), result, strict=True):
                tensor = _tensor(value)
                entry[f"{name}_type"] = _what(value)
                entry[f"{name}_float"] = bool(
                    isinstance(value, torch.Tensor) and value.dtype == torch.float32
                )
                if tensor is not None:
                    entry[f"{name}_tensor"] = tensor
        except StopProbe:
            raise
        except Exception as err:  # noqa: BLE001 - one bad case must not hide the other
            entry.update(failure(err))
        runs.append(entry)
    return {"runs": runs}


def _case_name(case: Mapping[str, Any]) -> str:
    return f"a Subset of {len(case['indices'])} of {case['images']} images"


def _each_case(seen, want, ctx, test: Callable) -> Verdict:
    problems = []
    raised = False  # some case raised or was not observed
    got = seen.get("runs") if isinstance(seen.get("runs"), list) else []
    for i, want_entry in enumerate(want["runs"]):
        case = ctx.settings["cases"][i]
        where = _case_name(case)
        _want_ok(want_entry, where)
        entry = got[i] if i < len(got) else None
        if not isinstance(entry, dict):
            problems.append(f"{where}: nothing observed")
            raised = True
        elif "wrong" in entry:
            problems.append(f"{where}: standardisation_images {entry['wrong']}")
        elif "error" in entry:
            problems.append(f"{where}: standardisation_images raised {entry['error']}")
            raised = True
        elif problem := test(entry, want_entry, case):
            problems.append(f"{where}: {problem}")
    total = len(want["runs"])
    return Verdict.partial(
        total - len(problems), total, summarise(problems) or "right", raised=raised
    )


def _same_shape_values(seen: Any, want: torch.Tensor) -> torch.Tensor | None:
    """`seen` as `want`'s shape when it holds as many numbers (a (1, 28, 28) image is the shape
    check's business, not the values'), else None."""
    if not isinstance(seen, torch.Tensor) or seen.numel() != want.numel():
        return None
    return seen.reshape(want.shape)


@OWN.check("stats_shape", observe=statistics)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, case):
        for name in ("mean", "std"):
            tensor, target = entry.get(f"{name}_tensor"), want_entry[f"{name}_tensor"]
            if not isinstance(tensor, torch.Tensor) or tensor.shape != target.shape:
                return (
                    f"the {name} image is {entry.get(f'{name}_type')}, expected a float32 tensor "
                    f"of shape {tuple(target.shape)} (one value per pixel, not one per image set)"
                )
            if not entry.get(f"{name}_float"):
                return f"the {name} image is {entry.get(f'{name}_type')} but not float32"
        return None

    return _each_case(seen, want, ctx, test)


@OWN.check("stats_training_subset", observe=statistics)
def _(seen, want, ctx) -> Verdict:
    # Which images: the mean image says it, whatever the std formula.
    def test(entry, want_entry, case):
        target = want_entry["mean_tensor"]
        got = _same_shape_values(entry.get("mean_tensor"), target)
        if got is None:
            return f"the mean image is {entry.get('mean_type')}, not one value per pixel"
        if not same_values(got, target):
            return (
                "the mean image is not the mean of the subset's images: use only the images "
                "`subset.indices` names (subset.dataset.data[subset.indices]), on the 0..1 scale"
            )
        return None

    return _each_case(seen, want, ctx, test)


def _formula_problem(got: torch.Tensor, target: torch.Tensor, n: int) -> str | None:
    """Which part of the std formula a wrong std image missed, when it can tell."""
    if torch.allclose(got.double(), target.double(), rtol=1e-5, atol=1e-6):
        return None
    if torch.allclose((got + EPSILON).double(), target.double(), rtol=1e-5, atol=1e-6):
        return "the std image lacks the + 1e-5 (pixels equal in every image give 0, not 1e-5)"
    unbiased = (target - EPSILON) * math.sqrt(n / (n - 1)) + EPSILON
    if torch.allclose(got.double(), unbiased.double(), rtol=1e-5, atol=1e-6) or torch.allclose(
        got.double(), (unbiased - EPSILON).double(), rtol=1e-5, atol=1e-6
    ):
        return "the std image divides by N - 1: the sheet's formula divides by N (correction=0)"
    return (
        "the std image is not sqrt((1/N) sum (X_i - X_mu)^2) + 1e-5 over the subset's N images, "
        "pixel by pixel"
    )


@OWN.check("stats_formula", observe=statistics)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry, case):
        target = want_entry["std_tensor"]
        got = _same_shape_values(entry.get("std_tensor"), target)
        if got is None:
            return f"the std image is {entry.get('std_type')}, not one value per pixel"
        return _formula_problem(got, target, len(case["indices"]))

    return _each_case(seen, want, ctx, test)


@OWN.observer(reference=False)
def notebook_images(ctx) -> dict:
    """The notebook's own `mean_image` and `std_image` (of its training split, by its cells)."""
    out: dict = {}
    for name in ("mean_image", "std_image"):
        try:
            value = ctx.get(name)
        except Exception as err:  # noqa: BLE001 - MissingDefinition says why
            out[f"{name}_error"] = describe_error(err)
            continue
        out[f"{name}_type"] = _what(value)
        tensor = _tensor(value)
        if tensor is not None:
            out[f"{name}_tensor"] = tensor
    return out


@functools.lru_cache(maxsize=2)
def training_statistics(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std images of the real training split (the sheet's 55,000 of 60,000 images,
    split with its seed), computed with the reference code once per process; trusted side only.
    Unjudgeable when this machine does not have the data set."""
    from solutions.data import DataNotFoundError, load_split, resolve_root
    from solutions.mlp_tuning.config import SPLIT_SEED, VALIDATION_SIZE
    from solutions.mlp_tuning.student import split_train_validation, standardisation_images

    try:
        images, _ = load_split(dataset, train=True, root=resolve_root(dataset).root)
    except DataNotFoundError as err:
        first = str(err).splitlines()[0]
        raise Unjudgeable(
            f"the grading machine has no {dataset} training split ({first})"
        ) from None
    full = ImageSet(images[:, 0], torch.zeros(len(images), dtype=torch.long))  # (60000, 28, 28)
    train, _ = split_train_validation(range(len(images)), VALIDATION_SIZE, SPLIT_SEED)
    return standardisation_images(Subset(full, train.indices))


@OWN.check("notebook_statistics", observe=notebook_images)
def _(seen, want, ctx) -> Verdict:
    problems = []
    truth = dict(
        zip(("mean_image", "std_image"), training_statistics(ctx.manifest.dataset), strict=True)
    )
    for name, target in truth.items():
        if f"{name}_error" in seen:
            problems.append(f"{name}: {seen[f'{name}_error']}")
            continue
        got = _same_shape_values(seen.get(f"{name}_tensor"), target)
        if got is None:
            problems.append(f"{name} is {seen.get(f'{name}_type')}, not a 28x28 image")
        elif not same_values(got, target):
            problems.append(f"{name} is not that of the 55,000 training images of the seeded split")
    if problems:
        return Verdict.wrong(
            summarise(problems)
            + ": split_train_validation must split the 60,000 images at random with "
            "random_split and a torch.Generator seeded with `seed`, 55,000 for training "
            "first, and the statistics come from the training subset only"
        )
    return Verdict.ok("the notebook standardises with the statistics of its training split")


# ---------------------------------------------------------------- transforms


def _draw_transforms(rng, manifest) -> dict:
    return {
        "seed": kit.seed(rng),
        "rng_seeds": [kit.seed(rng) for _ in range(4)],
        "images": 3,
    }


SWITCH_CASES = ((), ("flip",), ("rotation",), ("resized_crop",))  # each switch on its own
EVAL_CASES = ((SWITCHES, True), (SWITCHES, False), ((), True), ((), False))


def _switches(on) -> dict:
    return {name: name in on for name in SWITCHES}


def _outputs(transform, images, seeds) -> torch.Tensor:
    """(len(seeds) * len(images), 1, 28, 28): the transform of every image in turn after
    torch.manual_seed(seed), for each seed (12 calls, so 12 draws of each random choice)."""
    outs = []
    for seed in seeds:
        torch.manual_seed(seed)
        for image in images:
            out = transform(image)
            if not isinstance(out, torch.Tensor):
                raise WrongValue(f"the transform returned {_what(out)}, not a tensor")
            outs.append(out.detach().cpu().float())
    shapes = {tuple(o.shape) for o in outs}
    if len(shapes) != 1:
        raise WrongValue(f"the transform returned tensors of shapes {sorted(shapes)}")
    return torch.stack(outs)


@OWN.observer(draw=_draw_transforms)
def transform_outputs(ctx) -> dict:
    """What `make_transforms(mean_image, std_image, normalise=..., flip=..., rotation=...,
    resized_crop=...)` does to fixed PIL images, under seeded RNG."""
    make = ctx.get("make_transforms")
    s = ctx.settings
    g = torch.Generator().manual_seed(int(s["seed"]))
    pixels = torch.randint(0, 256, (s["images"], SIDE, SIDE), dtype=torch.uint8, generator=g)
    images = [Image.fromarray(p.numpy()) for p in pixels]
    mean_image = torch.rand(SIDE, SIDE, generator=g) * 0.5
    std_image = torch.rand(SIDE, SIDE, generator=g) * 0.5 + 0.2
    seeds = [int(v) for v in s["rng_seeds"]]
    out: dict = {}

    def run(key: str, which: int, normalise: bool, on) -> None:
        entry: dict = {"normalise": normalise, "on": list(on)}
        try:
            pair = make(mean_image, std_image, normalise=normalise, **_switches(on))
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise WrongValue(f"make_transforms returned {_what(pair)}, not a pair")
            entry["outputs_tensor"] = _outputs(pair[which], images, seeds)
        except StopProbe:
            raise
        except Exception as err:  # noqa: BLE001
            entry.update(failure(err))
        out[key] = entry

    run("augments", 0, False, SWITCHES)
    for on in SWITCH_CASES:
        run("switch:" + "+".join(on), 0, False, on)
    run("train_standardised", 0, True, ())
    run("eval_standardised", 1, True, ())
    for on, normalise in EVAL_CASES:
        run(f"eval:{'+'.join(on)}:{int(normalise)}", 1, normalise, on)
    return out


def _config_name(entry: Mapping[str, Any]) -> str:
    on = entry.get("on") or []
    switches = ", ".join(f"{k}=True" for k in on) or "no augmentation"
    return f"normalise={entry.get('normalise')}, {switches}"


def _compare(seen, want, key: str, kind: str) -> str | None:
    """None when the student's outputs for `key` are the reference's, else the problem."""
    want_entry = want[key]
    _want_ok(want_entry, f"make_transforms ({key})")
    entry = seen.get(key)
    where = f"the {kind} transform with {_config_name(want_entry)}"
    if not isinstance(entry, dict):
        return f"{where}: nothing observed"
    if "error" in entry or "wrong" in entry:
        return f"{where}: {entry.get('error') or entry['wrong']}"
    got, target = entry.get("outputs_tensor"), want_entry["outputs_tensor"]
    if not isinstance(got, torch.Tensor) or got.shape != target.shape:
        shape = tuple(got.shape[1:]) if isinstance(got, torch.Tensor) else None
        return f"{where} gives images of shape {shape}, expected {tuple(target.shape[1:])}"
    if not same_values(got, target):
        return f"{where} gives other images than the reference (same images, same RNG seeds)"
    return None


@OWN.check("train_transform_augments", observe=transform_outputs)
def _(seen, want, ctx) -> Verdict:
    problem = _compare(seen, want, "augments", "training")
    entry = seen.get("augments")
    if not isinstance(entry, dict) or "error" in entry:
        return Verdict.error(problem or "the training transform could not be observed")
    return Verdict.expect(
        problem is None,
        "the training transform flips, rotates and crops as specified",
        f"{problem}: with every switch on it must apply RandomHorizontalFlip(p=0.5), "
        "RandomRotation(10) and RandomResizedCrop(28, scale=(0.7, 1.0)), in this order, then "
        "ToTensor",
    )


@OWN.check("augmentations_switchable", observe=transform_outputs)
def _(seen, want, ctx) -> Verdict:
    problems = [
        p
        for on in SWITCH_CASES
        if (p := _compare(seen, want, "switch:" + "+".join(on), "training"))
    ]
    # With every augmentation off, normalise=True standardises training images exactly as the
    # student's own evaluation transform does (whose arithmetic is the evaluation check's).
    train, own_eval = seen.get("train_standardised"), seen.get("eval_standardised")
    total = len(SWITCH_CASES) + 1
    if not (isinstance(train, dict) and isinstance(own_eval, dict)):
        problems.append("normalise=True: nothing observed")
    elif any(k in e for k in ("error", "wrong") for e in (train, own_eval)):
        why = [e.get("error") or e.get("wrong") for e in (train, own_eval)]
        problems.append(f"normalise=True: {why[0] or why[1]}")
    elif not same_values(train.get("outputs_tensor"), own_eval.get("outputs_tensor")):
        problems.append(
            "with normalise=True and no augmentation the training transform does not standardise "
            "like the evaluation transform (ToTensor, then Standardise)"
        )
    return Verdict.partial(
        total - len(problems),
        total,
        (summarise(problems) + ": each switch turns on its own augmentation and nothing else")
        if problems
        else "each switch turns on its own augmentation, and only in the training transform",
    )


@OWN.check("eval_transform_deterministic", observe=transform_outputs)
def _(seen, want, ctx) -> Verdict:
    problems = []
    for on, normalise in EVAL_CASES:
        key = f"eval:{'+'.join(on)}:{int(normalise)}"
        if problem := _compare(seen, want, key, "evaluation"):
            outputs = (seen.get(key) or {}).get("outputs_tensor")
            n = ctx.settings["images"]
            if isinstance(outputs, torch.Tensor) and len(outputs) >= 2 * n:
                if not torch.equal(outputs[:n], outputs[n : 2 * n]):
                    problem += " and changes from call to call (augmentation belongs to training)"
            problems.append(problem)
    total = len(EVAL_CASES)
    return Verdict.partial(
        total - len(problems),
        total,
        (summarise(problems) + ": the evaluation transform is ToTensor (+ Standardise when "
         "normalise), whatever the augmentation switches say")
        if problems
        else "the evaluation transform is deterministic: ToTensor (+ Standardise)",
    )  # fmt: skip


# ---------------------------------------------------------------- the MLP's activation, dropout


def _linear_calls(model: nn.Module) -> tuple[list, Callable[[], None]]:
    """Forward hooks on every nn.Linear of `model`: (input, output) of each call, in order."""
    calls: list = []

    def hook(module, args, output):
        calls.append((args[0].detach().clone(), output.detach().clone()))

    handles = [m.register_forward_hook(hook) for m in modules_of_type(model, nn.Linear)]
    return calls, lambda: [h.remove() for h in handles]


def _hidden(model: nn.Module, x: torch.Tensor, *, training: bool, seed: int) -> dict:
    """The first linear layer's output (pre-activation) and what reaches the second linear layer
    (the first hidden layer's activation, after dropout), for one forward pass."""
    calls, remove = _linear_calls(model)
    model.train(training)
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            model(x)
    finally:
        remove()
    if len(calls) < 2:
        raise ValueError(
            f"{len(calls)} nn.Linear layer calls in forward: hidden layers must be nn.Linear "
            "modules, followed by an output nn.Linear"
        )
    return {"pre_tensor": calls[0][1], "post_tensor": calls[1][0]}


def _draw_activation(rng, manifest) -> dict:
    return {"seed": kit.seed(rng), "width": rng.randint(8, 200)}


ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


@OWN.observer(draw=_draw_activation)
def mlp_hidden(ctx) -> dict:
    """MLP(hidden_layers=2, width, activation, dropout=0) for each activation, under fixed
    weights in evaluation mode: pre-activations of the first hidden layer and its outputs."""
    MLP = ctx.get("MLP")  # noqa: N806 - the student's class
    seed, width = int(ctx.settings["seed"]), int(ctx.settings["width"])
    x = inputs(6, 1, SIDE, SIDE, seed=seed)
    out = {}
    for name in ACTIVATIONS:
        entry: dict = {}
        try:
            model = a_module(MLP(hidden_layers=2, width=width, activation=name, dropout=0.0))
            fix_parameters(model, seed)
            entry.update(_hidden(model, x, training=False, seed=seed))
        except StopProbe:
            raise
        except Exception as err:  # noqa: BLE001
            entry.update(failure(err))
        out[name] = entry
    return out


@OWN.check("mlp_activation", observe=mlp_hidden)
def _(seen, want, ctx) -> Verdict:
    problems = []
    raised = False  # some activation raised or was not observed
    for name in ACTIVATIONS:
        _want_ok(want[name], f"activation={name!r}")
        entry = seen.get(name)
        where = f"MLP(activation={name!r})"
        if isinstance(entry, dict) and "wrong" in entry:
            problems.append(f"{where}: {entry['wrong']}")
            continue
        if not isinstance(entry, dict) or "error" in entry:
            problems.append(
                f"{where} raised {entry['error']}"
                if isinstance(entry, dict)
                else f"{where}: nothing observed"
            )
            raised = True
            continue
        pre, post = entry.get("pre_tensor"), entry.get("post_tensor")
        if not isinstance(pre, torch.Tensor) or not isinstance(post, torch.Tensor):
            problems.append(f"{where}: no hidden layer was observed")
            continue
        # What the hidden layer computes from its own pre-activations: right whatever the
        # widths (the parameter check's business).
        if pre.shape == post.shape and same_values(post, ACTIVATIONS[name](pre)):
            continue
        used = [
            other
            for other, fn in ACTIVATIONS.items()
            if pre.shape == post.shape and same_values(post, fn(pre))
        ]
        problems.append(
            f"{where} applies {used[0]}"
            if used
            else f"{where}: its hidden layer does not apply {name}"
        )
    total = len(ACTIVATIONS)
    return Verdict.partial(
        total - len(problems),
        total,
        (summarise(problems) + ": each hidden layer must use the activation the argument names")
        if problems
        else "the hidden layers use the activation the argument names",
        raised=raised,
    )


def _draw_dropout(rng, manifest) -> dict:
    return {
        "seed": kit.seed(rng),
        "width": rng.randint(200, 400),
        "p": rng.choice([0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
        "activation": rng.choice(list(ACTIVATIONS)),
    }


@OWN.observer(draw=_draw_dropout)
def mlp_dropout(ctx) -> dict:
    """The first hidden layer's outputs of MLP(dropout=p) in both modes and of the same MLP with
    dropout=0, under the same fixed weights: what dropout alone changes."""
    MLP = ctx.get("MLP")  # noqa: N806
    s = ctx.settings
    seed = int(s["seed"])
    x = inputs(16, 1, SIDE, SIDE, seed=seed)
    out: dict = {}
    try:
        models = {}
        for key, p in (("dropout", float(s["p"])), ("none", 0.0)):
            models[key] = a_module(
                MLP(hidden_layers=2, width=int(s["width"]), activation=s["activation"], dropout=p)
            )
            fix_parameters(models[key], seed)
        for key, model in models.items():
            for mode in ("eval", "train"):
                hidden = _hidden(model, x, training=mode == "train", seed=seed + 1)
                out[f"{key}_{mode}_tensor"] = hidden["post_tensor"]
    except StopProbe:
        raise
    except Exception as err:  # noqa: BLE001
        out.update(failure(err))
    return out


def _dropout_problem(train: torch.Tensor, plain: torch.Tensor, p: float) -> str | None:
    """None when `train` is `plain` with a fraction of about p of its units zeroed and the
    others scaled by 1/(1 - p) (inverted dropout), else the problem."""
    if train.shape != plain.shape:
        return f"training-mode outputs of shape {tuple(train.shape)}, expected {tuple(plain.shape)}"
    live = plain.abs() > 1e-6
    if not bool(live.any()):
        return "the hidden layer's outputs are all zero"
    ratio = train[live] / plain[live]
    dropped = ratio.abs() < 1e-6
    kept = (ratio - 1 / (1 - p)).abs() < 1e-4 * max(1.0, 1 / (1 - p))
    if not bool(dropped.any()):
        return (
            "no unit is dropped in training mode: use nn.Dropout(p=dropout) after each activation"
        )
    if not bool((dropped | kept).all()):
        return (
            f"in training mode the kept units are not scaled by 1/(1-p) = {1 / (1 - p):.3f} "
            "(nn.Dropout does it), or dropout is not right after the activation"
        )
    fraction = float(dropped.float().mean())
    # The dropped share of n units has a standard deviation sqrt(p(1-p)/n) < 0.01 here.
    if abs(fraction - p) > 0.06:
        return f"{fraction:.2f} of the units are dropped in training mode, expected about p = {p}"
    return None


@OWN.check("mlp_dropout_modes", observe=mlp_dropout)
def _(seen, want, ctx) -> Verdict:
    _want_ok(want, "MLP(dropout=p)")
    p = float(ctx.settings["p"])
    where = f"MLP(dropout={p}, activation={ctx.settings['activation']!r})"
    if "error" in seen:
        return Verdict.error(f"{where} raised {seen['error']}")
    if "wrong" in seen:
        return Verdict.wrong(f"{where}: {seen['wrong']}")
    problems = []
    if not same_values(seen.get("dropout_eval_tensor"), seen.get("none_eval_tensor")):
        problems.append(
            "in evaluation mode its hidden outputs differ from those of the same MLP with "
            "dropout=0: dropout must be off after model.eval() (nn.Dropout, or "
            "F.dropout(..., training=self.training))"
        )
    train, plain = seen.get("dropout_train_tensor"), seen.get("none_train_tensor")
    if not (isinstance(train, torch.Tensor) and isinstance(plain, torch.Tensor)):
        problems.append("nothing observed in training mode")
    elif problem := _dropout_problem(train, plain, p):
        problems.append(problem)
    return Verdict.partial(
        2 - len(problems),
        2,
        f"{where}: " + "; ".join(problems)
        if problems
        else "dropout drops units in training mode only, scaled by 1/(1-p)",
    )


# ---------------------------------------------------------------- the search


class TestSplitTouched(Exception):  # noqa: N818 - it says what happened
    """Raised by the tripwire that stands in for the test split while the search runs."""


class Tripwire:
    """Stands in for the notebook's `test_set` or `test_loader` while the search is probed: any
    use (length, items, iteration, attributes) is recorded and raises."""

    def __init__(self, name: str, record: list):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_record", record)

    def _touch(self, how: str):
        self._record.append(how)
        raise TestSplitTouched(f"{how}: the search used the test split")

    def __getattr__(self, attribute):
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        self._touch(f"{self._name}.{attribute}")

    def __len__(self):
        self._touch(f"len({self._name})")

    def __getitem__(self, index):
        self._touch(f"{self._name}[...]")

    def __iter__(self):
        self._touch(f"iteration over {self._name}")

    def __repr__(self) -> str:
        return f"<{self._name}: the test split, withheld while the search is checked>"


# Two stages of two trials, one epoch each: every code path of a staged search, in seconds.
SEARCH_STAGES = (
    {"share": 0.5, "epochs": 1, "reports": 1, "keep": 2},
    {"share": 0.5, "epochs": 1, "reports": 1, "keep": 0},
)
SEARCH_TRIALS = 4
WITHHELD = ("test_set", "test_loader")


def _draw_search(rng, manifest) -> dict:
    return {
        "seed": rng.randrange(2**16),
        "data_seed": kit.seed(rng),
        "train_images": rng.randint(150, 200),
        "val_images": rng.randint(80, 120),
    }


def _last_report(trial) -> Any:
    """The value a trial reported last (`trial.report(value, step)`, the largest step): what
    the pruner saw at the end of its training; None when it reported nothing."""
    reports = trial.intermediate_values
    return jsonable(reports[max(reports)]) if reports else None


def _study_summary(study) -> dict:
    trials = [
        {
            "number": int(t.number),
            "state": t.state.name,
            "value": jsonable(t.value),
            "last_report": _last_report(t),
        }
        for t in study.trials
    ]
    summary = {"direction": study.direction.name, "trials": trials}
    try:
        summary["best_number"] = int(study.best_trial.number)
        summary["best_value"] = jsonable(study.best_value)
    except Exception as err:  # noqa: BLE001 - no finished trial: the judge says so
        summary["best_error"] = describe_error(err)
    return summary


@OWN.observer(draw=_draw_search)
def search(ctx) -> dict:
    """`run_search` on a tiny data set with a tiny budget, the test split replaced by tripwires
    and the statistics by the grader's own (see `grader_statistics`)."""
    s = ctx.settings
    ns = ctx.ns
    run_search = ctx.get("run_search")
    images, labels = class_images(s["train_images"] + s["val_images"], s["data_seed"])
    # Every fourth validation image carries the next class's label: a trial that learns the
    # classes reaches about 1 on its training images but at most 0.75 on validation, so an
    # objective that returns another accuracy than the validation one shows.
    mislabelled = torch.arange(s["train_images"], len(labels), 4)
    labels[mislabelled] = (labels[mislabelled] + 1) % CLASSES
    data = ImageSet(images, labels)
    train_set = Subset(data, list(range(s["train_images"])))
    val_set = Subset(data, list(range(s["train_images"], len(data))))
    touched: list[str] = []
    replaced = {name: Tripwire(name, touched) for name in WITHHELD}
    replaced["standardisation_images"] = grader_statistics
    saved = {name: ns[name] for name in replaced if name in ns}
    out: dict = {"touched": touched}
    try:
        ns.update(replaced)
        study = run_search(
            train_set,
            val_set,
            SEARCH_TRIALS,
            stages=SEARCH_STAGES,
            seed=int(s["seed"]),
            storage=None,
            device=torch.device("cpu"),
        )
        out["returned"] = type(study).__name__
        out.update(_study_summary(study))
    except StopProbe:
        raise
    except Exception as err:  # noqa: BLE001 - reported as data; the judge decides
        out["error"] = describe_error(err)
    finally:
        for name in replaced:
            if name in saved:
                ns[name] = saved[name]
            else:
                ns.pop(name, None)
    out["touched"] = list(dict.fromkeys(touched))
    return out


@OWN.check("search_never_tests", observe=search)
def _(seen, want, ctx) -> Verdict:
    _want_ok(want, "run_search")
    touched = seen.get("touched") or []
    if touched:
        return Verdict.wrong(
            f"run_search used the test split ({summarise(touched)}): choose hyper-parameters on "
            "the validation split only; the test split is for the final model, once"
        )
    if "error" in seen:
        return Verdict.error(f"run_search raised {seen['error']}, so it could not be checked")
    return Verdict.ok("the search never touched the test split")


@OWN.check("search_best_trial", observe=search)
def _(seen, want, ctx) -> Verdict:
    if "error" in seen:
        return Verdict.wrong(f"run_search raised {seen['error']}")
    if "trials" not in seen:
        return Verdict.wrong(
            f"run_search returned a {seen.get('returned')}, not the last stage's optuna Study"
        )
    if seen.get("direction") != "MAXIMIZE":
        return Verdict.wrong(
            f"the returned study's direction is {seen.get('direction')}: validation accuracy is "
            'maximised (optuna.create_study(direction="maximize"))'
        )
    if "best_error" in seen:
        return Verdict.wrong(f"the returned study has no best trial: {seen['best_error']}")
    done = [
        t
        for t in seen["trials"]
        if t.get("state") == "COMPLETE" and isinstance(t.get("value"), float | int)
    ]
    if not done:
        return Verdict.wrong("the returned study has no completed trial")
    # A trial's value is its validation accuracy after its last epoch, which is also the last
    # value it reported to the pruner: an objective that returns anything else (the training
    # accuracy, say) ranks the trials by something the pruner never saw.
    other = [
        t
        for t in done
        if isinstance(t.get("last_report"), float | int)
        and not math.isclose(t["value"], t["last_report"], rel_tol=1e-6, abs_tol=1e-9)
    ]
    if other:
        t = other[0]
        return Verdict.wrong(
            f"trial {t['number']} returned {t['value']:.4f} but reported the validation "
            f"accuracy {t['last_report']:.4f} after its last epoch: the objective must return "
            "the validation accuracy it reported last (curve['val_accuracy'][-1]), not a "
            "training accuracy or another number"
        )
    best = max(t["value"] for t in done)
    numbers = [t["number"] for t in done if t["value"] == best]
    return Verdict.expect(
        seen.get("best_number") in numbers,
        f"the best trial is the one with the highest validation accuracy ({best:.4f})",
        f"the returned study's best trial is trial {seen.get('best_number')} "
        f"({seen.get('best_value')}), but trial {numbers[0]} reached {best:.4f}",
    )


# ---------------------------------------------------------------- the final model


def _read_config(ctx, name: str) -> dict:
    path = ctx.workdir / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} was not submitted")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{name} is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise TypeError(f"{name} holds a {type(config).__name__}, not a JSON object")
    missing = [k for k in (*ARCHITECTURE, "normalise") if k not in config]
    if missing:
        raise KeyError(f"{name} lacks {', '.join(missing)}")
    return config


def _shapes(state: Mapping[str, Any]) -> list:
    return sorted(list(v.shape) for v in state.values() if isinstance(v, torch.Tensor))


def _predict(ctx, model: nn.Module, transform, seed: int) -> torch.Tensor:
    """(N, classes) scores of the grader's test images (uint8, shuffled) through `transform`
    (which takes PIL images, as the notebook's test loader does)."""
    images = torch.load(ctx.test_images, weights_only=True)  # uint8 (N, 1, 28, 28)
    model.eval()
    torch.manual_seed(seed)  # a model that drops units at evaluation gives one answer per run
    scores = []
    with torch.no_grad():
        for start in range(0, len(images), 500):
            batch = [
                transform(Image.fromarray(image[0].numpy()))
                for image in images[start : start + 500]
            ]
            scores.append(model(torch.stack(batch)).float())
    return torch.cat(scores)


def _draw_predictions(rng, manifest) -> dict:
    return {"seed": kit.seed(rng)}


@OWN.observer(draw=_draw_predictions, reference=False, needs_test_images=True)
def predictions(ctx) -> dict:
    """The submitted model, `MLP(**architecture of the submitted configuration)` with the
    submitted weights, and its scores on the test images through the student's own evaluation
    transform: `make_transforms(mean_image, std_image, **switches of the configuration)[1]`."""
    spec = ctx.manifest.model("mlp")
    entry: dict = {}
    out: dict = {"mlp": entry, "load": {}}
    try:
        config = _read_config(ctx, spec.config)
        out["config"] = jsonable(config)
        if problem := ctx.weights_problems.get(spec.weights):
            raise FileNotFoundError(problem)
        model = ctx.get(spec.class_name)(**{k: config[k] for k in ARCHITECTURE})
        state = torch.load(ctx.weights_dir / spec.weights, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(
                f"{spec.weights} holds a {type(state).__name__}: save model.state_dict()"
            )
        out["load"] = {"file_shapes": _shapes(state), "model_shapes": _shapes(model.state_dict())}
        try:
            model.load_state_dict(state)
        except Exception as err:  # noqa: BLE001
            out["load"]["error"] = describe_error(err, 400)
            raise
        if ctx.test_images is None:
            entry["no_test_split"] = True
            return out
        switches = {k: config[k] for k in TRANSFORM_KEYS if k in config}
        make = ctx.get("make_transforms")
        transform = make(ctx.get("mean_image"), ctx.get("std_image"), **switches)[1]
        entry["logits_tensor"] = _predict(ctx, model, transform, int(ctx.settings["seed"]))
    except StopProbe:
        raise
    except Exception as err:  # noqa: BLE001
        entry["error"] = describe_error(err, 400)
    return out


@OWN.check("config_matches_weights", observe=predictions)
def _(seen, want, ctx) -> Verdict:
    spec = ctx.manifest.model("mlp")
    load = seen.get("load") or {}
    if "file_shapes" not in load:
        reason = (seen.get("mlp") or {}).get("error", "nothing was observed")
        return Verdict.wrong(f"the final model could not be built: {reason}")
    architecture = {k: (seen.get("config") or {}).get(k) for k in ARCHITECTURE}
    built = "MLP(" + ", ".join(f"{k}={v!r}" for k, v in architecture.items()) + ")"
    if "error" in load or load["file_shapes"] != load["model_shapes"]:
        difference = diff_shapes(load["model_shapes"], load["file_shapes"])
        return Verdict.wrong(
            f"{spec.weights} does not fit {built} built from {spec.config}: "
            f"{difference or load.get('error')}; hand in the configuration of the model whose "
            "weights you saved"
        )
    return Verdict.ok(f"{spec.weights} loads into {built} built from {spec.config}")


OWN.check("final_accuracy", observe=predictions)(accuracy_family.judge_model("mlp"))
