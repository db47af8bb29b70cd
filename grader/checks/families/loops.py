"""The student's training and evaluation code, judged by what it computes.

The observer calls the student's code (through the manifest's calling convention) on small
models and batches of the grader's own, built from this run's seeds, and records what came back:
the returned loss or accuracy, batch-norm running statistics, weights after a few steps. The
reference's code answers the same calls, so a check passes when the student's numbers are the
reference's. The models are made so that each mistake shows in exactly one number:

* evaluation: a model whose predictions collapse to one class in training mode and to another
  when gradients are recorded, on batches whose labels avoid both classes: evaluating in training
  mode or without `torch.no_grad()` gives another accuracy (0); batch-norm statistics must not
  move (`evaluate_mode`). A model without batch norm on batches of 8, 8 and 5 with a known
  number right in each: averaging per-batch accuracies or dividing by the number of batches
  gives another number than correct / total (`evaluate_accuracy`).
* training: with learning rate 0 the weights stay put, so the running statistics of a batch-norm
  model started in evaluation mode are a known function of training mode alone (`train_mode`),
  and the mean loss over equal batches is one number, per image or per batch alike
  (`train_loss`; with `loss_mean = "per_sample"` the last batch is shorter and labelled so that
  its loss is lower than the others', so only the mean per image is right, and a trainer's
  validation loss, when `evaluate` returns `(loss, accuracy)`, is judged the same way; with
  `criterion_argument`, also with a logits model and a label-smoothed cross-entropy passed as
  train's fifth argument, which code that keeps its default loss ignores; a trainer class is
  also built with that loss, which both its methods must use). Rprop over three
  batches, which follows only the gradients' signs (so neither the loss's scale nor clipping
  the gradient norm matters), gives other weights when gradients pile up without `zero_grad()`
  or are another loss's than the one returned (`train_zero_grad`, which tells the two apart).

Calling conventions (manifest `[loops]`):
* "epoch_functions": `train(model, loader, optimizer, device) -> mean loss` and
  `evaluate(model, loader, device) -> accuracy` are functions of the student's.
  With `returns = "loss_accuracy"` both return a `(mean loss, accuracy)` pair: the loss is
  read from train's, the accuracy from evaluate's, and evaluate's loss and train's accuracy
  (of the `train_loss` batches: lr 0, a known number right; and of one batch all wrong before
  an SGD step that gets some right, so a second pass after the step shows) are judged with
  `train_loss`.
* "network_trainer": `train` and `evaluate` name `Class.method` (`NetworkTrainer.validate`), the
  class built as `Class(model, train_loader, val_loader, criterion, optimizer, device)` (plus the
  family's `count_correct` under `counter_keyword`), the loader the judged method must not read
  holding other images (`other_images`); `validate()` returns `(loss, accuracy)` or accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, model_validator

from grader.checks import kit
from grader.checks.common import STUDENT_EXITS, describe_error, failure, jsonable, same_values
from grader.checks.families.loop_models import (
    GIVEN_CRITERION,
    GRAD_LEFT_OFF,
    Recorder,
    bn_state,
    build_trainer,
    control_model,
    criterion,
    flat_weights,
    given_criterion,
    loader,
    other_accuracy,
    other_loss,
    probe_model,
    step_record,
    unmoved_advice,
)
from grader.checks.families.loop_results import (
    as_text,
    eval_mode_advice,
    given_advice,
    holds_number,
    number,
    pass_problem,
    same_number,
    same_result,
    validation_loss,
)
from grader.spec import CheckSet, Verdict

NAME = "loops"
# Training and evaluation are observed apart, each under its own time limit: a function that
# hangs or exits the process (SystemExit) then costs its own checks, not the other function's.
OBSERVER = "loops"
EVALUATION = "loops_evaluate"


class LoopsSection(BaseModel):
    """`[loops]`: how the student's training and evaluation code is called.

    `convention`: "epoch_functions" (`train(model, loader, optimizer, device) -> mean loss`,
    `evaluate(model, loader, device) -> accuracy`) or "network_trainer" (`train` and `evaluate`
    name `Class.method`). `loss`: "logits" (cross-entropy on raw scores) or "log_probabilities"
    (NLL on log-softmax outputs). `loss_mean`: "either" (the mean per sample and the mean of
    the batch means are both accepted) or "per_sample" (only the mean per sample, as the
    instructions say; probed with a short last batch). `counter_keyword` (network_trainer only):
    the keyword through which the trainer takes a function counting correct predictions; the
    family passes its own there, so a counting mistake is charged only where it is judged.
    `returns` (epoch_functions only): "value" (a loss, an accuracy) or "loss_accuracy" (both
    functions return a `(mean loss, accuracy)` pair). `criterion_argument` (epoch_functions
    only): `train` takes the loss as an optional fifth argument, `loss` being its default.
    `train_accuracy` (network_trainer only): the attribute where the training pass stores its
    accuracy; recorded after train_loss's pass (a short last batch) for the assignment's judge.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    convention: Literal["epoch_functions", "network_trainer"]
    train: str
    evaluate: str
    loss: Literal["logits", "log_probabilities"]
    loss_mean: Literal["either", "per_sample"] = "either"
    counter_keyword: str = ""
    returns: Literal["value", "loss_accuracy"] = "value"
    criterion_argument: bool = False
    train_accuracy: str = ""
    evaluate_batches: Literal["loader", "list"] = "loader"  # evaluate_accuracy's: plain list?

    @model_validator(mode="after")
    def _convention(self) -> LoopsSection:
        for key in ("counter_keyword", "train_accuracy"):
            if getattr(self, key) and self.convention != "network_trainer":
                raise ValueError(f"{key} needs the network_trainer convention")
        if self.convention != "epoch_functions" and (
            self.returns != "value" or self.criterion_argument
        ):
            raise ValueError("returns and criterion_argument need the epoch_functions convention")
        if self.convention == "network_trainer":
            for key in ("train", "evaluate"):
                if getattr(self, key).count(".") != 1:
                    raise ValueError(f"{key} must be 'Class.method'")
        return self


# ---------------------------------------------------------------- calling conventions


def known_scores(n: int, classes: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (n, classes) and labels (n,) that the scores' argmax gets right in a drawn number
    of rows and wrong in the others: a known count for a student's counting function."""
    scores = torch.randn(n, classes, generator=g)
    targets = scores.argmax(1)
    wrong = torch.randperm(n, generator=g)[: int(torch.randint(0, n, (1,), generator=g))]
    shift = torch.randint(1, classes, (len(wrong),), generator=g)
    targets[wrong] = (targets[wrong] + shift) % classes
    return scores, targets


def _trainer_factory(ctx, class_name: str, reads: str) -> Callable:
    """`make(model, loader, optimizer, device)`: `build_trainer` of `class_name` (`reads`)."""

    def make(model, data, optimizer, device):
        return build_trainer(ctx, class_name, model, data, optimizer, device, reads=reads)

    return make


def validation_result(ctx) -> Callable | None:
    """`validate(model, loader, device)`: what the evaluation code returns, as it is, when it
    returns a `(loss, accuracy)` pair or may (a trainer's method); None when it returns an
    accuracy (epoch functions with `returns = "value"`)."""
    spec = ctx.manifest.loops
    if spec.convention != "network_trainer":
        return _deferred(ctx, spec.evaluate) if spec.returns == "loss_accuracy" else None
    eval_class, eval_method = spec.evaluate.split(".")
    make = _trainer_factory(ctx, eval_class, "val_loader")

    def validate(model, data, device):
        idle = torch.optim.SGD(model.parameters(), lr=0.0)
        return getattr(make(model, data, idle, device), eval_method)()

    return validate


def _part(result: Any, index: int) -> Any:
    """Item `index` of a `(loss, accuracy)` pair; anything else as it is (judged wrong)."""
    return result[index] if isinstance(result, tuple | list) and len(result) == 2 else result


def _deferred(ctx, name: str) -> Callable:
    """The student's function `name`, looked up when it is called (a MissingDefinition then is
    that call's error, recorded as data)."""
    return lambda *args: ctx.get(name)(*args)


def entry_points(ctx, need: str) -> tuple[Callable, Callable]:
    """(train(model, loader, optimizer, device) -> loss, evaluate(model, loader, device) ->
    accuracy) over the student's code, whatever the manifest's convention. Only `need`
    ("train" or "evaluate") is looked up now: a cell that raised after defining train_epoch
    and before evaluate cost train's checks "evaluate is not defined" (blind round 15)."""
    spec = ctx.manifest.loops
    if spec.convention == "epoch_functions":
        train_fn, evaluate_fn = (
            ctx.get(name) if key == need else _deferred(ctx, name)
            for key, name in (("train", spec.train), ("evaluate", spec.evaluate))
        )
        if spec.returns == "value":
            return train_fn, evaluate_fn
        return (  # (loss, accuracy) pairs
            lambda *args: _part(train_fn(*args), 0),
            lambda *args: _part(evaluate_fn(*args), 1),
        )
    train_class, train_method = spec.train.split(".")
    make = _trainer_factory(ctx, train_class, "train_loader")
    validate = validation_result(ctx)

    def train(model, data, optimizer, device):
        return getattr(make(model, data, optimizer, device), train_method)()

    def evaluate(model, data, device):
        result = validate(model, data, device)
        return result[-1] if isinstance(result, tuple | list) else result

    return train, evaluate


# ---------------------------------------------------------------- the observer


def draw(rng, manifest) -> dict:
    """Seeds and numbers of this run: which labels are right, the learning rate of Rprop."""
    return {
        "seed": kit.seed(rng),
        "right_mode": [rng.randint(3, 7), rng.randint(2, 6), rng.randint(1, 5)],
        "right_accuracy": [rng.randint(5, 8), rng.randint(1, 4), rng.randint(0, 2)],
        "lr": rng.choice([0.01, 0.02, 0.05]),
    }


def _call(record: dict, key: str, fn: Callable, *args) -> Any:
    try:
        record[key] = jsonable(fn(*args))
    except STUDENT_EXITS as err:  # reported as data: a sys.exit() in train spares evaluate
        record.update(failure(err))


def observe_evaluation(ctx) -> dict:
    _, evaluate = entry_points(ctx, "evaluate")
    manifest, s = ctx.manifest, ctx.settings
    seed, cpu = int(s["seed"]), torch.device("cpu")
    out: dict = {}

    # evaluate_mode: started in training mode, with marks; labels avoid the marked classes.
    # The control model predicts what the marked one predicts in eval mode without gradients,
    # in every mode: the two give the same number exactly when evaluation is done in that
    # mode, whatever the arithmetic (which evaluate_accuracy judges).
    inner = probe_model(manifest, seed + 1, batch_norm=True, marks=True)
    control = control_model(inner)
    data = loader(manifest, seed + 2, (8, 8, 8), model=inner, right=tuple(s["right_mode"]))
    model = Recorder(inner).train()
    record: dict = {}
    _call(record, "returned", evaluate, model, data, cpu)
    if not torch.is_grad_enabled():  # torch.set_grad_enabled(False) it never undid
        record.setdefault("wrong", GRAD_LEFT_OFF)
    _call(record, "control", evaluate, control.train(), data, cpu)
    record["calls"] = model.calls
    record["bn_tensor"] = bn_state(inner)
    out["evaluate_mode"] = record

    # evaluate_accuracy: no batch norm, batches of 8, 8, 5 with a known number right in each.
    inner = probe_model(manifest, seed + 3)
    right, listed = tuple(s["right_accuracy"]), manifest.loops.evaluate_batches == "list"
    data = loader(manifest, seed + 4, (8, 8, 5), model=inner, right=right, listed=listed)
    record, model = {"other": other_accuracy(inner.eval(), data)}, Recorder(inner).eval()
    _call(record, "returned", evaluate, model, data, cpu)  # other: validate read train_loader
    out["evaluate_accuracy"] = {**record, "calls": model.calls}
    return out


def observe(ctx) -> dict:
    train, _ = entry_points(ctx, "train")
    manifest, s = ctx.manifest, ctx.settings
    seed, cpu = int(s["seed"]), torch.device("cpu")
    out: dict = {}

    # train_mode: batch norm, started in evaluation mode, learning rate 0.
    inner = probe_model(manifest, seed + 5, batch_norm=True)
    model = Recorder(inner).eval()
    record = {}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    _call(record, "returned", train, model, loader(manifest, seed + 6, (8, 8, 8)), optimizer, cpu)
    record["calls"] = model.calls
    record["bn_tensor"] = bn_state(inner)
    out["train_mode"] = record

    # train_loss: no batch norm, learning rate 0; equal batches, or a short last one when only
    # the mean per sample is right. Then a trainer's validation loss on the same batches.
    model = probe_model(manifest, seed + 7).train()
    record = {}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    if manifest.loops.loss_mean == "per_sample":
        # The short last batch is labelled with the model's own predictions and the others
        # wrongly, so its mean loss is well below theirs: the mean of the three batch means
        # then differs from the mean per image by about 1e-2 of it (never less than 8e-3 over
        # 300 seeds), where random labels left some seeds within the judge's 1e-4.
        data = loader(manifest, seed + 8, (8, 8, 5), model=model, right=(0, 0, 5))
    else:
        data = loader(manifest, seed + 8, (8, 8, 8))
    if manifest.loops.returns == "loss_accuracy":  # the pass's accuracy is judged too
        _call(record, "pair", ctx.get(manifest.loops.train), model, data, optimizer, cpu)
        record["returned"] = _part(record.get("pair"), 0)
        # One batch the model gets all wrong, and an SGD step (lr 1) after which it gets some
        # right (in each of 1,000 seeds tried): the accuracy of a second forward pass after
        # the step is not 0, that of the logits the step was computed on is.
        stepped = probe_model(manifest, seed + 11).train()
        batch = loader(manifest, seed + 12, (8,), model=stepped, right=(0,))
        sgd = torch.optim.SGD(stepped.parameters(), lr=1.0)
        _call(record, "stepped", ctx.get(manifest.loops.train), stepped, batch, sgd, cpu)
    elif manifest.loops.train_accuracy:
        _trainer_pass(ctx, record, model, data, optimizer)
    else:
        _call(record, "returned", train, model, data, optimizer, cpu)
    if validate := validation_result(ctx):
        try:
            record["validation"] = jsonable(validate(model, data, cpu))
            record["other"] = other_loss(model, data, criterion(manifest))  # train_loader's
        except STUDENT_EXITS as err:  # reported as data; the judge decides
            record["validation_error"] = describe_error(err)
    if manifest.loops.criterion_argument:  # the same batches, a logits model, its own loss
        other = probe_model(manifest, seed + 7, loss="logits").train()
        idle = torch.optim.SGD(other.parameters(), lr=0.0)
        _call(record, "given_criterion", train, other, data, idle, cpu, given := given_criterion())
        record["given_calls"] = given.calls
    if manifest.loops.convention == "network_trainer":  # a trainer built with another loss
        _call(record, "given_trainer", _given_trainer, ctx, model, data, cpu)
    out["train_loss"] = record

    # train_zero_grad: Rprop over three batches. It follows the signs of the gradients only,
    # so a loss scaled by a constant or gradients clipped to a norm (allowed extras) give the
    # reference's weights, while gradients piled up without zero_grad() give other signs.
    model = probe_model(manifest, seed + 9).train()
    before = flat_weights(model)
    record = {}
    optimizer = torch.optim.Rprop(model.parameters(), lr=float(s["lr"]))
    read = step_record(model, optimizer)  # its steps; zero_grad() before each backward pass?
    _call(record, "returned", train, model, loader(manifest, seed + 10, (8, 8, 8)), optimizer, cpu)
    record.update(read())
    record["weights_tensor"] = flat_weights(model)
    record["moved"] = not torch.equal(before, record["weights_tensor"])
    out["train_zero_grad"] = record
    return out


def _trainer_pass(ctx, record: dict, model, data, optimizer) -> None:
    """train_loss's pass of a trainer: what it returns, then the accuracy it stored."""
    name, method, cpu = *ctx.manifest.loops.train.split("."), torch.device("cpu")
    try:
        trainer = build_trainer(ctx, name, model, data, optimizer, cpu, reads="train_loader")
        record["returned"] = jsonable(getattr(trainer, method)())
        stored = getattr(trainer, ctx.manifest.loops.train_accuracy, None)
        record["train_accuracy"] = jsonable(stored)
    except STUDENT_EXITS as err:  # reported as data; the judge decides
        record.update(failure(err))


def _given_trainer(ctx, model, data, cpu) -> list | None:
    """[train's loss, evaluate's loss] of a trainer of the student's built with GIVEN_CRITERION
    (learning rate 0), or None when it raises (told by the passes above, with the family's)."""
    (name, train), (_, evaluate) = (m.split(".") for m in _names(ctx))
    idle = torch.optim.SGD(model.parameters(), lr=0.0)
    try:
        trainer = build_trainer(ctx, name, model, data, idle, cpu, given_criterion())
        return [getattr(trainer, train)(), _part(getattr(trainer, evaluate)(), 0)]
    except Exception:  # noqa: BLE001 - a trainer that raises is judged on the family's criterion
        return None


# ---------------------------------------------------------------- judges


def _names(ctx) -> tuple[str, str]:
    spec = ctx.manifest.loops
    return spec.train, spec.evaluate


def _raised(seen: dict, fn: str) -> Verdict | None:
    if "error" in seen:
        return Verdict.error(f"{fn} raised {seen['error']}")
    if "wrong" in seen:
        return Verdict.wrong(f"{fn} {seen['wrong']}")
    return None


def judge_evaluate_mode(seen, want, ctx) -> Verdict:
    seen, want = seen["evaluate_mode"], want["evaluate_mode"]
    _, fn = _names(ctx)
    if verdict := _raised(seen, fn):
        return verdict
    calls = seen.get("calls") or []
    if not calls:
        return Verdict.wrong(f"{fn} never called the model")
    returned, control = seen.get("returned"), seen.get("control")
    # No number returned (None, a missing package's stand-in: evaluate_accuracy's mistake)
    # leaves the calls' modes to tell.
    silent = (
        not holds_number(returned)
        and not holds_number(control)
        and not any(c.get("training") or c.get("grad") for c in calls)
    )
    bn_kept = same_values(seen.get("bn_tensor"), want["bn_tensor"])
    if (silent or same_result(returned, control)) and bn_kept:
        return Verdict.ok(f"{fn} evaluates in eval mode, without gradients")
    if any(c.get("training") for c in calls) or not bn_kept:
        return Verdict.wrong(
            f"{fn} ran the model in training mode (dropout active, batch-norm statistics "
            "updated): call model.eval() before the loop"
        )
    if any(c.get("grad") for c in calls):
        return Verdict.wrong(f"{fn} recorded gradients: wrap the loop in torch.no_grad()")
    return Verdict.wrong(
        f"{fn} gave {seen.get('returned')!r} on a model whose predictions depend on the mode, "
        f"but {seen.get('control')!r} on the same model made mode-independent: it does not "
        "evaluate in eval mode under torch.no_grad()"
    )


def judge_evaluate_accuracy(seen, want, ctx) -> Verdict:
    _, fn = _names(ctx)
    problem = pass_problem(seen, want, fn, "evaluate_accuracy")  # a global loader's batches?
    seen, want = seen["evaluate_accuracy"], want["evaluate_accuracy"]
    if verdict := _raised(seen, fn):
        return verdict
    return Verdict.expect(
        same_number(seen.get("returned"), want["returned"]),
        f"{fn} returns correct / total",
        problem
        or f"{fn} returned {seen.get('returned')!r}{as_text(seen.get('returned'))} for batches "
        f"of 8, 8 and 5 images, expected "
        f"{want['returned']:.4f} (the number correct over all images divided by the number of "
        "images, a fraction between 0 and 1 as the instructions say; not a percentage, not an "
        "average of per-batch accuracies)",
    )


def judge_train_mode(seen, want, ctx) -> Verdict:
    fn, _ = _names(ctx)
    if verdict := _raised(seen["train_mode"], fn):
        return verdict
    calls = seen["train_mode"].get("calls") or []
    if not calls:
        return Verdict.wrong(f"{fn} never called the model")
    if same_values(seen["train_mode"].get("bn_tensor"), want["train_mode"]["bn_tensor"]):
        return Verdict.ok(f"{fn} trains in training mode (batch-norm statistics updated)")
    if not all(c.get("training") for c in calls):
        return Verdict.wrong(eval_mode_advice(fn, calls))
    if pass_problem(seen, want, fn):  # the mode is right; which batches is train_loss's
        return Verdict.ok(f"{fn} trains in training mode")
    return Verdict.wrong(
        f"{fn} ran the model in training mode but its batch-norm statistics are not the ones "
        "one pass over the batches gives (each batch exactly once, in training mode)"
    )


def judge_train_loss(seen, want, ctx) -> Verdict:
    problem = pass_problem(seen, want, _names(ctx)[0])
    seen, want = seen["train_loss"], want["train_loss"]
    fn, evaluate = _names(ctx)
    if verdict := _raised(seen, fn):
        return verdict
    logits = ctx.manifest.loops.loss == "logits"
    loss = "cross-entropy of the logits, no label smoothing" if logits else "NLL"
    per_sample = ctx.manifest.loops.loss_mean == "per_sample"
    how = (
        "add loss.item() times the batch size over the batches and divide by the number of "
        "images (the last batch is shorter, so the mean of the batch means is another number)"
        if per_sample
        else "averaged over the images"
    )
    if not same_number(seen.get("returned"), want["returned"]):
        return Verdict.wrong(
            problem
            or f"{fn} returned {seen.get('returned')!r}{as_text(seen.get('returned'))}, expected "
            "the mean loss "
            f"{want['returned']:.4f} (the {loss}, {how}; no softmax before the loss, no sum)"
        )
    if "given_criterion" in want and not same_number(
        seen.get("given_criterion"), want["given_criterion"]
    ):
        return Verdict.wrong(
            f"{fn} given {GIVEN_CRITERION} as its criterion returned "
            f"{seen.get('given_criterion')!r}, expected {want['given_criterion']:.4f}: "
            + given_advice(seen.get("given_calls"), want["given_criterion"], ctx.manifest)
        )
    given = seen.get("given_trainer") if "given_trainer" in want else None
    plain = same_number(*(validation_loss(r.get("validation")) for r in (seen, want)))
    for i, method in enumerate(_names(ctx)[: 1 + plain] if isinstance(given, list) else ()):
        if not same_number(given[i], want["given_trainer"][i]):  # validate's: once it is right
            return Verdict.wrong(
                f"{method} of a trainer given {GIVEN_CRITERION} as its criterion returned the "
                f"loss {given[i]!r}, expected {want['given_trainer'][i]:.4f}: use self.criterion"
            )
    if "pair" in want and not same_number(_part(seen.get("pair"), 1), want["pair"][1]):
        return Verdict.wrong(
            f"{fn} returned {seen.get('pair')!r}, expected the accuracy {want['pair'][1]:.4f} "
            "of the pass (the images predicted right as the batches were trained, over all "
            "images: a fraction, not a percentage, not an average of per-batch accuracies)"
        )
    if "stepped" in want and not same_number(_part(seen.get("stepped"), 1), want["stepped"][1]):
        return Verdict.wrong(
            f"{fn} returned the accuracy {_part(seen.get('stepped'), 1)!r} for one batch that "
            f"the model got all wrong before its step (SGD, lr 1), expected "
            f"{want['stepped'][1]:g}: count the predictions of the logits the step was computed "
            "on, not those of another forward pass after optimizer.step()"
        )
    target = validation_loss(want.get("validation"))
    if target is None:  # the reference returns no validation loss: nothing more to judge
        return Verdict.ok(f"{fn} returns the mean {loss}")
    if "validation_error" in seen:
        return Verdict.wrong(f"{evaluate} raised {seen['validation_error']}")
    got, text = validation_loss(seen.get("validation")), as_text(_part(seen.get("validation"), 0))
    if not same_number(got, target) and same_number(got, seen.get("other")):  # blind 16, fnn
        return Verdict.wrong(  # not the batch-means advice below: the loader is what is wrong
            f"{evaluate} returned the loss {got!r} of the trainer's train_loader (the grader "
            f"gives it other images than val_loader), expected {target:.4f}: iterate over "
            "self.val_loader"
        )
    return Verdict.expect(  # text: blind 15b, fnn v13, the loss as f"{loss:.6f}" was not told
        same_number(got, target),
        f"{fn} and {evaluate} return the mean {loss}",
        f"{evaluate} returned {seen.get('validation')!r}{text}: expected (loss, accuracy) with "
        f"the mean validation loss {target:.4f} (the plain {loss}, {how})",
    )


def judge_train_zero_grad(seen, want, ctx) -> Verdict:
    fn, _ = _names(ctx)
    if verdict := _raised(seen["train_zero_grad"], fn):
        return verdict
    weights = seen["train_zero_grad"].get("weights_tensor")
    if same_values(weights, want["train_zero_grad"]["weights_tensor"]):
        return Verdict.ok("gradients are reset before every step")
    if problem := pass_problem(seen, want, fn):
        return Verdict.wrong(problem)
    # train_loss's pass has learning rate 0: its loss differs for another loss, not zero_grad.
    loss, target = (r["train_loss"].get("returned") for r in (seen, want))
    other_loss = number(target) is not None and not same_number(loss, target)
    wrong = partial(Verdict, 0.0, own=not other_loss)  # train_loss failed elsewhere: blind 19
    seen, want = seen["train_zero_grad"], want["train_zero_grad"]
    if not seen.get("moved"):
        return wrong(unmoved_advice(seen, fn))
    if 0 < seen.get("steps", 3) < want.get("steps", 3):
        return wrong(
            f"{fn} called optimizer.step() {seen['steps']} times for {want['steps']} batches: "
            "one step per batch, with optimizer.zero_grad() before each loss.backward() (no "
            "gradients accumulated over several batches)"
        )
    return wrong(
        f"{fn}'s loss is not the reference's (train_loss), which may be why its Rprop steps "
        "differ: once the loss is right, they tell whether optimizer.zero_grad() comes before "
        "each loss.backward()"
        if other_loss
        else f"{fn} clears the gradients before each batch, but after three Rprop steps the "
        "weights are not the reference's: it trains with another loss than the one it returns "
        "(label smoothing or class weights in training?)"
        if seen.get("cleared")
        else f"after three Rprop steps the weights are not the reference's: {fn} must call "
        "optimizer.zero_grad() before each loss.backward(), or every step also applies the "
        "gradients of all earlier batches"
    )


def evaluation_accuracy(ctx) -> Verdict:
    """evaluate_accuracy's verdict for a check of another observer that `uses` EVALUATION."""
    seen = ctx.observations[EVALUATION]
    if "__error__" in seen:
        return Verdict.error(str(seen["__error__"]))
    return judge_evaluate_accuracy(seen, ctx.references[EVALUATION], ctx)


JUDGES = {
    "train_mode": judge_train_mode,
    "train_zero_grad": judge_train_zero_grad,
    "train_loss": judge_train_loss,
    "evaluate_mode": judge_evaluate_mode,
    "evaluate_accuracy": judge_evaluate_accuracy,
}


def source_problem(manifest, parts: list[str]) -> str | None:
    """What is wrong with a check source "loops.<kind>", if anything."""
    if manifest.loops is None:
        return "the manifest has no [loops] section"
    if len(parts) != 1 or parts[0] not in JUDGES:
        return f"write it as loops.<kind> (kinds: {', '.join(JUDGES)})"
    return None


def register(checks: CheckSet, manifest) -> None:
    """The loops observer and the checks whose source is "loops.<kind>"."""
    sourced = manifest.sourced(NAME)
    if not sourced:
        return
    for check in sourced:
        kind = check.source.split(".")[1]
        name, fn = (EVALUATION, observe_evaluation) if "evaluate" in kind else (OBSERVER, observe)
        if name not in checks.observers:
            checks.add_observer(name, fn, draw=draw)
        checks.add_check(check.name, name, JUDGES[kind])
