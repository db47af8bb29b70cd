"""`mlp_tuning`'s statistics: `standardisation_images` on a known Subset (shapes, which images,
the std image's formula), and the notebook's own mean and std images, which must be those of
the sheet's seeded training split, made by a `split_train_validation` that obeys its seed."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
from torch.utils.data import Subset

from grader.checks import kit
from grader.checks.common import array_record, pair_of, per_pixel, same_values, summarise
from grader.checks.families.accuracy import Unjudgeable
from grader.checks.families.images import ImageSet, noise_images
from grader.checks.kit import judged
from grader.checks.mlp_tuning.shared import EPSILON
from grader.spec import Definitions, Verdict

OWN = Definitions()
NOTEBOOK_IMAGES = ("mean_image", "std_image")


def _draw_statistics(rng, manifest) -> dict:
    cases = []
    for _ in range(2):
        n, size = rng.randint(30, 60), rng.randint(8, 16)
        cases.append({"seed": kit.seed(rng), "images": n, "indices": rng.sample(range(n), size)})
    return {"cases": cases}


@OWN.observer(draw=_draw_statistics)
def statistics(ctx) -> dict:
    """`standardisation_images` on a Subset of a known data set: a few of its images, shuffled."""
    fn = ctx.get("standardisation_images")

    def run(i, case):
        data = ImageSet(noise_images(case["images"], case["seed"]))
        out = fn(Subset(data, case["indices"]))
        # One (2, ...) tensor of both images is the pair's form (stats_shape's), not its values'.
        stacked = isinstance(out, torch.Tensor) and out.dim() > 1 and len(out) == 2
        result = pair_of(tuple(out) if stacked else out, "(mean_image, std_image)")
        entry: dict = {"stacked": stacked}
        for name, value in zip(("mean", "std"), result, strict=True):
            entry.update(array_record(value, name))
        return entry

    return {"runs": kit.per_setting(ctx.settings["cases"], 0, run)}


def _subset(ctx, i: int, want: dict) -> str:
    case = ctx.settings["cases"][i]
    return f"standardisation_images(a Subset of {len(case['indices'])} of {case['images']} images)"


@judged(OWN, statistics, "runs", _subset)
def stats_shape(entry, want, ctx, i) -> str | None:
    if entry.get("stacked"):
        return "it returned one stacked tensor, expected two tensors (mean_image, std_image)"
    for name in ("mean", "std"):
        got, target = entry.get(f"{name}_tensor"), want[f"{name}_tensor"]
        kind = entry[f"{name}_type"]
        if not isinstance(got, torch.Tensor) or got.shape != target.shape:
            return (
                f"the {name} image is {kind}, expected a float32 tensor of shape "
                f"{tuple(target.shape)} (one value per pixel, not one per image set)"
            )
        if not entry[f"{name}_float"]:
            return f"the {name} image is {kind} but not float32"
    return None


@judged(OWN, statistics, "runs", _subset)
def stats_training_subset(entry, want, ctx, i) -> str | None:
    # Which images: the mean image says it, whatever the std formula.
    got = per_pixel(entry.get("mean_tensor"), want["mean_tensor"])
    if got is None:
        return f"the mean image is {entry['mean_type']}, not one value per pixel"
    if same_values(got, want["mean_tensor"]):
        return None
    if bool((got == got.flatten()[0]).all()):  # the mean of every pixel of every image
        return "the mean image holds one value for all pixels: average the images, pixel by pixel"
    return (
        "the mean image is not the mean of the subset's images: use only the images "
        "`subset.indices` names (subset.dataset.data[subset.indices]), on the 0..1 scale"
    )


@judged(OWN, statistics, "runs", _subset)
def stats_formula(entry, want, ctx, i) -> str | None:
    target = want["std_tensor"]
    got = per_pixel(entry.get("std_tensor"), target)
    if got is None:
        return f"the std image is {entry['std_type']}, not one value per pixel"

    near = functools.partial(same_values, rtol=1e-5, atol=1e-6)  # atol: std images are < 1
    n = len(ctx.settings["cases"][i]["indices"])
    unbiased = (target - EPSILON) * math.sqrt(n / (n - 1)) + EPSILON  # what 1/(N-1) gives
    if near(got, target):
        return None
    if near(got + EPSILON, target):
        return "the std image lacks the + 1e-5 (pixels equal in every image give 0, not 1e-5)"
    if near(got, unbiased) or near(got, unbiased - EPSILON):
        return "the std image divides by N - 1: the sheet's formula divides by N (correction=0)"
    return (
        "the std image is not sqrt((1/N) sum (X_i - X_mu)^2) + 1e-5 over the subset's N images, "
        "pixel by pixel"
    )


# A split that ignores its `seed` (random_split without its generator) differs here, under another
# global seed; in the notebook the set-up cell's torch.manual_seed(0) hides it for seed 0.
SPLIT_PROBE = "split_train_validation(range(60), validation_size=20, seed=7)"


def split_indices(split) -> list:
    """The item indices of the two parts of SPLIT_PROBE, under the global seed 0."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        parts = split(range(60), validation_size=20, seed=7)
    return [[int(i) for i in part.indices] for part in parts]


@OWN.observer(reference=False)
def notebook_images(ctx) -> dict:
    """The notebook's own `mean_image` and `std_image` (of its training split, by its cells),
    and what its `split_train_validation` gives for SPLIT_PROBE."""
    images = kit.per_setting(NOTEBOOK_IMAGES, 0, lambda i, n: array_record(ctx.get(n), "image"))
    split: dict = {}
    with kit.recorded(split):
        split["indices"] = split_indices(ctx.get("split_train_validation"))
    return {"images": images, "split": split}


def training_statistics(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std images of the real training split (the sheet's 55,000 of 60,000 images,
    split with its seed), computed with the reference code; trusted side only. Unjudgeable
    when this machine does not have the data set."""
    from solutions.data import DataNotFoundError, resolve_root

    try:
        root = resolve_root(dataset).root
    except DataNotFoundError as err:
        why = str(err).splitlines()[0]
        raise Unjudgeable(f"the grading machine has no {dataset} training split ({why})") from None
    return _statistics_of(dataset, root)


@functools.lru_cache(maxsize=2)  # once per data set and folder: a process may grade on both
def _statistics_of(dataset: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from solutions.data import load_split
    from solutions.mlp_tuning.config import SPLIT_SEED, VALIDATION_SIZE
    from solutions.mlp_tuning.student import split_train_validation, standardisation_images

    images, _ = load_split(dataset, train=True, root=root)
    train, _ = split_train_validation(range(len(images)), VALIDATION_SIZE, SPLIT_SEED)
    return standardisation_images(Subset(ImageSet(images[:, 0]), train.indices))


@OWN.check(observe=notebook_images)
def notebook_statistics(seen, want, ctx) -> Verdict:
    from solutions.mlp_tuning.student import split_train_validation  # trusted side only

    truth = training_statistics(ctx.manifest.dataset)
    problems = []
    split = seen["split"]
    if split.get("indices") != split_indices(split_train_validation):
        problems.append(f"{SPLIT_PROBE} gave {split.get('error') or 'another split'}")
    for name, entry, target in zip(NOTEBOOK_IMAGES, seen["images"], truth, strict=True):
        if "error" in entry or "wrong" in entry:
            problems.append(f"{name}: {entry.get('error') or entry['wrong']}")
        elif (got := per_pixel(entry.get("image_tensor"), target)) is None:
            problems.append(f"{name} is {entry['image_type']}, not a 28x28 image")
        elif not same_values(got, target):
            problems.append(f"{name} is not that of the 55,000 training images of the seeded split")
    if problems:  # blind 15: a right split and functions, the images replaced by a later cell
        return Verdict.wrong(
            summarise(problems) + ": split_train_validation must split with random_split and a "
            "torch.Generator seeded with `seed`, len(dataset) - validation_size items for training"
            " first, and mean_image, std_image be standardisation_images(train_subset) unreplaced"
        )
    return Verdict.ok("the notebook standardises with the statistics of its training split")
