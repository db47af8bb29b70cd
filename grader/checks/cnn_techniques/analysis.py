"""Looking inside the network, on networks of the grader's: `fc1_features` (what t-SNE is
given), `activation_maximisation` (ascent from an empty image) and `confusion` (rows: true
classes)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from grader.checks import kit
from grader.checks.cnn_techniques.inputs import PytorchExampleNet
from grader.checks.common import WrongValue
from grader.checks.families import behaviour
from grader.spec import Definitions, Verdict

OWN = Definitions()
CPU = torch.device("cpu")
DREAM_STEPS = 30
DRAW = kit.draws({"images": (20, 45), "target": (0, 9)})  # target: a class


def _tensor(value, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise WrongValue(f"{what} is a {type(value).__name__}, not a tensor or array") from None


@OWN.observer(draw=DRAW)
def features_seen(ctx) -> dict:
    """fc1_features of the grader's Net (drawn weights) over drawn images in batches of 16,
    beside fc1's output on them in evaluation mode (a forward hook of the grader's)."""
    s = ctx.settings

    def run() -> dict:
        model = PytorchExampleNet()
        g = torch.Generator().manual_seed(int(s["seed"]))
        x = torch.randn(int(s["images"]), 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (len(x),), generator=g)
        fc1 = behaviour.linear_calls(model, x, training=False, seed=int(s["seed"]))[0][1]
        model.train()
        loader = DataLoader(TensorDataset(x, y), batch_size=16)
        pair = ctx.get("fc1_features")(model, loader, CPU)
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise WrongValue(f"it returned a {type(pair).__name__}, not (features, labels)")
        features, labels = _tensor(pair[0], "features"), _tensor(pair[1], "labels")
        return {
            "shape": list(features.shape),
            "fc1": bool(features.shape == fc1.shape
                        and (torch.allclose(features.float(), fc1, atol=1e-4)
                             or torch.allclose(features.float(), F.relu(fc1), atol=1e-4))),
            "labels": bool(torch.equal(labels.long().reshape(-1), y)),
        }  # fmt: skip

    return kit.once(ctx, run)


@OWN.check(observe=features_seen)
def tsne_fc1_features(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "fc1_features"):
        return problem
    if seen["shape"] != want["shape"]:
        return Verdict.wrong(
            f"fc1_features gave features of shape {seen['shape']}, expected {want['shape']}: "
            "fc1's 128 outputs per image (not the logits, not the flattened convolutions)"
        )
    problems = [] if seen["fc1"] else ["the features are not fc1's output in evaluation mode"]
    problems += [] if seen["labels"] else ["the labels are not the loader's, in its order"]
    return Verdict.expect(
        not problems, "fc1_features returns fc1's output and the labels", "; ".join(problems)
    )


class Recorded(nn.Module):
    """A linear classifier of the grader's that keeps every input it is given."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.linear(x.flatten(1))


@OWN.observer(draw=DRAW)
def dream_seen(ctx) -> dict:
    """activation_maximisation(model, target, mean, std, steps=30) on a linear classifier of
    the grader's: the first and last input the model saw, and the target's logit for each
    (computed by an untouched copy of the model)."""
    s, mean, std = ctx.settings, ctx.manifest.mean[0], ctx.manifest.std[0]

    def run() -> dict:
        model = Recorded()
        with torch.no_grad():
            model.linear.weight.normal_()  # large gradients: any step size moves the logit
        pristine = copy.deepcopy(model.linear)
        target = int(s["target"])
        ctx.get("activation_maximisation")(model, target, mean, std, steps=DREAM_STEPS, device=CPU)
        if not model.inputs:
            raise WrongValue("the model was never called")
        first, last = model.inputs[0], model.inputs[-1]
        with torch.no_grad():
            logits = [float(pristine(x.flatten(1))[0, target]) for x in (first, last)]
        return {
            "rise": logits[1] - logits[0],
            "constant": float(first.max() - first.min()) < 1e-5,
            "start": float(first.flatten()[0]),
            "black": (0 - mean) / std,
        }

    return kit.once(ctx, run)


@OWN.check(observe=dream_seen)
def dream_ascent(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "activation_maximisation"):
        return problem
    return Verdict.expect(
        seen["rise"] > 0.25 * want["rise"],
        "gradient ascent raises the target logit",
        f"over {DREAM_STEPS} steps the target logit changed by {seen['rise']:.2f}, the "
        f"reference's rose by {want['rise']:.2f}: move the image along the gradient of the "
        "logit (ascent), and change the image, not the model's weights",
    )


@OWN.check(observe=dream_seen)
def dream_empty_start(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "activation_maximisation"):
        return problem
    empty = seen["constant"] and min(abs(seen["start"]), abs(seen["start"] - seen["black"])) < 1e-4
    return Verdict.expect(
        empty,
        "activation maximisation starts from an empty image",
        "the first image the model saw is not empty: start from black pixels (0 before "
        f"normalisation, {seen['black']:.4f} after) or from zeros after normalisation",
    )


class Lookup(nn.Module):
    """Predicts the class written in each image's first pixel."""

    def forward(self, x):
        return F.one_hot(x[:, 0, 0, 0].round().long().clamp(0, 9), 10).float() * 5


@OWN.observer(draw=DRAW)
def confusion_seen(ctx) -> dict:
    """confusion(model, loader) with a model whose predictions the grader chose, in batches of
    16, beside the matrix those give (rows: true class)."""
    s = ctx.settings

    def run() -> dict:
        g = torch.Generator().manual_seed(int(s["seed"]))
        n = int(s["images"]) * 3
        predicted, truth = (torch.randint(0, 10, (n,), generator=g) for _ in range(2))
        x = torch.zeros(n, 1, 28, 28)
        x[:, 0, 0, 0] = predicted.float()
        expected = torch.bincount(truth * 10 + predicted, minlength=100).view(10, 10)
        loader = DataLoader(TensorDataset(x, truth), batch_size=16)
        got = _tensor(ctx.get("confusion")(Lookup(), loader, CPU), "the matrix")
        if got.shape != (10, 10):
            raise WrongValue(f"the matrix has shape {list(got.shape)}, not (10, 10)")
        got = got.long()
        return {
            "right": bool(torch.equal(got, expected)),
            "transposed": bool(torch.equal(got, expected.T)),
        }

    return kit.once(ctx, run)


@OWN.check(observe=confusion_seen)
def confusion_rows(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "confusion"):
        return problem
    how = "it is transposed: " if seen["transposed"] else ""
    return Verdict.expect(
        seen["right"],
        "the confusion matrix counts [true class, predicted class]",
        f"{how}entry [i, j] must count images of true class i predicted as j (rows sum to "
        "the number of images of each class)",
    )
