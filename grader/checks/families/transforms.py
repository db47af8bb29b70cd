"""Data augmentation: the student's `(train_transform, test_transform)` on images the grader
draws, judged against what a flip and a padded crop can give.

The training transform must flip the image left-right with p = 0.5 and cut a window of the
image's size out of it padded by `padding` pixels, then apply ToTensor and Normalize with the
manifest's `[normalize]` mean and std. Each of its outputs is matched against every candidate
(flipped or not; padded with black before normalising or with zeros after, as RandomCrop on the
tensor does; at each of the (2P + 1)^2 offsets): both flips must show up, and a crop moved by
the full padding. Where other random augmentations may follow (`extra_augmentations`) and no
output matches, the flip and the crop are judged on the training transform with those other
steps set aside (a torchvision Compose: its flips, pads, crops and conversions to a normalised
tensor, in order). The test transform must give exactly ToTensor and Normalize of the image,
every call.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F
from torchvision import transforms
from torchvision.transforms import v2

from grader.checks import kit
from grader.checks.common import WrongValue, kind_of
from grader.spec import CheckSet

NAME = "transforms"
OBSERVER = "transforms"
# Training-transform calls per image: with padding up to 4 a crop moved by the full padding
# (p >= 0.39 per call) and both flips show up with p > 1 - 1e-12.
DRAWS = 60
IMAGES = 2
TOLERANCE = 1e-4  # largest difference to a candidate that still matches it


class TransformsSection(BaseModel):
    """`[transforms]`: how the student makes the two transforms.

    `function` returns (train_transform, test_transform); `normalize_arguments`: it takes the
    manifest's mean and std as its first two arguments; `augment`: keyword arguments that turn
    augmentation on (none: the training transform always augments; given: with them left out,
    neither transform may augment). `padding`: RandomCrop's padding (the crop keeps the image
    size). `extra_augmentations`: other random augmentations may follow the flip and the crop,
    so an output that is neither is not wrong (and where none is, the flip and the crop are
    judged with the Compose's other steps set aside).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: str
    normalize_arguments: bool = False
    augment: dict[str, bool | int | float | str] = {}
    padding: int = Field(ge=1, le=4)
    extra_augmentations: bool = False


# The notebook's names for the manifest's mean and std, set by its given setup cell.
CONSTANTS = ("MEAN", "STD")


def _call(section: TransformsSection, augment: bool) -> str:
    """How the function is called, as a student writes it: "make_transforms(MEAN, STD)"."""
    args = list(CONSTANTS) if section.normalize_arguments else []
    args += [f"{k}={v!r}" for k, v in section.augment.items()] if augment else []
    return f"{section.function}({', '.join(args)})"


# What a flip-and-crop training transform is made of; other steps are extra augmentations. A
# Pad before the crop is the crop's padding written apart (Pad(4), RandomCrop(28) pads by 4),
# not another augmentation: it is judged with the crop, never set aside. Nor are the steps that
# only fix a size or format (Resize(28), CenterCrop(28), Grayscale()): beside one, a padding of
# 4 was excused as "another augmentation"; one that changes the image is judged as it is.
KNOWN_STEPS = tuple(
    getattr(module, name)
    for module in (transforms, v2)
    for name in (
        *("RandomHorizontalFlip", "RandomCrop", "Pad", "ToTensor", "Normalize"),
        *("Resize", "CenterCrop", "Grayscale", "PILToTensor"),
    )
) + (transforms.ConvertImageDtype, v2.ToImage, v2.ToDtype)


COMPOSE = (transforms.Compose, v2.Compose)


def _steps(transform) -> list:
    """The steps of a (nested) torchvision Compose, in order."""
    if isinstance(transform, COMPOSE):
        return [step for inner in transform.transforms for step in _steps(inner)]
    return [transform]


def _known_steps(transform):
    """`transform`, a torchvision Compose, with only its KNOWN_STEPS; None when it is not a
    Compose or has no other step."""
    steps = _steps(transform) if isinstance(transform, COMPOSE) else []
    known = [step for step in steps if isinstance(step, KNOWN_STEPS)]
    return transforms.Compose(known) if len(known) < len(steps) else None


# Seeded calls that tell a step that flips about half the time from one that does not: p = 0.5
# stays within 25 flips of 100 with probability 1 - 5e-4; p = 0.3 strays that far but 1% of runs.
FLIP_DRAWS, FLIP_SLACK = 200, 25


def _flips_half_the_time(step, x, seed: int) -> bool:
    """Whether `step` acts on `x` (a PIL image or tensor) as RandomHorizontalFlip(p=0.5) does:
    every seeded call gives `x` or its mirror image, the mirror about half the time."""
    same, mirror = np.asarray(x), np.asarray(transforms.functional.hflip(x))
    if np.array_equal(same, mirror):
        return False
    flips = 0
    for k in range(FLIP_DRAWS):
        torch.manual_seed(seed + k)
        random.seed(seed + k)
        out = np.asarray(step(x))
        if out.shape != same.shape or not (
            np.array_equal(out, same) or np.array_equal(out, mirror)
        ):
            return False
        flips += np.array_equal(out, mirror)
    return abs(flips - FLIP_DRAWS / 2) <= FLIP_SLACK


def with_reference_flips(transform, image, seed: int):
    """`transform` (a torchvision Compose) with each step that acts on what reaches it from
    `image` as a random horizontal flip (RandomApply of a certain flip, RandomChoice, a Lambda)
    replaced by RandomHorizontalFlip(p=0.5), which draws the reference's random numbers; None
    where nothing is replaced. The flip is then judged by what it does, not how it draws."""
    if not isinstance(transform, COMPOSE):
        return None
    steps, x, replaced = [], image, False
    for step in _steps(transform):
        if not isinstance(step, transforms.RandomHorizontalFlip) and _flips_half_the_time(
            step, x, seed
        ):
            step, replaced = transforms.RandomHorizontalFlip(0.5), True
        steps.append(step)
        torch.manual_seed(seed)
        x = step(x)
    return transforms.Compose(steps) if replaced else None


def _tensor(out) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise WrongValue(f"the transform returned {kind_of(out)}, not a tensor")
    return out.detach().float()


def _candidates(plain: torch.Tensor, black: torch.Tensor, pad: int) -> torch.Tensor:
    """Every output of a flip and a padded crop of the normalised (C, H, W) image `plain`:
    (2 paddings x 2 flips x (2 pad + 1)^2 offsets, C, H, W), offset (dy, dx) at
    dy (2 pad + 1) + dx within its block. `black` (C, 1, 1) is black after normalising."""
    c, h, w = plain.shape
    blocks = []
    for padded in (F.pad(plain - black, (pad,) * 4) + black, F.pad(plain, (pad,) * 4)):
        for image in (padded, padded.flip(-1)):
            windows = image.unfold(1, h, 1).unfold(2, w, 1)  # (C, 2P + 1, 2P + 1, H, W)
            blocks.append(windows.permute(1, 2, 0, 3, 4).reshape(-1, c, h, w))
    return torch.cat(blocks)


def _normalised_with(plain: torch.Tensor, out: torch.Tensor, mean, std) -> list | None:
    """[mean, std] per channel of the Normalize that made `out` of the image that `plain` is
    under the manifest's normalisation, when `out` is that image normalised otherwise (one value
    for every channel, the data's own statistics); else None."""
    if out.shape != plain.shape:
        return None
    x, y = plain.flatten(1).double(), out.flatten(1).double()
    xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    scale = (xc * yc).sum(1) / (xc * xc).sum(1).clamp_min(1e-12)
    if not bool((scale > 0).all()) or float((yc - scale[:, None] * xc).abs().max()) > TOLERANCE:
        return None
    if float((y - x).abs().max()) <= TOLERANCE:  # the manifest's own normalisation
        return None
    std2 = std.flatten().double() / scale  # out = (pixel - mean2) / std2, pixel = plain std + mean
    mean2 = mean.flatten().double() - (y.mean(1) - scale * x.mean(1)) * std2
    return [[round(float(v), 4) for v in mean2], [round(float(v), 4) for v in std2]]


def observe(ctx) -> dict:
    """Per drawn image: the flips and the largest crop offset seen in DRAWS seeded calls of the
    training transform, how many outputs were neither, and whether the test transform (three
    calls; with `augment`, also both transforms made without it) gives the plain image."""
    manifest, section = ctx.manifest, ctx.manifest.transforms
    seed, pad = int(ctx.settings["seed"]), section.padding
    c, h, w = manifest.image_shape
    pixels = np.random.default_rng(seed).integers(0, 256, (IMAGES, h, w, c), dtype=np.uint8)
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in (manifest.mean, manifest.std))
    make = ctx.get(section.function)
    args = (manifest.mean, manifest.std) if section.normalize_arguments else ()

    def run(i, array):
        image = Image.fromarray(array.squeeze(-1) if c == 1 else array)
        plain = (torch.from_numpy(array).permute(2, 0, 1).float() / 255 - mean) / std
        candidates, n = _candidates(plain, -mean / std, pad), (2 * pad + 1) ** 2

        def sample(train) -> tuple[set, set, int]:
            """The flips and crop offsets DRAWS seeded calls of `train` show, and how many
            outputs were neither."""
            flips, offsets, unmatched = set(), {-1}, 0
            for k in range(DRAWS):
                torch.manual_seed(seed + k)
                out = _tensor(train(image))
                if out.shape != plain.shape:
                    raise WrongValue(f"the training transform gave shape {list(out.shape)}")
                distance = (candidates - out).abs().flatten(1).amax(1)
                if float(distance.min()) > TOLERANCE:
                    unmatched += 1
                    continue
                flip, offset = divmod(int(distance.argmin()) % (2 * n), n)
                dy, dx = divmod(offset, 2 * pad + 1)
                flips.add(flip)
                offsets.add(max(abs(dy - pad), abs(dx - pad)))
            return flips, offsets, unmatched

        train, test = make(*args, **section.augment)
        flips, offsets, unmatched = sample(train)
        known = _known_steps(train) if section.extra_augmentations else None
        # Outputs that are neither are excused only where another step may have made them: not
        # in a Compose of flips, pads, crops and conversions alone (RandomCrop(28, padding=4)).
        composed = isinstance(train, COMPOSE)
        extras = section.extra_augmentations and (known is not None or not composed)
        if unmatched == DRAWS and known is not None:  # the other augmentations set aside
            flips, offsets, unmatched = sample(known)
            extras = False
        tests = []
        for k in range(3):
            torch.manual_seed(seed + k)
            tests.append(_tensor(test(image)))
        if section.augment:
            tests += [_tensor(t(image)) for t in reversed(make(*args))]
        return {
            "flips": sorted(flips),
            "offset": max(offsets),
            "unmatched": unmatched,
            "extras": extras,
            "test_same": all(torch.equal(t, tests[0]) for t in tests[1:3]),
            "test_normalised": _normalised_with(plain, tests[0], mean, std),
            "test_plain": [
                t.shape == plain.shape and float((t - plain).abs().max()) <= TOLERANCE
                for t in tests
            ],
        }

    # A later cell that reuses MEAN and STD (the data's own statistics, to compare) made a right
    # make_transforms() normalise with those: it is called with the setup cell's values.
    ns, values = getattr(make, "__globals__", {}), (tuple(manifest.mean), tuple(manifest.std))
    given = {name: ns[name] for name in CONSTANTS if name in ns}
    ns.update({name: value for name, value in zip(CONSTANTS, values, strict=True) if name in given})
    try:
        return {"images": kit.per_setting(list(pixels), seed, run)}
    finally:
        ns.update(given)


def _train_augments(entry, want, ctx, i) -> str | None:
    """Both flips and a crop moved by the full padding seen; outputs that are neither only where
    other augmentations may follow."""
    section = ctx.manifest.transforms
    if entry["unmatched"] == DRAWS or (entry["unmatched"] and not entry["extras"]):
        other = entry.get("test_normalised")  # the test transform's Normalize, if not MEAN, STD
        return (
            f"{entry['unmatched']} of {DRAWS} outputs are none of the image's flips and "
            f"crops with padding {section.padding}, normalised (RandomCrop's own padding: "
            "black, or zeros after normalising, not padding_mode='reflect' or 'edge')"
            + (
                f" (and the test transform normalises with mean {tuple(other[0])} and std "
                f"{tuple(other[1])}, not MEAN and STD)"
                if other
                else ""
            )
        )
    # Outputs that are neither, where other augmentations may follow, are named first: a crop
    # padded otherwise than with black (padding_mode="reflect") matches only where unmoved.
    odd, pad = entry["unmatched"], section.padding
    calls = (
        f"{odd} of {DRAWS} outputs are none of the image's flips and crops with padding {pad} "
        f"(black, or zeros after normalising), and in the other {DRAWS - odd}"
        if odd
        else f"in {DRAWS} calls"
    )
    if entry["flips"] != [0, 1]:
        return f"{calls} it never {'keeps' if entry['flips'] == [1] else 'flips'} the image"
    if entry["offset"] < pad:
        return f"{calls} no crop moves by {pad} pixels: pad by {pad} before cropping"
    return None


def _test_deterministic(entry, want, ctx, i) -> str | None:
    """Every test-transform call (and, with `augment`, both transforms made without it) gives
    the plain normalised image."""
    section = ctx.manifest.transforms
    if not entry["test_same"]:
        return "the test transform gives a different result each time"
    calls = ["the test transform"] * 3
    calls += [f"{_call(section, False)}[{k}]" for k in (1, 0)] if section.augment else []
    wrong = dict.fromkeys(
        c for c, plain in zip(calls, entry["test_plain"], strict=True) if not plain
    )
    if not wrong:
        return None
    if (other := entry.get("test_normalised")) and "the test transform" in wrong:
        if all(abs(m) < 1e-3 for m in other[0]) and all(abs(v - 1) < 1e-3 for v in other[1]):
            return f"{' and '.join(wrong)}: ToTensor() alone, without Normalize(MEAN, STD)"
        return (
            f"{' and '.join(wrong)}: ToTensor() then Normalize with mean {tuple(other[0])} and "
            f"std {tuple(other[1])}, not the given MEAN and STD"
        )
    return f"{' and '.join(wrong)}: not ToTensor() then Normalize(MEAN, STD) of the image"


JUDGES = {"train_augments": _train_augments, "test_deterministic": _test_deterministic}


def _hint(manifest, kind: str) -> str:
    section, size = manifest.transforms, manifest.image_shape[1]
    if kind == "train_augments":
        return (
            f"expected RandomHorizontalFlip() and RandomCrop({size}, padding={section.padding}), "
            "then ToTensor() and Normalize(MEAN, STD)"
        )
    only = f", and only in {_call(section, True)}" if section.augment else ""
    return (
        "the test transform is ToTensor() then Normalize(MEAN, STD) and nothing else: "
        f"augmentation belongs to the training transform only{only}"
    )


def _where(section: TransformsSection, kind: str):
    """`where` for kit.every_setting: the call judged, on drawn image i."""
    what = f"{_call(section, True)}[0]" if kind == "train_augments" else f"{section.function}"
    return lambda ctx, i, want: f"{what} on the grader's image {i + 1}"


def source_problem(manifest, parts: list[str]) -> str | None:
    """What is wrong with a check source "transforms.<kind>", if anything."""
    if manifest.transforms is None:
        return "the manifest has no [transforms] section"
    if len(parts) != 1 or parts[0] not in JUDGES:
        return f"write it as transforms.<kind> (kinds: {', '.join(JUDGES)})"
    return None


def register(checks: CheckSet, manifest) -> None:
    """The transforms observer and the checks whose source is "transforms.<kind>"."""
    sourced = manifest.sourced(NAME)
    if not sourced:
        return
    checks.add_observer(OBSERVER, observe, draw=kit.draws({}))
    section = manifest.transforms
    for check in sourced:
        kind = check.source.split(".")[1]
        judge = kit.every_setting(
            "images", JUDGES[kind], _where(section, kind), _hint(manifest, kind)
        )
        checks.add_check(check.name, OBSERVER, judge)
