"""Looking inside networks of the grader's: `fc1_features` (what t-SNE is given),
`activation_maximisation` (ascent from an empty image) and `confusion` (rows: true classes)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from grader.checks import kit
from grader.checks.cnn_techniques.counts import PytorchExampleNet
from grader.checks.common import WrongValue, a_tensor, pair_of, record_calls
from grader.checks.families import behaviour, loop_models
from grader.checks.kit import judged
from grader.spec import Definitions

OWN = Definitions()
CPU = torch.device("cpu")
DREAM_STEPS = 30
UNUSED = 28  # the first row of pixels: no class of the dream probe's model uses it
# images: 16k + 1, so that fc1_features' last batch of 16 holds one image (a squeeze() of each
# batch's output breaks there); target: a class.
DRAW = kit.draws({"images": [33, 49], "target": (0, 9)})


@kit.one_case(OWN, draw=DRAW)
def features_seen(ctx) -> dict:
    """fc1_features of the grader's Net (the student's own where the grader's raised a TypeError)
    over images in batches of 16 (the last of one), beside fc1's output in evaluation mode."""
    seed, nets = int(ctx.settings["seed"]), (PytorchExampleNet, lambda: ctx.get("Net")())
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(int(ctx.settings["images"]), 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (len(x),), generator=g)
    return behaviour.features_on(ctx.get("fc1_features"), nets, x, y, seed)


@judged(OWN, features_seen, "runs", "fc1_features (batches of 16, the last of one image)")
def tsne_fc1_features(entry, want, ctx, i) -> str | None:
    if entry["shape"] != want["shape"]:
        return (
            f"features of shape {entry['shape']}, expected {want['shape']}: fc1's 128 outputs "
            "per image (not the logits, not the flattened convolutions)"
        )
    problems = [] if entry["layer"] else ["the features are not fc1's output in evaluation mode"]
    problems += [] if entry["labels"] else ["the labels are not the loader's, in its order"]
    if not entry.get("cpu", True):
        problems.append("the features are left where the model ran (a GPU): return them .cpu()")
    if entry.get("grad"):
        problems.append(
            "the features still require gradients: run the model under torch.no_grad(), as the "
            "instructions say (autograd keeps every batch's graph in memory, and .numpy() refuses)"
        )
    return "; ".join(problems) or None


def _returned_problems(returned, logits: list[float], pixels: torch.Tensor) -> list[str]:
    """What is wrong with activation_maximisation's (image, scores): a (1, 1, 28, 28) image in
    [0, 1], the `pixels` of the last input the model saw (un-normalised, clamped to [0, 1]:
    pixels kept in [0, 1] only at the end are accepted), and DREAM_STEPS + 1 scores, the first
    and the last the target's `logits` on the first and the last input."""
    try:
        image, scores = pair_of(returned, "(image, scores)")
        image = a_tensor(image, "the image")
    except WrongValue as wrong:
        return [str(wrong)]
    problems = []
    if image.numel() != 28 * 28:
        problems.append(f"the image has shape {list(image.shape)}, not (1, 1, 28, 28)")
    elif not (image.min() >= -1e-6 and image.max() <= 1 + 1e-6):
        problems.append(
            f"the image's pixels run from {float(image.min()):.2f} to {float(image.max()):.2f}, "
            "not within [0, 1] (keep them there, and return the pixels, not the normalised input)"
        )
    elif not torch.allclose(image.flatten().double(), pixels.flatten().double(), atol=1e-4):
        problems.append(
            "the image is not the last input the model saw, un-normalised (input * std + mean): "
            "the pixels must enter the network normalised, as (image - mean) / std"
        )
    try:
        scores = [float(v) for v in scores]
    except (TypeError, ValueError):
        return [*problems, f"the scores are a {type(scores).__name__}, not a list of floats"]
    ends = zip(scores[::DREAM_STEPS], logits, strict=False)  # the first and the last
    if len(scores) != DREAM_STEPS + 1:
        problems.append(
            f"{len(scores)} scores for {DREAM_STEPS} steps, expected {DREAM_STEPS + 1}: the "
            "target logit before each step and after the last"
        )
    elif not all(math.isclose(s, w, rel_tol=1e-3, abs_tol=1e-3) for s, w in ends):
        problems.append("the first and last scores are not the target logit of those inputs")
    return problems


@kit.one_case(OWN, draw=kit.draws({"target": (0, 9), "norm": [[0.1307, 0.3081], [0.5, 0.5]]}))
def dream_seen(ctx) -> dict:
    """activation_maximisation(model, target, mean, std, steps=30) on a linear classifier, mean
    and std drawn (not Fashion-MNIST's): the first input the model saw, how the target logit (of
    an untouched float32 copy) rose to the last, what is wrong with the result or its mode."""
    (mean, std), target = ctx.settings["norm"], int(ctx.settings["target"])
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        model[1].weight.normal_()  # large gradients: any step size moves the logit
        model[1].weight[:, :UNUSED] = 0  # pixels no class needs: the penalty keeps them black
    pristine = copy.deepcopy(model)
    calls = record_calls([model], lambda m, args: (args[0].detach().clone(), m.training))[0]
    returned = ctx.get("activation_maximisation")(
        model, target, mean, std, steps=DREAM_STEPS, device=CPU
    )
    if not calls:
        raise WrongValue("the model was never called")
    (first, _), (last, _) = calls[0], calls[-1]
    with torch.no_grad():
        logits = [float(pristine(x.float())[0, target]) for x in (first, last)]
    problems = _returned_problems(returned, logits, (last * std + mean).clamp(0, 1))
    unused = (last - first).flatten()[:UNUSED] * std  # their change on the pixel scale
    if float(unused.max()) > 1e-3:
        problems.append(
            "pixels the class does not use grew brighter: the penalty is decay * (image ** 2)"
            ".sum() on the [0, 1] pixels (it pulls them to black), not on the normalised input"
        )
    if any(training for _, training in calls):
        problems.append("the model ran in training mode (dropout on): call model.eval()")
    return {
        "rise": logits[1] - logits[0],
        "returned": problems,
        "constant": float(first.max() - first.min()) < 1e-5,
        "start": float(first.flatten()[0]),
        "black": (0 - mean) / std,
    }


@judged(OWN, dream_seen, "runs", "activation_maximisation")
def dream_ascent(entry, want, ctx, i) -> str | None:
    if entry["rise"] <= 0.25 * want["rise"]:
        return (
            f"over {DREAM_STEPS} steps the target logit changed by {entry['rise']:.2f}, the "
            f"reference's rose by {want['rise']:.2f}: move the image along the gradient of the "
            "logit (ascent; the logit itself, not a softmax probability, whose gradient vanishes "
            "once the model is sure), and change the image, not the model's weights"
        )
    return "; ".join(entry["returned"]) or None


@judged(OWN, dream_seen, "runs", "activation_maximisation")
def dream_empty_start(entry, want, ctx, i) -> str | None:
    start, black = entry["start"], entry["black"]
    if entry["constant"] and min(abs(start), abs(start - black)) < 1e-4:
        return None
    return (
        "the first image the model saw is not empty: start from black pixels (0 before "
        f"normalisation, {black:.4f} after) or from zeros after normalisation"
    )


@kit.one_case(OWN, draw=DRAW)
def confusion_seen(ctx) -> dict:
    """confusion(model, loader) with a model whose predictions the grader chose, beside the
    matrix those give (`loop_models.confusion_probe`: rows true classes, one class drawn never
    occurs)."""
    n, absent = int(ctx.settings["images"]) * 3, int(ctx.settings["target"])
    return loop_models.confusion_probe(ctx.get("confusion"), n, absent, int(ctx.settings["seed"]))


@judged(OWN, confusion_seen, "runs", "confusion")
def confusion_rows(entry, want, ctx, i) -> str | None:
    return loop_models.confusion_problem(entry)
