"""`make_loaders` on a data set class of the grader's, `parameter_counts` on networks of the
grader's (the transforms are the `transforms` family's)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from grader.checks import kit
from grader.checks.common import WrongValue, child_counts, jsonable, pair_of
from grader.checks.families.images import ROOT, Splits, named_transform, splits_served
from grader.checks.kit import judged
from grader.spec import Definitions

OWN = Definitions()


class PytorchExampleNet(nn.Module):
    """The network of pytorch/examples' MNIST script (the sheet's Net), the grader's copy."""

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
    # The drawn names, in order, of a conv, a pool (no parameters), a block (a linear layer in
    # nn.Sequential: counted as one submodule, not as its own layers) and a batch norm.
    block = nn.Sequential(nn.Linear(c * 13 * 13, f), nn.ReLU())
    layers = [nn.Conv2d(1, c, 3), nn.MaxPool2d(2), block, nn.BatchNorm1d(f)]
    models = [PytorchExampleNet(), nn.ModuleDict(zip(s["names"], layers, strict=True))]

    def run(i, model):
        truth = child_counts(model)  # before the student's function sees the model
        # Buffers (batch norm's running statistics), which a count of state_dict() adds
        buffers = {n: sum(b.numel() for b in c.buffers()) for n, c in model.named_children()}
        buffers["total"] = sum(b.numel() for b in model.buffers())
        got = jsonable(ctx.get("parameter_counts")(model))
        return {"returned": got, "truth": truth, "buffers": buffers}

    found = kit.per_setting(models, 0, run)
    if found[0].get("returned", 0) == found[1].get("returned", 1):  # the same for any model
        found[0]["wrong"] = found[1]["wrong"] = "the same counts for two models (typed numbers?)"
    return {"models": found}


@judged(OWN, counted, "models", ["parameter_counts(Net())", "parameter_counts(a drawn network)"])
def parameter_counts(entry, want, ctx, i) -> str | None:
    got, truth = entry["returned"], entry["truth"]
    if not isinstance(got, dict):
        return f"returned {got!r}, not a dict"
    wrong = [k for k, n in truth.items() if got.get(k, 0 if n == 0 else None) != n]
    wrong += [k for k in got if k not in truth]
    if not wrong:
        return None
    buffers = entry.get("buffers") or {}
    if all(k in truth and buffers.get(k) and got.get(k) == truth[k] + buffers[k] for k in wrong):
        return (
            f"returned {got}; the model has {truth}: the counts of {', '.join(wrong)} add the "
            "buffers (batch norm's running statistics, which state_dict() holds beside the "
            "parameters), which no optimiser trains: count p.numel() over parameters() only"
        )
    how = "parameters of each direct submodule (named_children, not named_modules) and the total"
    return f"returned {got}; the model has {truth} (count the {how} of the model passed in)"


def _Read(read: list) -> type:  # noqa: N802 - a class, as make_loaders is given one
    """`Splits` that notes in `read` each item loaded (blind round 15: a make_loaders that
    materialised the data set raised on the stand-in's strings, told as a TypeError only)."""

    class Read(Splits):
        def __getitem__(self, index):
            read.append(index)
            return super().__getitem__(index)

    return Read


@kit.one_case(OWN, draw=kit.draws({"batch": [16, 32, 50, 100]}))
def loaders_made(ctx) -> dict:
    """make_loaders of the grader's data set class (`Splits`) and transforms (which name
    themselves), with a drawn batch size: what is wrong with each loader."""
    batch, tags = int(ctx.settings["batch"]), ("train_transform", "test_transform")
    make, read = ctx.get("make_loaders"), []
    try:
        made = make(_Read(read), ROOT, *map(named_transform, tags), batch_size=batch)
    except Exception as err:  # items read, then a raise: the stand-in's strings are no images
        if not read:
            raise
        raise WrongValue(
            f"make_loaders read the data set's items itself (all transformed at once?), then "
            f"raised {type(err).__name__}: each loader must serve the data set object it made "
            "(`loader.dataset`), transforming each item as it is served, so that augmentation "
            "draws anew every epoch (the grader's data set gives no images)"
        ) from err
    train, test = pair_of(made, "(train_loader, test_loader)")
    problems = splits_served(train, "training", tags[0], batch, shuffled=True)
    return {"problems": problems + splits_served(test, "test", tags[1], 1000, shuffled=False)}


@judged(OWN, loaders_made, "runs", "make_loaders")
def make_loaders(entry, want, ctx, i) -> str | None:
    return "; ".join(entry["problems"]) or None
