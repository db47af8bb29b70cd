"""`sum_correct_preds`, the L1/L2 penalties and a NetworkTrainer step with a known penalty."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.checks import kit
from grader.checks.common import along, failure, flat_gradient, jsonable, near, same_values
from grader.checks.families import loop_models
from grader.checks.families.loop_models import build_trainer, flat_weights, signed_model
from grader.checks.families.loop_results import same_number, same_result
from grader.checks.families.loops import EVALUATION, OBSERVER, evaluation_accuracy, known_scores
from grader.checks.kit import judged
from grader.spec import Definitions, Verdict

OWN = Definitions()


def _draw_counts(rng, manifest) -> dict:
    seed = kit.seed(rng)
    return {"seed": seed, "cases": [[rng.randint(5, 20), rng.randint(2, 10)] for _ in range(2)]}


@OWN.observer(draw=_draw_counts)
def sum_correct_preds(ctx) -> dict:
    """Known counts: scores (N, C) whose argmax is each row's label in a drawn number of rows."""
    count, seed = ctx.get("sum_correct_preds"), int(ctx.settings["seed"])
    g = torch.Generator().manual_seed(seed)

    def run(i, case):
        scores, targets = known_scores(*case, g)  # case: (rows, classes)
        result = count(scores.clone(), targets.clone())
        return {"type": type(result).__name__, "value": jsonable(result)}

    return {"cases": kit.per_setting(ctx.settings["cases"], seed, run)}


def _counts_at(ctx, i, want) -> str:
    return "sum_correct_preds on ({}, {}) scores".format(*ctx.settings["cases"][i])


@judged(OWN, sum_correct_preds, "cases", _counts_at, name="sum_correct_preds")
def _counted(entry, want, ctx, i) -> str | None:
    if entry.get("value") != want["value"]:
        return f"returned {entry.get('value')!r}, expected {want['value']} (a count)"
    if entry.get("type") != want["type"]:
        return f"returned a {entry.get('type')}, expected a Python int (use .item())"
    return None


@OWN.observer(
    draw=kit.draws({"a": (2, 6), "b": (2, 6), "c": (2, 4), "lambda": [0.01, 0.05, 0.1, 0.5, 2.0]})
)
def regularization_values(ctx) -> dict:
    """Each penalty with the drawn lambda and with its default: value and gradient."""
    s, names = ctx.settings, ("l2_regularization", "l1_regularization")
    calls = [(f, a) for f in names for a in ([s["lambda"]], [])]

    def run(i, call):
        function, args = call
        model = signed_model(s["a"], s["b"], s["c"], int(s["seed"]))
        params = list(model.parameters())
        value = ctx.get(function)(model, *map(float, args))
        found = {"function": function, "args": args, "value": jsonable(value)}
        if isinstance(value, torch.Tensor) and value.requires_grad:
            found["grad_tensor"] = flat_gradient(value, params)
        return found

    return {"cases": kit.per_setting(calls, int(s["seed"]), run)}


def _penalty_at(ctx, i, want) -> str:
    return f"{want['function']}(model{''.join(f', {float(a)}' for a in want['args'])})"


@judged(OWN, regularization_values, "cases", _penalty_at, name="regularization_values")
def _penalised(entry, want, ctx, i) -> str | None:
    if not near(entry.get("value"), want["value"]):
        formula = "squares" if want["function"].startswith("l2") else "absolute values"
        return (
            f"returned {entry.get('value')!r}, expected {want['value']:.6g} (lambda times the "
            f"sum of the {formula} of all parameters)"
        )
    if not same_values(entry.get("grad_tensor"), want["grad_tensor"]):
        return (
            "its value is right but it is not a differentiable tensor of the parameters "
            "(return a 0-d tensor, not .item(); nothing detached)"
        )
    return None


@OWN.observer(
    draw=kit.draws({"lr": [0.05, 0.1, 0.2], "lambda": [0.05, 0.1, 0.3], "batch": (4, 12)})
)
def regularized_step(ctx) -> dict:
    """One SGD batch with the grader's L2 penalty: the step, the losses (training with the
    penalty, validation without); then train_network(1) of another trainer, then of this one."""
    s = ctx.settings
    lam, n, seed = float(s["lambda"]), int(s["batch"]), int(s["seed"])
    penalty = {"regularization": lambda m: lam * sum(p.pow(2).sum() for p in m.parameters())}

    def run(i, _):
        model = nn.Linear(784, 3)  # the loaders' (N, 784) vectors, as in the loops family
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(n, 784, generator=g), torch.randint(0, 3, (n,), generator=g)
        y[: n // 2] = model(x[: n // 2]).argmax(1)  # at least 2 right: a known accuracy > 0
        data = DataLoader(TensorDataset(x, y), batch_size=n)
        optimizer = torch.optim.SGD(model.parameters(), lr=float(s["lr"]))
        # No step while the weights move: an optimizer of its own (trainer_loss's).
        stepped = loop_models.step_record(model, optimizer)
        before = flat_weights(model)
        trainer = build_trainer(ctx, "NetworkTrainer", model, data, optimizer, "cpu", **penalty)
        found: dict = {}
        try:
            found["train_loss"] = jsonable(trainer.train_epoch())
            found["step_tensor"] = flat_weights(model) - before  # judged by its direction
            found["moved"] = bool(found["step_tensor"].any()) and stepped()["steps"] > 0
            found["train_accuracy"] = jsonable(trainer.train_accuracy)
            try:
                val = jsonable(trainer.validate())  # (loss, accuracy)
            except Exception:  # noqa: BLE001 - validate's failure is trainer_loss's, not the step's
                return {**found, "penalised": False}  # nothing after it can be judged
            found["val_loss"] = val[0] if isinstance(val, list) and val else val
            plain = build_trainer(ctx, "NetworkTrainer", model, data, optimizer, "cpu")
            found["penalised"] = val != jsonable(plain.validate())  # the penalty changes it
            for each in (plain, trainer):  # a class-level history grows in the second
                optimizer.zero_grad()  # a missing zero_grad is trainer_zero_grad's, not here
                again = before.to(flat_weights(model), copy=True)  # a model.double()'s dtype
                nn.utils.vector_to_parameters(again, model.parameters())  # step again
                history = each.train_network(1)  # a dict of HISTORY's lists
            found["lr"] = float(optimizer.param_groups[0]["lr"])  # NT3: no scheduler changes it
            found["scheduler"] = loop_models.scheduler_on(optimizer, trainer, plain)
            found["history"] = [jsonable(history.get(k)) for k in HISTORY]
            again = jsonable(trainer.validate())  # that epoch's results, right or not
            again = again if isinstance(again, list) else [again]
            found["own"] = [again[0], jsonable(trainer.train_accuracy), again[-1]]
        except Exception as err:  # noqa: BLE001 - kept; after validate's text loss, trainer_loss's
            found.update({} if isinstance(found.get("val_loss"), str) else failure(err))
        return found

    return {"runs": kit.per_setting([s], seed, run)}


HISTORY = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
PENALISED = "NetworkTrainer with regularization"
STEP = {  # the training accuracy is trainer_accuracy's, with validate's (one unit for both)
    "train_loss": "train_epoch returned {}, expected {:.5f} (the loss with the penalty)",
    "val_loss": "validate returned the loss {}, expected {:.5f}: the plain criterion, no penalty",
}


@judged(OWN, regularized_step, "runs", PENALISED, name="regularized_step")
def _stepped(entry, want, ctx, i) -> str | None:
    # Weights the given SGD never moved (zero_grad after backward, an own optimizer): loss only.
    moved = entry.get("moved", True)
    if moved and not along(entry.get("step_tensor"), want["step_tensor"]):  # clipping allowed
        return (
            "after one step of the SGD it is given the weights are not where loss + penalty sends "
            "them: add regularization(model) to the loss before loss.backward(); step that SGD"
        )
    for key, message in STEP.items():  # a validate wrong without the penalty: trainer_loss's
        charged = key == "train_loss" or moved and entry.get("penalised", True)
        if not same_number(entry.get(key), want[key]) and charged:
            return message.format(repr(entry.get(key)), want[key])
    if not moved or "history" not in entry:  # no history: validate failed (trainer_loss's)
        return None
    if (lr := entry.get("lr", want["lr"])) != (rate := want["lr"]):  # NT3: "No ... scheduler"
        return f"training took the learning rate from {rate} to {lr}: no learning-rate scheduler"
    if kept := entry.get("scheduler"):  # one that has not changed the rate yet
        return f"{kept}: no learning-rate scheduler is used (NT3)"
    got = entry["history"]  # the lists of HISTORY's keys
    # Its own results, right or not (trainer_loss's, trainer_accuracy's): the same step again.
    own = dict(zip(HISTORY, [entry.get("train_loss"), *entry["own"]], strict=True))
    triples = zip(HISTORY, got, want["history"], strict=True)
    if not all(same_result(g, w) or k in own and g == [own[k]] for k, g, w in triples):
        got, want = (dict(zip(HISTORY, h, strict=True)) for h in (got, want["history"]))
        return f"train_network(1) gave {got}, expected {want} (a new dict, 1 entry per epoch)"
    return None


@OWN.check("trainer_accuracy", observe=OBSERVER, uses=("regularized_step", EVALUATION))
def _trainer_accuracy(seen, want, ctx) -> Verdict:
    """validate's accuracy (the loops family's judge), then train_epoch's self.train_accuracy in
    regularized_step's run (unless the probe stopped it whole: that check's) and in the family's
    train_loss pass over batches of 8, 8 and 5 (`train_accuracy`): correct / samples, a fraction."""
    verdict = evaluation_accuracy(ctx)
    measured = ctx.observations[EVALUATION].get("evaluate_accuracy") or {}
    if verdict.fraction < 1 and same_number(got := measured.get("returned"), measured.get("other")):
        return Verdict.wrong(
            f"NetworkTrainer.validate returned {got!r}, the accuracy on the trainer's train_loader"
            " (the grader gives it other images than val_loader): iterate over self.val_loader"
        )
    step = ctx.observations.get("regularized_step") or {}
    ref = ctx.references["regularized_step"]["runs"][0]
    uneven = (seen.get("train_loss") or {}, want["train_loss"], "on batches of 8, 8 and 5")
    if verdict.fraction < 1:
        return verdict
    entry = [] if "__error__" in step else [(step.get("runs") or [{}])[0]]
    for got, target, what in [*((e, ref, "with regularization") for e in entry), uneven]:
        if "train_accuracy" not in got:
            why = got.get("error") or got.get("wrong") or "nothing observed"
            failed = Verdict.wrong if "wrong" in got else Verdict.error  # as every_setting says
            return failed(f"NetworkTrainer.train_epoch, {what}: {why}")
        if not same_number(got["train_accuracy"], target["train_accuracy"]):
            return Verdict.wrong(
                f"train_epoch, {what}, stored self.train_accuracy = {got['train_accuracy']!r}, "
                f"expected {target['train_accuracy']:.5f} (correct predictions of its forward "
                "passes / samples: a fraction between 0 and 1, not a percentage, not a mean of "
                "the batches' accuracies)"
            )
    return verdict
