"""`flatten`, `mean_std` on three kinds of data set, and the normalisation `make_loaders`
applies to its test images (on a small MNIST-format folder of the grader's)."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from grader.checks import kit
from grader.checks.common import WrongValue, inputs, jsonable, same_values
from grader.checks.fnn_mnist.judging import near
from grader.checks.kit import judged
from grader.spec import Definitions, Verdict

OWN = Definitions()


@OWN.observer(draw=lambda rng, manifest: {"seed": kit.seed(rng)})
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
    if not all(near(v, w) for v, w in zip(values, target, strict=True)):
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
