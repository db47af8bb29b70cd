"""`make_transforms` (augmentation for training only, a deterministic test transform) and
`parameter_counts` on networks of the grader's."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from grader.checks import kit
from grader.checks.common import WrongValue, jsonable
from grader.checks.kit import judged
from grader.spec import Definitions

OWN = Definitions()
DRAWS = 60  # training-transform calls per image: flip and crop each show up with certainty
PADDING = 2  # RandomCrop(28, padding=2), as the notebook says


def _tensor(out) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise WrongValue(f"the transform returned a {type(out).__name__}, not a tensor")
    return out.detach().float()


def _windows(plain: torch.Tensor, black: float) -> dict[tuple[bool, int, int], torch.Tensor]:
    """(flipped?, dy, dx) -> the 28x28 window at (dy, dx) of the (flipped) image padded with
    black: every output of a flip and a padded random crop, in either order."""
    out = {}
    for flip in (False, True):
        padded = F.pad(plain.flip(-1) if flip else plain, [PADDING] * 4, value=black)
        for dy in range(2 * PADDING + 1):
            for dx in range(2 * PADDING + 1):
                out[(flip, dy, dx)] = padded[:, dy : dy + 28, dx : dx + 28]
    return out


@OWN.observer(draw=kit.draws({}))
def transforms_seen(ctx) -> dict:
    """What `make_transforms(mean, std[, augment=True])` does to seeded 28x28 PIL images: which
    flips and crop offsets the training transform's outputs are, and whether the test
    transforms give the plain normalised image every time."""
    make, seed = ctx.get("make_transforms"), int(ctx.settings["seed"])
    mean, std = ctx.manifest.mean, ctx.manifest.std
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8, generator=g)

    def run(i, image_pixels):
        image = Image.fromarray(image_pixels.numpy())
        plain = (image_pixels.float().unsqueeze(0) / 255 - mean[0]) / std[0]  # (1, 28, 28)
        train, test = make(mean, std, augment=True)
        plain_train, plain_test = make(mean, std)
        outs = [_tensor(train(image)) for _ in range(DRAWS)]
        if any(o.shape != (1, 28, 28) for o in outs):
            raise WrongValue(f"the training transform gave shape {list(outs[0].shape)}")
        windows = _windows(plain, (0 - mean[0]) / std[0])
        seen = [next((k for k, w in windows.items() if torch.allclose(o, w, atol=1e-5)), None)
                for o in outs]  # fmt: skip
        tests = [_tensor(t(image)) for t in (test, test, test, plain_test, plain_train)]
        return {
            "flipped": any(k is not None and k[0] for k in seen),
            "cropped": any(k is not None and k[1:] != (PADDING, PADDING) for k in seen),
            "test_plain": [bool(torch.allclose(t, plain, atol=1e-5)) for t in tests],
        }

    return {"images": kit.per_setting(pixels, seed, run)}


@judged(OWN, transforms_seen, "images", "make_transforms(MEAN, STD, augment=True)[0]")
def train_transform_augments(entry, want, ctx, i) -> str | None:
    missing = [name for name in ("flipped", "cropped") if not entry[name]]
    if not missing:
        return None
    return (
        f"in {DRAWS} calls on one image it never {' or '.join(missing)} the image (expected a "
        f"horizontal flip with p = 0.5 and RandomCrop(28, padding={PADDING}), then ToTensor "
        "and Normalize)"
    )


TEST_CALLS = ("test transform", "test transform again", "test transform a third time",
              "make_transforms(MEAN, STD)[1]", "make_transforms(MEAN, STD)[0]")  # fmt: skip


@judged(OWN, transforms_seen, "images", "make_transforms' test transforms")
def test_transform_deterministic(entry, want, ctx, i) -> str | None:
    wrong = [call for call, same in zip(TEST_CALLS, entry["test_plain"], strict=True) if not same]
    if not wrong:
        return None
    return (
        f"{', '.join(wrong)}: not ToTensor and Normalize(MEAN, STD) of the image: the test "
        "transform (and everything with augment=False) must not augment"
    )


class PytorchExampleNet(nn.Module):
    """The network of pytorch/examples' MNIST script (the notebook's Net), the grader's copy."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
        return self.fc2(self.dropout2(x))


def _draw_counted(rng, manifest) -> dict:
    names = rng.sample(["conv", "features", "pool", "squash", "head", "dense", "norm", "bn"], 4)
    return {"names": names, "channels": rng.randint(2, 9), "features": rng.randint(3, 40)}


@OWN.observer(draw=_draw_counted)
def counted(ctx) -> dict:
    """parameter_counts of the grader's copy of Net and of a network with drawn names and sizes,
    beside the counts the grader takes of the same modules."""
    s, c, f = ctx.settings, int(ctx.settings["channels"]), int(ctx.settings["features"])
    # The drawn names, in order, of a conv, a pool (no parameters), a linear and a batch norm.
    layers = [nn.Conv2d(1, c, 3), nn.MaxPool2d(2), nn.Linear(c * 13 * 13, f), nn.BatchNorm1d(f)]
    models = [PytorchExampleNet(), nn.ModuleDict(zip(s["names"], layers, strict=True))]

    def run(i, model):
        truth = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_children()}
        truth["total"] = sum(p.numel() for p in model.parameters())
        return {"returned": jsonable(ctx.get("parameter_counts")(model)), "truth": truth}

    return {"models": kit.per_setting(models, 0, run)}


def _where(ctx, i, want) -> str:
    return "parameter_counts(Net())" if i == 0 else f"parameter_counts({want['truth']})"


@judged(OWN, counted, "models", _where)
def parameter_counts(entry, want, ctx, i) -> str | None:
    got, truth = entry["returned"], entry["truth"]
    if not isinstance(got, dict):
        return f"returned {got!r}, not a dict"
    wrong = [k for k, n in truth.items() if got.get(k, 0 if n == 0 else None) != n]
    wrong += [k for k in got if k not in truth]
    if not wrong:
        return None
    return (
        f"returned {got}; the model has {truth} (count each direct submodule's parameters "
        "and the total from the model passed in, never typed numbers)"
    )
