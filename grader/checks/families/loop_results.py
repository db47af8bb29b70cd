"""How the loops family reads what a student's training or evaluation function returned:
numbers as numbers, results alike number for number whatever their form (a dict, a pair, a
list), and the loss of a trainer's `(loss, accuracy)` pair. Used by the loops family's judges
and by assignments' own checks that judge the same numbers (fnn_mnist's trainer); `pass_problem`:
which batches a pass ran the model on, against the loader's."""

from __future__ import annotations

from typing import Any

from grader.checks.families.loop_models import criterion


def number(value: Any) -> float | None:
    """A plain int or float as a float (not a bool, not a tensor: the observers made it plain)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def as_text(value: Any) -> str:
    """What to add after a returned text that holds a number ("0.9134": a formatted f-string),
    which is not one (blind round 15: "returned '0.5714', expected 0.5714" said nothing)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (a str, a number written as text: return the number itself)"


def same_number(seen: Any, want: Any) -> bool:
    """Two numbers alike to 1e-4 of the larger (at least 1): a result rounded to 4 decimals is
    right."""
    got, target = number(seen), number(want)
    if got is None or target is None:
        return False
    return abs(got - target) <= 1e-4 * max(1.0, abs(target))


def holds_number(value: Any) -> bool:
    """Whether a result holds a number `same_result` could compare."""
    if isinstance(value, dict | list | tuple):
        return any(map(holds_number, value.values() if isinstance(value, dict) else value))
    return number(value) is not None


def same_result(seen: Any, control: Any) -> bool:
    """Two results of the student's own function alike, number for number, whatever their form
    (evaluate returning `(accuracy, loss)` is evaluate_accuracy's mistake, not the mode's)."""
    if isinstance(seen, dict) and isinstance(control, dict):
        return seen.keys() == control.keys() and same_result([*seen.values()], [*control.values()])
    if isinstance(seen, list | tuple) and isinstance(control, list | tuple):
        return len(seen) == len(control) and all(map(same_result, seen, control))
    # Alike too: one text twice (the stand-in of a package the grader lacks, as jsonable gives it).
    return same_number(seen, control) or isinstance(seen, str) and seen == control


def validation_loss(result: Any) -> float | None:
    """The loss of a `(loss, accuracy)` pair returned by a trainer's evaluation method."""
    if isinstance(result, list) and len(result) == 2:
        return number(result[0])
    return None


def pass_problem(seen: dict, want: dict, fn: str, key: str = "train_mode") -> str | None:
    """What train's pass (evaluate's: `key`) did other than run the model once on each batch of
    its loader (a global loader, a return in the loop, a DataLoader of its own over the loader's
    data set; or an optimizer of its own: the weights moved, the given one never stepped), or
    None; the checks it costs say it."""
    calls = [o[key].get("calls") or [] for o in (seen, want)]
    got, expected = ([c.get("batch") for c in each] for each in calls)
    own = "self.train_loader" if key == "train_mode" else "self.val_loader"
    stepped = seen.get("train_zero_grad") if key == "train_mode" else None  # blind 17, fnn
    if isinstance(stepped, dict) and stepped.get("moved") and stepped.get("steps") == 0:
        return (
            f"{fn} changed the weights but never called step() of the optimizer it is given (one "
            "of its own?): step the optimizer passed in; the training cells choose which one"
        )
    if "error" in seen[key] or not got:
        return None
    if got == expected:  # the same sizes: the same images in each (their order in it aside)?
        images = [[c.get("images") for c in each] for each in calls]
        if None in images[0] + images[1] or images[0] == images[1]:
            return None
        if abs(sum(images[0]) - sum(images[1])) > 1e-2 + 1e-6 * abs(sum(images[1])):
            return (  # blind 18 (res): not reshuffled (the sum of all would be kept) but changed
                f"{fn} ran the model on the loader's batches, but their images changed before "
                "the model saw them (normalised again, augmented or noised in the loop, in "
                "place?): the data cell prepares them; pass each batch to the model as it comes"
            )
        return (
            f"{fn} ran the model on batches of the loader's sizes but other images in them "
            f"(a DataLoader of its own over loader.dataset, reshuffled?): iterate over the loader "
            f"it is given (a trainer's {own}) itself, batch by batch"
        )
    if got == expected[: len(got)]:  # the first batches only: a return, or drop_last=True
        return (
            f"{fn} ran the model on {len(got)} of the {len(expected)} batches of its loader "
            f"({expected}): is its return inside the loop, or the short last one dropped?"
        )
    if set(got) != set(expected):
        return (
            f"{fn} ran the model on batches of {got[:6]} images, expected those of the loader "
            f"it is given ({expected}): iterate over it (a trainer's {own}), no other"
        )
    return None


def given_advice(calls: Any, want: float, manifest: Any) -> str:
    """What to tell a train that returned another mean loss than the reference's with the
    criterion it was given, from that criterion's (loss, batch size) calls (blind round 17,
    cifar: NLLLoss(reduction="sum") by default and loss.item() summed unweighted used the loss
    it was given, and was told to use it)."""
    if not calls:
        default = type(criterion(manifest)).__name__
        return f"use the loss it is given, and nn.{default}() only when it is None"
    mean = sum(loss * size for loss, size in calls) / max(1, sum(size for _, size in calls))
    if same_number(mean, want):
        return (
            "it called that loss on the right outputs, but returned another mean of its values: "
            "add loss.item() times the batch size over the batches and divide by the number of "
            "images, whatever the reduction of its own default loss"
        )
    return "it called that loss, but on other outputs or labels than the model's and the batch's"


def eval_mode_advice(fn: str, calls: list) -> str:
    """What to tell a train that ran the model in evaluation mode, from its forward calls' modes:
    from the start, or from a later batch on, where its loop switched the model (blind 19 mlp
    s13: model.eval() for a batch accuracy inside the loop, model.train() called at the start,
    was told to call model.train() at its start)."""
    steps = [bool(c.get("training")) for c in calls if c.get("grad")]  # the training forwards
    if steps[:1] == [True] and False in steps:
        return (
            f"{fn} trained its first batch in training mode but batch {steps.index(False) + 1} "
            "and later ones in evaluation mode: something in its loop (model.eval(), an "
            "evaluation) switched the model and nothing switched it back; call model.train() "
            "before each batch's forward, or measure after the loop"
        )
    return (
        f"{fn} ran the model in evaluation mode: call model.train() at its start (evaluation "
        "leaves the model in eval mode)"
    )
