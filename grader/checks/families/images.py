"""Images and data sets of the grader's own, for observers that run a student's data code.

Stand-ins shaped as torchvision's MNIST-style data sets (`ImageSet`) and for their classes
(`Splits`: items that name their split and transform), seeded uint8 images (`uint8_images`:
brightness varying from image to image; `noise_images`: noise with constant pixels;
`class_images`: one pattern per class, so that a few steps of training tell the classes apart),
a folder in MNIST's own file format (`write_mnist`), and what a loader or a transform made of
them (`loader_moments`, `transformed`, `splits_served`), and a right `mean_std` to run a
student's loaders with (`mean_std_stand_in`). Not a family: the own checks of
assignments use it, as `behaviour`.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from grader.checks.common import WrongValue, kind_of, plain


class ImageSet(Dataset):
    """A stand-in for torchvision's MNIST or FashionMNIST: `.data` uint8 (N, H, W), `.targets`
    (N,) (all 0 when not given), and items (PIL image, label) as the data set gives them without
    a transform, or (image (1, H, W) in 0..1, label) with `to_tensor` (transforms.ToTensor())."""

    def __init__(self, data: torch.Tensor, targets=None, *, to_tensor: bool = False):
        self.data, self.to_tensor = data, to_tensor
        self.targets = torch.zeros(len(data), dtype=torch.int64) if targets is None else targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        if self.to_tensor:
            return self.data[index].unsqueeze(0).float() / 255, int(self.targets[index])
        return Image.fromarray(self.data[index].numpy()), int(self.targets[index])


ROOT = "grader-files"  # the root `Splits` is given: a folder nobody types for "data"


class Splits(Dataset):
    """A stand-in for a torchvision MNIST-style data set class (its arguments), for code given
    the class: SIZES[train] items, each (what `transform` makes of "training" or "test", the
    item's index), so that a loader over it shows the split, the transform and the order it
    serves without loading an image. It has torchvision's attributes too (`classes`, uint8
    `data`, `targets`): code may read them, as the notebook's own cells do."""

    SIZES = {True: 2100, False: 2500}

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root, self.train, self.transform = root, bool(train), transform
        self.classes = [f"class {c}" for c in range(10)]
        self.targets = torch.arange(self.SIZES[self.train]) % 10
        self.data = torch.zeros(self.SIZES[self.train], 28, 28, dtype=torch.uint8)

    def __len__(self) -> int:
        return self.SIZES[self.train]

    def __getitem__(self, index):
        split = "training" if self.train else "test"
        return (self.transform(split) if self.transform else split), index


def named_transform(name: str):
    """A transform of the grader's for `Splits`' items: it names itself and what it was given."""
    return lambda split: f"{name} of the {split} split"


def splits_served(loader, split: str, transform: str, batch: int, shuffled: bool) -> list[str]:
    """What is wrong with a loader over `Splits` that should serve `split` through the
    `named_transform` `transform` in batches of `batch`, shuffled anew every pass or in order
    under `ROOT` (read from two passes of its batch sampler: no item is loaded; a
    training loader may drop its last batch)."""
    name, size = f"the {split} loader", Splits.SIZES[split == "training"]
    first, want = loader.dataset[0][0], f"{transform} of the {split} split"
    if not isinstance(first, str):  # another class than the one given
        return [f"{name} does not serve a data set of the class it was given"]
    if first != want:
        return [f"{name}'s data set gives {first!r}, expected {want!r}"]
    if not isinstance(loader.dataset, Splits):  # a wrapper, a Subset: `loader.dataset` is asked
        part = (
            "; a Subset serves only part of the split" if isinstance(loader.dataset, Subset) else ""
        )
        return [
            f"{name}'s `dataset` is of type {type(loader.dataset).__name__}, not the data set "
            f"object made of the class it was given (`loader.dataset` is that object itself{part})"
        ]
    if os.path.abspath(str(root := getattr(loader.dataset, "root", None))) != os.path.abspath(ROOT):
        return [f"{name}'s data set has the root {root!r}, not the root it was given"]
    passes = [[list(b) for b in loader.batch_sampler] for _ in range(2)]
    order, sizes = [i for b in passes[0] for i in b], [len(b) for b in passes[0]]
    problems = []
    if set(sizes[:-1]) - {batch} or sizes[-1] > batch:
        problems.append(f"{name} gives batches of {sorted(set(sizes))} items, expected {batch}")
    if shuffled and (len(set(order)) != len(order) or not size - batch < len(order) <= size):
        problems.append(f"{name} does not serve each of its {size} items once")
    elif shuffled and (order == sorted(order) or passes[0] == passes[1]):
        problems.append(f"{name} is not shuffled anew every pass (shuffle=True)")
    elif not shuffled and order == list(range(len(order))) and len(order) < size:
        problems.append(
            f"{name} serves {len(order)} of its {size} items: every one, the last batch too "
            "(no drop_last=True)"
        )
    elif not shuffled and order != list(range(size)):
        problems.append(f"{name} does not serve its {size} items in order (shuffle=False)")
    return problems


def uint8_images(n: int, generator: torch.Generator, low: int, high: int) -> torch.Tensor:
    """`n` images (n, 28, 28) whose brightness varies from image to image (so subsets differ):
    each image's pixels are uniform below its own maximum, drawn from [low, high)."""
    scale = torch.randint(low, high, (n, 1, 1), generator=generator)
    return (torch.rand(n, 28, 28, generator=generator) * scale).to(torch.uint8)


def noise_images(n: int, seed: int) -> torch.Tensor:
    """uint8 (n, 28, 28) of seeded noise; the two top rows are black in every image and one
    pixel is white in all of them, so that a per-pixel std is exactly 0 there."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    data[:, :2] = 0
    row, col = (int(v) for v in torch.randint(2, 28, (2,), generator=g))
    # White (1.0): E[x^2] - E[x]^2 in float32 is then 0 too (a grey's rounding: sqrt ~1e-4, NaN)
    data[:, row, col] = 255
    return data


def class_images(
    n: int, seed: int, classes: int = 10, side: int = 28
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, side, side) images and their labels: a seeded pattern per class plus noise, so
    a few steps of training already tell the classes apart better than chance."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, side, side, generator=g)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g)]
    noise = torch.rand(n, side, side, generator=g)
    images = (0.7 * patterns[labels] + 0.3 * noise) * 255
    return images.round().to(torch.uint8), labels


def write_mnist(root: Path, train: torch.Tensor, test: torch.Tensor, g: torch.Generator) -> None:
    """The four uncompressed IDX files torchvision's MNIST reads, under root/MNIST/raw/: the
    uint8 (N, 28, 28) images `train` and `test`, with labels drawn from `g`."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, images in (("train", train), ("t10k", test)):
        labels = torch.randint(0, 10, (len(images),), generator=g, dtype=torch.uint8)
        header = struct.pack(">IIII", 2051, len(images), 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.numpy().tobytes())
        header = struct.pack(">II", 2049, len(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.numpy().tobytes())


def loader_moments(batches) -> dict:
    """What a loader's (images, labels) batches hold, whatever order each image's pixels are in:
    per-image sums of values and of squares, the labels in loader order, the per-sample shape."""
    xs, ys = zip(*batches, strict=True)
    xs = [plain(b) for b in xs]  # a tensor subclass of the student's answers len() its own way
    x = torch.cat([b.reshape(len(b), -1) for b in xs]).double()
    return {
        "sample_shape": list(xs[0].shape[1:]),
        "sums_tensor": x.sum(1),
        "squares_tensor": (x**2).sum(1),
        "labels_tensor": torch.cat([torch.as_tensor(y) for y in ys]).long(),
    }


def mean_std_stand_in(own):
    """A `mean_std(dataset)` that gives the (mean, std) of every pixel on the 0..1 scale
    (population std) of a data set with uint8 `.data`, a Subset of one, or (image, label)
    pairs, and calls `own` (the student's) on anything else: a student's loaders then run with
    right statistics, so that a mistake in their mean_std is charged to mean_std alone."""

    def mean_std(dataset):
        try:
            if isinstance(dataset, Subset) and hasattr(dataset.dataset, "data"):
                pixels = torch.as_tensor(dataset.dataset.data)[list(dataset.indices)]
            elif hasattr(dataset, "data"):
                pixels = torch.as_tensor(dataset.data)
            else:
                pixels = torch.stack([torch.as_tensor(image) for image, _ in dataset])
        except Exception:  # noqa: BLE001 - a data set of another kind: the student's own
            return own(dataset)
        pixels = pixels.double() / (255 if pixels.dtype == torch.uint8 else 1)
        return pixels.mean().item(), pixels.std(correction=0).item()

    return mean_std


def transformed(transform, images: list, seeds: list[int]) -> torch.Tensor:
    """(len(seeds) * len(images), *image shape): `transform` of every image in turn after
    `torch.manual_seed(seed)`, for each seed (so each random choice of the transform is drawn
    once per call); a `WrongValue` when it does not give tensors of one shape."""
    outs = []
    for seed in seeds:
        torch.manual_seed(seed)
        for image in images:
            out = transform(image)
            if not isinstance(out, torch.Tensor):
                raise WrongValue(f"the transform returned {kind_of(out)}, not a tensor")
            outs.append(out.detach().cpu().float())
    shapes = {tuple(o.shape) for o in outs}
    if len(shapes) != 1:
        raise WrongValue(f"the transform returned tensors of shapes {sorted(shapes)}")
    return torch.stack(outs)
