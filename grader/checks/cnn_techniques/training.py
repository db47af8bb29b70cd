"""`fit` (best epoch kept), the submitted learning curves, `BatchNormNet`'s modes, and
fine-tuning: `finetuning_setup` and the submitted fine-tuned weights against the MNIST ones."""

from __future__ import annotations

import contextlib
import io
import json

import torch
from torch import nn

from grader.checks import kit
from grader.checks.common import holds_state, json_file_problem, jsonable, pair_of
from grader.checks.families import accuracy, behaviour, loop_models
from grader.checks.kit import judged
from grader.spec import Definitions, Verdict
from grader.staging import not_submitted

OWN = Definitions()
CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
HISTORIES = "histories.json"  # the notebook writes every run's curves there
LAST_LAYER = "fc2."  # the layer fine-tuning trains (the notebook names it)
CPU = torch.device("cpu")
# The learning rate given to finetuning_setup: none a student types instead (1.0, Adadelta's
# default and the example's, 0.1, 0.01, 0.001), so that an lr ignored shows whatever is drawn.
LRS = (0.05, 0.2, 0.5)
DRAW = kit.draws({"lr": list(LRS)})
GAMMA = 0.5  # fit's StepLR: the learning rate halves every epoch


def _draw_fit(rng, manifest) -> dict:
    top, best = rng.randint(14, 18), rng.choice([1, 2])  # best epoch index 1 or 2 (of 0..9)
    right = [rng.randint(3, 8), rng.randint(9, 12), rng.randint(9, 12)]
    right[best] = top
    # Six epochs worse than the best, then a tie at the last: a fit that stops early (after up
    # to 6 epochs without improvement) trains fewer than the 10 epochs (the notebook's) given.
    worse = [rng.randint(9, 12) for _ in range(6)]
    return {"seed": kit.seed(rng), "right": [*right, *worse, top]}


@kit.one_case(OWN, draw=_draw_fit)
def fit_run(ctx) -> dict:
    """fit(...) of a small model of the grader's for 10 epochs, with test accuracies scripted by
    the test loader (best at epoch 2 or 3, tied at the last) and a StepLR halving the learning
    rate every epoch: the epoch whose weights the model holds afterwards (0: none), and the
    learning rate of each epoch."""
    right, model = list(ctx.settings["right"]), nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    train, tests = loop_models.scripted_loaders(model, right, int(ctx.settings["seed"]))
    train.optimizer = optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=GAMMA)
    torch.manual_seed(int(ctx.settings["seed"]))
    with contextlib.redirect_stdout(io.StringIO()):  # fit prints a line per epoch
        returned = ctx.get("fit")(model, optimizer, train, tests, len(right), CPU, scheduler)
    lrs, kept = list(train.lrs), tests.kept()
    return {"returned": jsonable(returned), "kept": kept, "lrs": lrs, "unused": tests.unused()}


@judged(OWN, fit_run, "runs", "fit")
def fit_keeps_best_epoch(entry, want, ctx, i) -> str | None:
    got = entry["returned"]
    if entry.get("unused"):  # its best epoch is another loader's
        return entry["unused"]
    # Judged on the student's own test curve, so that a mistake of evaluate is not charged here.
    curve = got.get("test_accuracy") if isinstance(got, dict) else None
    numbers = isinstance(curve, list) and all(isinstance(a, float | int) for a in curve)
    epochs = len(ctx.settings["right"])
    if numbers and 1 < len(curve) < epochs and len(entry["lrs"]) == len(curve):
        return (
            f"given epochs={epochs}, fit trained {len(curve)} epochs (test accuracies "
            f"{[round(a, 4) for a in curve]}): train every one of the epochs it is given "
            "(range(1, epochs + 1), no early stopping), then load the best epoch's weights"
        )
    if not numbers or len(curve) != epochs:
        return f"its test_accuracy is {str(curve)[:200]}, not one number per epoch ({epochs})"
    best = curve.index(max(curve)) + 1  # the earliest best epoch
    problems = [p for p in [_curve_problem(got)] if p]
    if got.get("best_epoch") != best:
        problems.append(f"best_epoch is {got.get('best_epoch')!r}, expected {best}")
    if entry["kept"] != best:
        kept = f"those of epoch {entry['kept']}" if entry["kept"] else "none of an epoch's end"
        problems.append(f"the model's weights afterwards are {kept}")
    if not problems:
        return None
    return (
        f"test accuracies {[round(a, 4) for a in curve]}: " + "; ".join(problems) + f" (the "
        f"best epoch is {best}: the highest test accuracy, the earliest on a tie; the model "
        "must hold that epoch's weights when fit returns)"
    )


@judged(OWN, fit_run, "runs", "fit")
def fit_scheduler(entry, want, ctx, i) -> str | None:
    # The rate of each epoch fit trained: how many it trained is fit_keeps_best_epoch's.
    lrs = [want["lrs"][0] * GAMMA**k for k in range(len(entry["lrs"]))]
    if len(lrs) < 2:
        return f"fit trained {len(lrs)} of {len(want['lrs'])} epochs: no scheduler step to see"
    if entry["lrs"] == lrs:
        return None
    return (
        f"with a StepLR halving the learning rate every epoch, the epochs trained with "
        f"learning rates {entry['lrs']}, expected {lrs}: call scheduler.step() once per epoch, "
        "after train_epoch and evaluate, when a scheduler is given"
    )


@OWN.observer(reference=False)
def submitted_curves(ctx) -> dict:
    """The notebook's `histories` as the submission left it (read from histories.json), the
    runs whose weights were not handed in ("not_run"), and, when it holds nothing, what is
    wrong with the file ("file"). Where a later cell of the student's rebound or emptied the
    name (`histories = [...]` of the dreams' scores, blind round 15), the file as handed in."""
    histories = ctx.ns.get("histories")
    if not (isinstance(histories, dict) and histories):
        path = ctx.submitted(HISTORIES)
        histories = histories if json_file_problem(path) else json.loads(path.read_bytes())
    seen = {"histories": jsonable(histories) if isinstance(histories, dict) else None}
    epochs = ctx.ns.get("EPOCHS")  # the setup cell's 10: "Every run trains for 10 epochs"
    seen["epochs"] = epochs if type(epochs) is int and epochs > 0 else None
    problems = ctx.weights_problems
    seen["not_run"] = [
        m.key for m in ctx.manifest.models if problems.get(m.weights) == not_submitted(m.weights)
    ]
    if not histories:
        seen["file"] = json_file_problem(ctx.submitted(HISTORIES), "runs")
    return seen


def _curve_problem(run) -> str | None:
    """What is wrong with one run's entry of histories.json (the dict fit returned), if anything."""
    if not isinstance(run, dict):
        return "missing"
    lengths = {len(run[c]) if isinstance(run.get(c), list) else 0 for c in CURVES}
    if len(lengths) != 1 or 0 in lengths:
        return f"{', '.join(CURVES)} do not each hold one value per epoch"
    best, accuracies = run.get("best_epoch"), run["test_accuracy"]
    if best not in range(1, len(accuracies) + 1):  # 2.0 is epoch 2
        return f"best_epoch {best!r} is not an epoch (1 to {len(accuracies)})"
    if run.get("best_accuracy") != max(accuracies) or accuracies[int(best) - 1] != max(accuracies):
        return "best_epoch and best_accuracy are not the epoch with the highest test accuracy"
    return None


@OWN.check(observe=submitted_curves)
def curves_per_epoch(seen, want, ctx) -> Verdict:
    histories = seen["histories"]
    if histories is None:
        return Verdict.error("no learning curves: hand in the histories.json the notebook writes")
    if seen.get("file"):  # nothing read: say why once, not "missing" for every run
        return Verdict.wrong(f"{seen['file']}: hand in the file the notebook writes")
    # A run left undone (no weights, no curves) costs its own part's checks, not this one.
    not_run = set(seen.get("not_run", ()))
    keys = [m.key for m in ctx.manifest.models if m.key in histories or m.key not in not_run]
    problems = [f"{k}: {p}" for k in keys if (p := _curve_problem(histories.get(k)))]
    if epochs := seen.get("epochs"):  # blind round 16: EPOCHS = 5 in a training cell kept 1/1
        lengths = {
            k: len(a)
            for k in keys
            if isinstance(r := histories.get(k), dict)
            and isinstance(a := r.get("test_accuracy"), list)
        }
        if short := [f"{k}: {n} epochs" for k, n in lengths.items() if 0 < n < epochs]:
            problems.append(f"{', '.join(short)}; the notebook asks for {epochs} (EPOCHS)")
    return Verdict.expect(
        not problems,
        "histories.json holds every run's curves, one value per epoch, and its best epoch",
        "histories.json: " + "; ".join(problems),
    )


@kit.one_case(OWN, draw=DRAW)
def batchnorm_modes_seen(ctx) -> dict:
    """BatchNormNet's batch norm layers, and its outputs in training and evaluation mode with
    dropout switched off."""
    model, x = ctx.get("BatchNormNet")(), torch.randn(8, 1, 28, 28) * 2 + 1
    return behaviour.norm_modes(model, x)


@judged(OWN, batchnorm_modes_seen, "runs", "BatchNormNet")
def batchnorm_modes(entry, want, ctx, i) -> str | None:
    return behaviour.norm_modes_problem(entry)


@kit.one_case(OWN, draw=DRAW)
def finetuning(ctx) -> dict:
    """finetuning_setup(state, lr) with the state of a Net of the student's whose weights the
    grader drew: which parameters train, which the optimiser holds and at which learning rates,
    whether the model holds the state."""
    state = {
        k: v + torch.randn_like(v) if v.is_floating_point() else v
        for k, v in ctx.get("Net")().state_dict().items()
    }
    pair = ctx.get("finetuning_setup")(state, float(ctx.settings["lr"]))
    model, optimizer = pair_of(pair, "(model, optimizer)")
    own = model.state_dict()
    other = sorted(k for k in state if k not in own or not torch.equal(own[k], state[k]))
    return {
        **behaviour.training_setup(model, optimizer),
        "holds_state": holds_state(model, state),
        "other": other[:4],  # the state's tensors it does not hold, for the message
    }


@judged(OWN, finetuning, "runs", "finetuning_setup")
def finetune_frozen(entry, want, ctx, i) -> str | None:
    if not entry["holds_state"]:
        other = entry.get("other")
        if other and all(k.startswith(LAST_LAYER) for k in other):
            return (
                f"the model it returns does not hold the MNIST state's {', '.join(other)}: "
                "fine-tuning trains the MNIST network's own fc2 on, not a new layer (load the "
                "whole state, then freeze every other parameter)"
            )
        shown = f" ({', '.join(other)} differ)" if other else ""
        return f"the model it returns does not hold the MNIST state{shown}"
    if entry["trainable"] != want["trainable"]:
        return (
            f"trainable parameters: {entry['trainable']}, expected only {want['trainable']} "
            "(requires_grad = False for every other parameter)"
        )
    return None


@judged(OWN, finetuning, "runs", "finetuning_setup")
def finetune_optimizer(entry, want, ctx, i) -> str | None:
    if entry["held"] != want["held"]:
        return f"the optimiser holds {entry['held']}, expected exactly {want['held']}"
    if entry["lrs"] != want["lrs"]:
        return f"given lr={ctx.settings['lr']}, the optimiser's learning rate is {entry['lrs']}"
    return None


@OWN.observer(reference=False)
def finetuned_files(ctx) -> dict:
    """Which tensors of the submitted fine-tuned weights differ from the submitted MNIST ones,
    the buffers of the student's Net aside: those no optimiser trains, and a buffer of its own
    (a count of the images seen, blind round 17) changes in any training, frozen or not."""

    def changed() -> dict:
        try:
            buffers = {name for name, _ in ctx.get("Net")().named_buffers()}
        except Exception:  # no Net to build (net_output says why): every tensor counts
            buffers = set()
        found = accuracy.changed_tensors(ctx, "mnist", "finetuned")
        return {"changed": [k for k in found if k not in buffers]}

    return kit.once(ctx, changed)


@OWN.check(observe=finetuned_files)
def finetune_from_mnist(seen, want, ctx) -> Verdict:
    files = f"{ctx.manifest.model('finetuned').weights} and {ctx.manifest.model('mnist').weights}"
    if "error" in seen or "wrong" in seen:
        return Verdict.wrong(f"{files}: {seen.get('wrong') or seen.get('error')}")
    changed = seen["changed"]
    frozen_changed = [k for k in changed if not k.startswith(LAST_LAYER)]
    return Verdict.expect(
        changed and not frozen_changed,
        f"{files} differ in the last layer only",
        f"{files} differ in {frozen_changed or 'nothing'}: the fine-tuned network must start "
        "from the MNIST weights and train only fc2",
    )
