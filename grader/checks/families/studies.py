"""A student's hyper-parameter search (an Optuna study), probed and judged.

While the search runs, the notebook's test split is replaced by `Tripwire`s (with
`grader.checks.kit.replaced`): any use of it is recorded and raises, and `judge_never_tests`
charges it, as it charges the validation images the trials learnt from (`leaks`, which
`watched_training` records); `probed_search` runs a search so and records what the returned
study holds (`study_summary`);
`judge_best_trial` asks that it is the last stage's (it ran as many trials as the reference's),
that it maximises, that every completed trial's value is the validation accuracy it reported
last to the pruner, measured on other images than it trained on (`self_validated`), and that its
best trial is the best of them. Not a family: an assignment's
own search check runs the search its way (data, budget, stand-ins) and uses these.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import optuna
import torch

from grader.checks import kit
from grader.checks.common import as_tensor, describe_error, jsonable, summarise
from grader.spec import Verdict

# Put first in each validation curve while grading: an accuracy no trial reaches, so that an
# objective returning its curve's best rather than its last point shows (`watched_training`).
PLANTED_FIRST = 1.0


class TestSplitTouched(Exception):  # noqa: N818 - it says what happened
    """Raised by the tripwire that stands in for the test split while the search runs."""


class Tripwire:
    """Stands in for the notebook's `test_set` or `test_loader` while the search is probed: any
    use (length, items, iteration, attributes) is recorded and raises."""

    def __init__(self, name: str, record: list):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_record", record)

    def _touch(self, how: str):
        self._record.append(how)
        raise TestSplitTouched(f"{how}: the search used the test split")

    def __getattr__(self, attribute):
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        self._touch(f"{self._name}.{attribute}")

    def __len__(self):
        self._touch(f"len({self._name})")

    def __getitem__(self, index):
        self._touch(f"{self._name}[...]")

    def __iter__(self):
        self._touch(f"iteration over {self._name}")

    def __repr__(self) -> str:
        return f"<{self._name}: the test split, withheld while the search is checked>"


def _argument(args: tuple, kwargs: dict, at: tuple[int, str]):
    """The argument at position `at[0]`, or named `at[1]`; None when not given."""
    return args[at[0]] if len(args) > at[0] else kwargs.get(at[1])


def _images_of(data) -> tuple | None:
    """(root data set, the set of its indices that `data` holds), Subsets (nested too) unwound;
    None for a tripwire or what is no data set."""
    indices = None
    with contextlib.suppress(Exception):
        while not isinstance(data, Tripwire) and hasattr(data, "indices"):
            own = [int(i) for i in data.indices]
            indices, data = (own if indices is None else [own[i] for i in indices]), data.dataset
        if data is not None and not isinstance(data, Tripwire):
            return data, set(range(len(data)) if indices is None else indices)
    return None


def _shared_images(a, b) -> bool:
    """Whether data sets `a` and `b` share images: one object, or Subsets (nested too) of one
    data set, or of copies of it (equal `.data`), whose indices meet (blind round 14b:
    `Subset(train_set, range(n))` as the validation split)."""
    if a is b:
        return a is not None
    a, b = _images_of(a), _images_of(b)
    if a is None or b is None or not a[1] & b[1]:
        return False
    if a[0] is b[0]:
        return True
    data = [getattr(root, "data", None) for root in (a[0], b[0])]
    tensors = all(isinstance(d, torch.Tensor) for d in data)
    return tensors and data[0].shape == data[1].shape and torch.equal(*data)


def watched_training(
    train,
    record: dict,
    leaked: dict,
    stats_at=(3, "stats"),
    curve="val_accuracy",
    splits_at=((1, "train_set"), (2, "val_set")),
):
    """The search's training function `train` (returning (model, curve)), watched: `record`'s
    "leaks" name the data of `leaked` (what -> its mean image) whose statistics it was given
    (argument `stats_at`: position, name; (mean, std)), its "self_validated" counts the runs
    validated on the images they trained on (the two arguments `splits_at` the same data) and
    its "finals" the last point of each `curve[curve]`, which then starts with an accuracy of
    1.0 that no trial reached, so that an objective returning another point than the last (the
    curve's best, say) shows."""

    def watched(*args, **kwargs):
        if _shared_images(*(_argument(args, kwargs, at) for at in splits_at)):
            record["self_validated"] = record.get("self_validated", 0) + 1
        stats = _argument(args, kwargs, stats_at)
        mean = as_tensor(stats[0]) if isinstance(stats, tuple | list) and stats else None
        for what, image in leaked.items():
            if mean is not None and mean.shape == image.shape and torch.allclose(mean, image):
                record["leaks"].append(f"standardised with the statistics of {what}")
        result = train(*args, **kwargs)
        with contextlib.suppress(Exception):  # a training function of its own: as it is
            record["finals"].append(float(result[1][curve][-1]))
            result[1][curve].insert(0, PLANTED_FIRST)
        return result

    return watched


def study_summary(study) -> dict:
    """Each trial's number, state, value and the value it reported last to the pruner
    (`trial.report(value, step)`, the largest step), and the study's best trial; nothing for
    what is not a study (a search that returns its best trial: the judge names what it got)."""
    if not (hasattr(study, "trials") and hasattr(study, "direction")):
        return {}
    trials = []
    for t in study.trials:
        reports = t.intermediate_values
        last = jsonable(reports[max(reports)]) if reports else None
        state, value = t.state.name, jsonable(t.value)
        trials.append(
            {"number": int(t.number), "state": state, "value": value, "last_report": last}
        )
    summary = {"direction": study.direction.name, "trials": trials}
    try:
        summary["best_number"] = int(study.best_trial.number)
        summary["best_value"] = jsonable(study.best_value)
    except Exception as err:  # noqa: BLE001 - no finished trial: the judge says so
        summary["best_error"] = describe_error(err)
    return summary


def probed_search(
    ctx, search: Callable, withheld: tuple, stand_ins: dict, training: str, leaked: dict
) -> dict:
    """What `search()` (the student's search, given its data and budget) did while the
    notebook's globals `withheld` (its test split) are `Tripwire`s, those `stand_ins` names hold
    the grader's values and its training function `training` is watched (`watched_training`,
    with `leaked`): the returned study's `study_summary` and type's name (`returned`), the
    tripwires' record (`touched`), the `leaks`, `self_validated` and `finals`, and the search's
    `error`."""
    touched, watched = [], {"leaks": [], "finals": []}
    stand_ins = {**{name: Tripwire(name, touched) for name in withheld}, **stand_ins}
    if callable(given := ctx.ns.get(training)):
        stand_ins[training] = watched_training(given, watched, leaked)
    # Optuna logs each trial at INFO: for the reference, observed in the grading run's own
    # process, on the instructor's terminal (with --quiet too).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict = {}
    with kit.replaced(ctx.ns, stand_ins), kit.recorded(out):
        study = search()
        out["returned"] = type(study).__name__
        out.update(study_summary(study))
    out.update(watched, touched=list(dict.fromkeys(touched)))
    return out


def judge_never_tests(fn: str):
    """The judge of "the search `fn` never touched the test split": an observation with the
    tripwires' record (`touched`), what the trials learnt from validation images (`leaks`, each
    "<what it did>", optional) and, when the search raised, its `error`."""

    def judge(seen, want, ctx) -> Verdict:
        if "error" in want:  # a grader bug, said loudly
            raise RuntimeError(f"the reference failed on {fn}: {want['error']}")
        if touched := seen["touched"]:
            return Verdict.wrong(
                f"{fn} used the test split ({summarise(touched)}): choose hyper-parameters on "
                "the validation split only; the test split is for the final model, once"
            )
        if leaks := list(dict.fromkeys(seen.get("leaks", []))):  # validation images learnt from
            return Verdict.wrong(
                f"{fn} {summarise(leaks)}: the validation split stands for unseen images, so "
                "whatever a model learns from (standardisation statistics too) comes from the "
                "training split only"
            )
        if "error" in seen:
            return Verdict.error(f"{fn} raised {seen['error']}, so it could not be checked")
        reports = [t.get("last_report") for t in seen.get("trials", [])]
        if not seen.get("finals") and not any(isinstance(r, int | float) for r in reports):
            return Verdict.error(
                f"{fn} trained no model (no training run ended, no trial reported a validation "
                "accuracy): a study made up without searching is no search"
            )
        return Verdict.ok("the search never touched the test split nor learnt from validation")

    return judge


def _study_problem(seen: dict, fn: str) -> str | None:
    """What is wrong with the study `fn` returned, before its trials are compared."""
    if "error" in seen:
        return f"{fn} raised {seen['error']}"
    if "trials" not in seen:
        return f"{fn} returned a {seen.get('returned')}, not the last stage's optuna Study"
    if seen["direction"] != "MAXIMIZE":
        return (
            f"the returned study's direction is {seen['direction']}: validation accuracy is "
            'maximised (optuna.create_study(direction="maximize"))'
        )
    if "best_error" in seen:
        return f"the returned study has no best trial: {seen['best_error']}"
    return None


def _planted(value: float) -> str:
    """What a returned value that is the grader's planted first point is, or ""."""
    if not _close(value, PLANTED_FIRST):
        return ""  # a number the student's own run gave
    return " (the point the grader puts first in every curve while grading, before the epochs)"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _ran(trials: list[dict]) -> int:
    """How many of a study's trials ran (queued ones still WAITING did not)."""
    return sum(t["state"] != "WAITING" for t in trials)


def judge_best_trial(fn: str, last_accuracy: str):
    """The judge of "the study `fn` returned (its `study_summary`, and `returned`: the type's
    name) picks the best validation accuracy as its best trial"; `last_accuracy` says where the
    notebook's objective finds the validation accuracy it reported last, for the message. A
    trial that reported nothing must return the last point of one of the observed `finals`."""

    def judge(seen, want, ctx) -> Verdict:
        if problem := _study_problem(seen, fn):
            return Verdict.wrong(problem)
        # The reference returns the last stage's study: another stage's runs another number of
        # trials (queued trials never run are not counted).
        ran, last = _ran(seen["trials"]), _ran(want.get("trials", []))
        if want.get("trials") and ran != last:
            return Verdict.wrong(
                f"the returned study ran {ran} trials, but the last stage runs {last}: {fn} must "
                "return the last stage's study"
            )
        number = (int, float)
        done = [
            t for t in seen["trials"] if t["state"] == "COMPLETE" and isinstance(t["value"], number)
        ]
        if not done:
            return Verdict.wrong("the returned study has no completed trial")
        # A trial's value is its validation accuracy after its last epoch, which is also the
        # last value it reported to the pruner: an objective that returns anything else (the
        # training accuracy, say) ranks the trials by something the pruner never saw.
        must = (
            "the objective must return the validation accuracy after the last epoch "
            f"({last_accuracy}), not a training accuracy, the best of its curve or another number"
        )
        if seen.get("self_validated"):  # val_set = train_set: a training accuracy
            return Verdict.wrong(
                f"{fn} validated its trials on images they were trained on (the training "
                "function's training and validation splits share images: one is the other, a "
                "part of it or holds it), so each trial's value is partly a training accuracy: "
                "train on the training split and validate on the validation split, apart"
            )
        finals = seen.get("finals") or []
        for t in done:
            value, last = t["value"], t["last_report"]
            if not isinstance(last, number):  # nothing reported: the last point of some curve
                if not any(_close(value, f) for f in finals):
                    return Verdict.wrong(
                        f"trial {t['number']} returned {value:.4f}{_planted(value)}, which no "
                        f"training run of the search ended on: {must}"
                    )
            elif not _close(value, last):
                return Verdict.wrong(
                    f"trial {t['number']} returned {value:.4f}{_planted(value)} but reported "
                    f"the validation accuracy {last:.4f} after its last epoch: {must}"
                )
        best = max(t["value"] for t in done)
        numbers = [t["number"] for t in done if t["value"] == best]
        return Verdict.expect(
            seen["best_number"] in numbers,
            f"the best trial is the one with the highest validation accuracy ({best:.4f})",
            f"the returned study's best trial is trial {seen['best_number']} "
            f"({seen['best_value']}), but trial {numbers[0]} reached {best:.4f}",
        )

    return judge
