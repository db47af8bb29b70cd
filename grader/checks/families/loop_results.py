"""How the loops family reads what a student's training or evaluation function returned:
numbers as numbers, results alike number for number whatever their form (a dict, a pair, a
list), and the loss of a trainer's `(loss, accuracy)` pair. Used by the loops family's judges
and by assignments' own checks that judge the same numbers (fnn_mnist's trainer)."""

from __future__ import annotations

from typing import Any


def number(value: Any) -> float | None:
    """A plain int or float as a float (not a bool, not a tensor: the observers made it plain)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


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
