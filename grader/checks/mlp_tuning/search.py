"""`mlp_tuning`'s search: `run_search` with a tiny budget on a tiny data set of the grader's
own, while the notebook's test split is replaced by a tripwire. It must never touch the test
split; every trial's value is the validation accuracy it reported last to the pruner (on data
where training and validation accuracies differ), and its best trial is the best of them."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Subset

from grader.checks import kit
from grader.checks.common import StopProbe, describe_error, jsonable, summarise
from grader.checks.mlp_tuning.shared import CLASSES, EPSILON, SIDE, ImageSet
from grader.spec import Definitions, Verdict

OWN = Definitions()

# Two stages of two trials, one epoch each: every code path of a staged search, in seconds.
SEARCH_STAGES = (
    {"share": 0.5, "epochs": 1, "reports": 1, "keep": 2},
    {"share": 0.5, "epochs": 1, "reports": 1, "keep": 0},
)
SEARCH_TRIALS = 4
SEARCH_OPTIONS = {"stages": SEARCH_STAGES, "storage": None, "device": torch.device("cpu")}
WITHHELD = ("test_set", "test_loader")


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


def class_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, 28, 28) images and their labels: a seeded pattern per class plus noise, so a
    few steps of training already tell the classes apart better than chance."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(CLASSES, SIDE, SIDE, generator=g)
    labels = torch.arange(n) % CLASSES
    labels = labels[torch.randperm(n, generator=g)]
    noise = torch.rand(n, SIDE, SIDE, generator=g)
    images = (0.7 * patterns[labels] + 0.3 * noise) * 255
    return images.round().to(torch.uint8), labels


def grader_statistics(subset) -> tuple[torch.Tensor, torch.Tensor]:
    """The sheet's mean and std images of a Subset's images, computed by the grader: put in
    place of the student's while the search is probed, so that a statistics mistake is charged
    to the statistics checks alone."""
    images = subset.dataset.data[torch.as_tensor(list(subset.indices))].float() / 255
    return images.mean(0), images.std(0, correction=0) + EPSILON


def _draw_search(rng, manifest) -> dict:
    return {
        # The search's seed, drawn from a smaller range than kit.seed's as it always was: a
        # kit.seed here would change every setting drawn after it, and so the grades.
        "seed": rng.randrange(2**16),
        "data_seed": kit.seed(rng),
        "train_images": rng.randint(150, 200),
        "val_images": rng.randint(80, 120),
    }


def _study_summary(study) -> dict:
    """Each trial's number, state, value and the value it reported last to the pruner
    (`trial.report(value, step)`, the largest step), and the study's best trial."""
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


@OWN.observer(draw=_draw_search)
def search(ctx) -> dict:
    """`run_search` on a tiny data set with a tiny budget, the test split replaced by tripwires
    and the statistics by the grader's own (see `grader_statistics`)."""
    s, ns = ctx.settings, ctx.ns
    run_search = ctx.get("run_search")
    images, labels = class_images(s["train_images"] + s["val_images"], s["data_seed"])
    # Every fourth validation image carries the next class's label: a trial that learns the
    # classes reaches about 1 on its training images but at most 0.75 on validation, so an
    # objective that returns another accuracy than the validation one shows.
    mislabelled = torch.arange(s["train_images"], len(labels), 4)
    labels[mislabelled] = (labels[mislabelled] + 1) % CLASSES
    data = ImageSet(images, labels)
    train_set = Subset(data, list(range(s["train_images"])))
    val_set = Subset(data, list(range(s["train_images"], len(data))))
    touched: list[str] = []
    replaced = {name: Tripwire(name, touched) for name in WITHHELD}
    replaced["standardisation_images"] = grader_statistics
    saved = {name: ns[name] for name in replaced if name in ns}
    out: dict = {}
    try:
        ns.update(replaced)
        study = run_search(train_set, val_set, SEARCH_TRIALS, seed=int(s["seed"]), **SEARCH_OPTIONS)
        out["returned"] = type(study).__name__
        out.update(_study_summary(study))
    except StopProbe:
        raise
    except Exception as err:  # noqa: BLE001 - reported as data; the judge decides
        out["error"] = describe_error(err)
    finally:
        for name in replaced:
            if name in saved:
                ns[name] = saved[name]
            else:
                ns.pop(name, None)
    out["touched"] = list(dict.fromkeys(touched))
    return out


@OWN.check(observe=search)
def search_never_tests(seen, want, ctx) -> Verdict:
    if "error" in want:  # a grader bug, said loudly
        raise RuntimeError(f"the reference failed on run_search: {want['error']}")
    if touched := seen["touched"]:
        return Verdict.wrong(
            f"run_search used the test split ({summarise(touched)}): choose hyper-parameters on "
            "the validation split only; the test split is for the final model, once"
        )
    if "error" in seen:
        return Verdict.error(f"run_search raised {seen['error']}, so it could not be checked")
    return Verdict.ok("the search never touched the test split")


def _study_problem(seen) -> str | None:
    """What is wrong with the study run_search returned, before its trials are compared."""
    if "error" in seen:
        return f"run_search raised {seen['error']}"
    if "trials" not in seen:
        return f"run_search returned a {seen.get('returned')}, not the last stage's optuna Study"
    if seen["direction"] != "MAXIMIZE":
        return (
            f"the returned study's direction is {seen['direction']}: validation accuracy is "
            'maximised (optuna.create_study(direction="maximize"))'
        )
    if "best_error" in seen:
        return f"the returned study has no best trial: {seen['best_error']}"
    return None


@OWN.check(observe=search)
def search_best_trial(seen, want, ctx) -> Verdict:
    if problem := _study_problem(seen):
        return Verdict.wrong(problem)
    number = (int, float)
    done = [
        t for t in seen["trials"] if t["state"] == "COMPLETE" and isinstance(t["value"], number)
    ]
    if not done:
        return Verdict.wrong("the returned study has no completed trial")
    # A trial's value is its validation accuracy after its last epoch, which is also the last
    # value it reported to the pruner: an objective that returns anything else (the training
    # accuracy, say) ranks the trials by something the pruner never saw.
    for t in done:
        value, last = t["value"], t["last_report"]
        if isinstance(last, number) and not math.isclose(value, last, rel_tol=1e-6, abs_tol=1e-9):
            return Verdict.wrong(
                f"trial {t['number']} returned {value:.4f} but reported the validation "
                f"accuracy {last:.4f} after its last epoch: the objective must return the "
                "validation accuracy it reported last (curve['val_accuracy'][-1]), not a "
                "training accuracy or another number"
            )
    best = max(t["value"] for t in done)
    numbers = [t["number"] for t in done if t["value"] == best]
    return Verdict.expect(
        seen["best_number"] in numbers,
        f"the best trial is the one with the highest validation accuracy ({best:.4f})",
        f"the returned study's best trial is trial {seen['best_number']} "
        f"({seen['best_value']}), but trial {numbers[0]} reached {best:.4f}",
    )
