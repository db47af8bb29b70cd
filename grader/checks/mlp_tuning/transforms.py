"""`mlp_tuning`'s transforms: `make_transforms(...)` on fixed PIL images under seeded RNG against
the reference: augmentations, each switch doing only its own, evaluation without augmentation."""

from __future__ import annotations

import torch
from PIL import Image

from grader.checks import kit
from grader.checks.common import pair_of, same_values
from grader.checks.families.images import transformed
from grader.checks.families.transforms import with_reference_flips
from grader.checks.kit import judged
from grader.checks.mlp_tuning.shared import SIDE, SWITCHES
from grader.spec import Definitions

OWN = Definitions()

# The make_transforms calls probed for each check, as (which transform: 0 training,
# 1 evaluation; normalise; the switches on). The last "switches" call also records the
# evaluation transform's images: that call is compared with them, not with the reference.
CALLS = {
    "augments": [(0, normalise, SWITCHES) for normalise in (False, True)],
    "switches": [(0, False, on) for on in ((), *((s,) for s in SWITCHES))] + [(0, True, ())],
    "evaluation": [(1, normalise, on) for on in (SWITCHES, ()) for normalise in (True, False)],
}


def _draw_transforms(rng, manifest) -> dict:
    return {"seed": kit.seed(rng), "rng_seeds": [kit.seed(rng) for _ in range(4)], "images": 3}


@OWN.observer(draw=_draw_transforms)
def transform_outputs(ctx) -> dict:
    """What `make_transforms(mean_image, std_image, normalise=..., flip=..., rotation=...,
    resized_crop=...)` does to fixed PIL images, under seeded RNG."""
    make, s = ctx.get("make_transforms"), ctx.settings
    g = torch.Generator().manual_seed(int(s["seed"]))
    pixels = torch.randint(0, 256, (s["images"], SIDE, SIDE), dtype=torch.uint8, generator=g)
    images = [Image.fromarray(p.numpy()) for p in pixels]
    mean_image = torch.rand(SIDE, SIDE, generator=g) * 0.5
    std_image = torch.rand(SIDE, SIDE, generator=g) * 0.5 + 0.2
    seeds = [int(v) for v in s["rng_seeds"]]

    def run(i, call):
        which, normalise, on = call
        switches = {k: k in on for k in SWITCHES}
        pair = make(mean_image, std_image, normalise=normalise, **switches)
        pair = pair_of(pair, "(train_transform, eval_transform)")
        if normalise and which:  # transforms made later, from other images, leave this one alone
            make(mean_image + 0.25, std_image * 2, normalise=True, **switches)
        # A flip that draws other random numbers (RandomApply) moves every later draw.
        used = pair[1] if which else with_reference_flips(pair[0], images[0], seeds[0]) or pair[0]

        def unscaled(transform):  # standardised training images back on the 0..1 scale, where
            # a grey level is one step at every pixel; augmenting after Standardise shows there
            out = transformed(transform, images, seeds)
            scaled = normalise and which == 0 and out.shape[-2:] == std_image.shape
            return out * std_image + mean_image if scaled else out

        entry = {"outputs_tensor": unscaled(used)}
        if normalise and which == 0:  # standardised training images, and evaluation ones
            entry["eval_tensor"] = unscaled(pair[1])
        if normalise and which:  # and unstandardised: tells Standardise's arithmetic apart
            _, plain = make(mean_image, std_image, normalise=False, **switches)
            entry["plain_tensor"] = transformed(plain, images, seeds)
        return entry

    return {key: kit.per_setting(calls, 0, run) for key, calls in CALLS.items()}


def _calls(key: str) -> list[str]:
    """The transform of each call of CALLS[key], for a message."""
    return [
        f"the {('training', 'evaluation')[which]} transform with normalise={normalise}, "
        + (", ".join(f"{k}=True" for k in on) or "no augmentation")
        for which, normalise, on in CALLS[key]
    ]


# Augmenting after ToTensor draws the same random numbers but skips PIL's rounding to grey levels:
# within one level but for a few pixels nearest-neighbour rotation rounds the other way (at most
# 0.2% over 8 seeds; rotating 9 degrees instead of 10 moves 12-24%, another crop or flip most).
GREY_LEVEL = 1.5 / 255
ODD_PIXELS = 0.01
STANDARDISE = "with normalise, make_transforms must apply Standardise, (x - mean_image) / std_image"
STANDARDISE += " with the images it is given (its own, even after another Standardise is made)"
AUGMENTS = (
    "with every switch on it must apply RandomHorizontalFlip(p=0.5), RandomRotation(10) and "
    "RandomResizedCrop(28, scale=(0.7, 1.0)), in this order, then ToTensor (and Standardise)"
)
EVALUATION = "the evaluation transform is ToTensor (+ Standardise when normalise), no augmentation"


def _differs(entry, want, unscaled: bool) -> str | None:
    """None when the student's transform gave the reference's images (`unscaled`, 0..1 images:
    within GREY_LEVEL but for ODD_PIXELS of the pixels), else the problem."""
    got, target = entry["outputs_tensor"], want["outputs_tensor"]
    if got.shape != target.shape:
        return f"gives images of shape {tuple(got.shape[1:])}, expected {tuple(target.shape[1:])}"
    odd = float(((got.double() - target.double()).abs() > GREY_LEVEL).double().mean())
    if not same_values(got, target) and not (unscaled and odd <= ODD_PIXELS):
        return "gives other images than the reference (same images, same RNG seeds)"
    return None


def _judge(key: str, hint: str = ""):
    """Declare the decorated test as the judge of its check over the calls CALLS[key]."""
    return judged(OWN, transform_outputs, key, _calls(key), hint=hint)


@_judge("augments")
def train_transform_augments(entry, want, ctx, i) -> str | None:
    problem = _differs(entry, want, unscaled=True)
    ours, theirs = entry.get("eval_tensor"), want.get("eval_tensor")
    if problem and theirs is not None and not same_values(ours, theirs):  # Standardise's
        return f"{problem}, and so does its evaluation transform: {STANDARDISE}"
    return problem and f"{problem}: {AUGMENTS}"


@_judge("switches", "each switch turns on its own augmentation and nothing else")
def augmentations_switchable(entry, want, ctx, i) -> str | None:
    if "eval_tensor" not in want:
        return _differs(entry, want, unscaled=True)
    # With every augmentation off, normalise=True standardises training images exactly as the
    # student's own evaluation transform does (whose arithmetic is the evaluation check's).
    if not same_values(entry["outputs_tensor"], entry["eval_tensor"]):
        return "it does not standardise like the evaluation transform (ToTensor, then Standardise)"
    return None


@_judge("evaluation")
def eval_transform_deterministic(entry, want, ctx, i) -> str | None:
    normalise = CALLS["evaluation"][i][1]
    problem = _differs(entry, want, unscaled=not normalise)
    if problem and same_values(entry.get("plain_tensor"), want.get("plain_tensor")):
        return f"{problem}, but right without normalise: {STANDARDISE}"
    outputs, n = entry["outputs_tensor"], ctx.settings["images"]
    if problem and len(outputs) >= 2 * n and not torch.equal(outputs[:n], outputs[n : 2 * n]):
        problem += " and changes from call to call (augmentation belongs to training)"
    return problem and f"{problem}: {EVALUATION}"
