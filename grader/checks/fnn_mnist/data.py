"""`flatten`, `mean_std` on three kinds of data set, and the normalisation `make_loaders`
applies to its test images (on a small MNIST-format folder of the grader's)."""

from __future__ import annotations

import tempfile
from contextlib import suppress
from pathlib import Path

import torch
from torch.utils.data import Subset

from grader.checks import kit
from grader.checks.common import WrongValue, inputs, jsonable, near, same_values
from grader.checks.families.images import ImageSet, loader_moments, uint8_images, write_mnist
from grader.checks.families.images import mean_std_stand_in as right_mean_std
from grader.checks.kit import judged
from grader.spec import Definitions

OWN = Definitions()


@OWN.observer(draw=kit.draws({}))
def flatten_transform(ctx) -> dict:
    flatten, seed = ctx.get("flatten"), int(ctx.settings["seed"])

    def run(i, _):
        out = flatten(inputs(1, 28, 28, seed=seed + i))
        if not isinstance(out, torch.Tensor):
            raise WrongValue(f"it returned a {type(out).__name__}, not a tensor")
        return {"out_tensor": out.detach().float()}

    return {"cases": kit.per_setting(range(2), seed, run)}


@judged(OWN, flatten_transform, "cases", "flatten of a (1, 28, 28) image", name="flatten_transform")
def _flattened(entry, want, ctx, i) -> str | None:
    out, target = entry["out_tensor"], want["out_tensor"]
    if out.shape != target.shape:
        return f"shape {list(out.shape)}, expected {list(target.shape)}"
    if not same_values(out, target):
        return "the pixels are in another order: rows one after another (torch.flatten)"
    return None


DATA = {
    "images": (3, 8),  # few pixels: the sample std (n - 1) differs by more than 1e-5
    "train": (150, 250),
    "test": (30, 60),
    "validation_size": (30, 80),
    "split_seed": (0, 10_000),
    "batch_size": (8, 32),
}


@OWN.observer(draw=kit.draws(DATA))
def data_statistics(ctx) -> dict:
    """mean_std on the three kinds of data set the instructions name, and the test images of
    make_loaders on a small MNIST-format folder whose test images are brighter than its
    training images (statistics of the wrong images give other standardised values)."""
    mean_std, s, seed = ctx.get("mean_std"), ctx.settings, int(ctx.settings["seed"])
    g = torch.Generator().manual_seed(seed)
    data = ImageSet(uint8_images(int(s["images"]), g, 60, 256), to_tensor=True)
    half = torch.randperm(len(data), generator=g)[: len(data) // 2].tolist()

    def stats(i, dataset):  # twice: `image.sub_(mean)` on a list's images changes the caller's
        result, again = mean_std(dataset), jsonable(list(mean_std(dataset)))
        types = ["float" if isinstance(v, float) else type(v).__name__ for v in result]
        return {"types": types, "values": jsonable(list(result)), "again": again}  # np.float64 too

    kinds = [data, Subset(data, half), [data[i] for i in range(len(data))]]
    out = {"stats": kit.per_setting(kinds, seed, stats)}
    train = uint8_images(int(s["train"]), g, 40, 200)
    test = uint8_images(int(s["test"]), g, 150, 256)
    with tempfile.TemporaryDirectory(prefix="dlgrade-mnist-") as folder:
        write_mnist(Path(folder), train, test, g)
        sizes = {"batch_size": int(s["batch_size"]), "validation_size": int(s["validation_size"])}

        def loaders(i, _):  # with a right mean_std: its mistakes cost its own half alone
            with kit.replaced(ctx.ns, {"mean_std": right_mean_std(mean_std)}):
                made = ctx.get("make_loaders")(folder, **sizes, seed=int(s["split_seed"]))
            found = loader_moments(list(made[2]))
            with suppress(Exception):  # the own flatten's shape: its mistake is not charged here
                found["own_shape"] = list(ctx.get("flatten")(torch.zeros(1, 28, 28)).shape)
            return found

        out["loaders"] = kit.per_setting([folder], seed, loaders)
    return out


def _mean_std(entry, want, ctx, i) -> str | None:
    values, target = entry.get("values"), want["values"]
    if not (isinstance(values, list) and len(values) == 2):
        return f"returned {values!r}, expected (mean, std)"
    if not all(near(v, w) for v, w in zip(values, target, strict=True)):
        expected = [round(w, 6) for w in target]
        return f"(mean, std) = {values}, expected {expected} (all pixels, 0..1, population std)"
    if entry.get("types") != want["types"]:
        return f"returned {entry.get('types')}, expected two Python floats (use .item())"
    if entry.get("again", values) != values:  # blind round 18: `image.sub_(mean)` in mean_std
        return (
            f"called again on the same images it returned {entry['again']}: it changed the "
            "caller's images (in place, such as image.sub_(mean)); compute on copies"
        )
    return None


def _standardised(entry, want, ctx, i) -> str | None:
    if entry.get("sample_shape") not in (want["sample_shape"], entry.get("own_shape")):
        return (
            f"its test images have shape {entry.get('sample_shape')}, expected "
            f"{want['sample_shape']} (transforms end with flatten)"
        )
    if (n := len(entry["labels_tensor"])) != (m := len(want["labels_tensor"])):  # root ignored?
        return f"its test loader holds {n} images, expected the {m} of the test split in `root`"
    if not torch.equal(entry["labels_tensor"], want["labels_tensor"]):
        return "its test loader gives other labels: the test split (train=False), unshuffled"
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


# mean_std counts for half, make_loaders for the other half.
OWN.check("normalisation_stats", observe=data_statistics)(
    kit.mean_of(MEAN_STD, LOADERS, ok="mean_std and make_loaders are right")
)
