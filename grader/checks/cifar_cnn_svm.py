"""The checks that are `cifar_cnn_svm`'s own (its manifest's checks without `source`), each
running the student's code on inputs the grader draws and comparing with the reference on the
same inputs: the SVC on a small set, never 10,000 images; data answers on data sets the grader
makes, so nothing can be written in.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.svm import SVC
from torchvision import transforms
from torchvision.datasets import CIFAR10

from grader.checks import kit
from grader.checks.common import WrongValue, jsonable, kind_of, same_values
from grader.checks.families.loop_results import as_text
from grader.spec import Definitions

OWN = Definitions()
register = OWN.register

SPLIT = ("X_train", "X_test", "y_train", "y_test")


class Images(CIFAR10):
    """torchvision's CIFAR10 over the grader's own arrays: the same items, `len`, `targets`,
    `classes`, `class_to_idx` and `transform` as the real one (`__getitem__` is torchvision's)."""

    def __init__(self, data: np.ndarray, targets, classes, transform=None):  # no files read
        self.data, self.targets, self.classes = data, [int(t) for t in targets], list(classes)
        self.class_to_idx = {name: i for i, name in enumerate(classes)}
        self.transform, self.target_transform, self.train = transform, None, True


# ---------------------------------------------------------------- data answers


def _size_pair(rng) -> list[int]:
    """[training, test] sizes whose ratio has no finite decimal expansion (the test size has a
    factor 3 or 7 that the training size lacks), so that a ratio divided with // or rounded to
    a few decimals is never the ratio itself (sizes 13 and 4 let round(x, 2) through)."""
    test = rng.choice([3, 6, 7, 9])
    factor = 7 if test == 7 else 3
    return [rng.choice([n for n in range(10, 41) if n % factor]), test]


def _draw_sizes(rng, manifest) -> dict:
    return {"sizes": [_size_pair(rng) for _ in range(2)], "seed": kit.seed(rng)}


@OWN.observer(draw=_draw_sizes)
def data_answer_runs(ctx) -> dict:
    """data_answers on pairs of data sets of drawn sizes, labels and class names, handing out
    tensors as the notebook's do (a DataLoader cannot batch PIL images)."""
    seed = int(ctx.settings["seed"])

    def run(i, sizes):
        rng = np.random.default_rng(seed + i)
        classes = [f"kind_{k}" for k in rng.permutation(10)]
        made = [
            Images(
                rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                rng.integers(0, 10, n),
                classes,
                transforms.ToTensor(),
            )
            for n in sizes
        ]
        return {"answers": jsonable(ctx.get("data_answers")(*made))}

    return {"runs": kit.per_setting(ctx.settings["sizes"], seed, run)}


def _sizes_at(ctx, i, want) -> str:
    return "for data sets of {} and {} images".format(*ctx.settings["sizes"][i])


@kit.judged(OWN, data_answer_runs, "runs", _sizes_at, name="data_answers")
def _answers_problem(entry, want, ctx, i) -> str | None:
    got, target = entry["answers"], want["answers"]
    if not isinstance(got, dict):
        return f"it returned {got!r}, not a dict"
    ratio = got.get("size_ratio")
    if isinstance(ratio, str):  # blind round 15: "4.67" was told only it was not 4.66667
        return f"size_ratio {ratio!r} is a string: return a number, not rounded"
    if not isinstance(ratio, int | float) or abs(ratio - target["size_ratio"]) > 1e-6:
        return f"size_ratio {ratio!r}, expected {target['size_ratio']:g}"
    if got.get("first_five") != target["first_five"]:
        return f"first_five {got.get('first_five')!r}, expected {target['first_five']!r}"
    return None


# ---------------------------------------------------------------- SVC


@OWN.observer(draw=kit.draws({"n": (12, 24)}))
def svc_fit(ctx) -> dict:
    """fit_svc on a data set of 36 images of 3 classes (a colour pattern each, plus noise),
    through the sheet's normalisation: what the fitted SVC holds."""
    seed, n = int(ctx.settings["seed"]), int(ctx.settings["n"])

    def run(i, _):
        rng = np.random.default_rng(seed)
        labels = rng.permutation(np.arange(36) % 3)
        patterns = rng.integers(0, 256, (3, 32, 32, 3))
        noise = rng.normal(0, 60, (36, 32, 32, 3))
        data = np.clip(patterns[labels] + noise, 0, 255).astype(np.uint8)
        normalise = transforms.Normalize(ctx.manifest.mean, ctx.manifest.std)
        images = Images(
            data, labels, list("abc"), transforms.Compose([transforms.ToTensor(), normalise])
        )
        svc = ctx.get("fit_svc")(images, n)
        if not isinstance(svc, SVC) or not hasattr(svc, "support_"):
            # A Pipeline (scaler and SVC) has no support_; an SVC never fitted neither.
            what = "an SVC never fitted" if isinstance(svc, SVC) else kind_of(svc)
            raise WrongValue(f"it returned {what}, not an SVC fitted on the flattened images")
        flat = {}  # flatten_images' X, to name it when the fit differs
        with kit.recorded(flat):
            X = np.asarray(ctx.get("flatten_images")(images, n)[0], dtype=np.float64)
            flat["x_tensor"] = torch.from_numpy(X.reshape(len(X), -1))
            # Each row an item of the data set, in another order or others (shuffled loader)?
            items = torch.stack([images[k][0].double().flatten() for k in range(len(images))])
            flat["items"] = bool(torch.cdist(flat["x_tensor"], items).amin(1).max() < 1e-4)
        return {
            "flat_x_tensor": flat.get("x_tensor"),
            "flat_items": flat.get("items", False),
            "fitted_on": int(svc.shape_fit_[0]),
            "kernel": str(svc.kernel),
            "support_tensor": torch.as_tensor(svc.support_),
            "dual_tensor": torch.as_tensor(svc.dual_coef_),
            "intercept_tensor": torch.as_tensor(svc.intercept_),
        }

    return {"runs": kit.per_setting([None], seed, run)}


def _svc_at(ctx, i, want) -> str:
    return f"fit_svc(36 images, n={ctx.settings['n']})"


@kit.judged(OWN, svc_fit, "runs", _svc_at, name="svc")
def _svc_problem(entry, want, ctx, i) -> str | None:
    if entry["fitted_on"] != want["fitted_on"]:
        return (
            f"it was fitted on {entry['fitted_on']} images: only the first n ({want['fitted_on']})"
        )
    same = torch.equal(entry["support_tensor"], want["support_tensor"]) and all(
        same_values(entry[k], want[k]) for k in ("dual_tensor", "intercept_tensor")
    )
    flat = entry.get("flat_x_tensor")
    if not same and flat is not None and not same_values(flat, want.get("flat_x_tensor")):
        if entry.get("flat_items") and flat.shape == want["flat_x_tensor"].shape:
            return (
                "flatten_images(dataset, n) returned items of the data set, but not the first "
                "n in order (dataset[0] to dataset[n - 1]): a shuffled loader or a sampler "
                "picks others"
            )
        return (
            "flatten_images(dataset, n) returned another X, so the fit differs too: each row "
            "must be an item as the data set hands it out, dataset[i][0] after its transform "
            "(here normalised), flattened (not, say, the raw pixels of dataset.data)"
        )
    if entry["kernel"] != "rbf" or not same:
        return (
            "its support vectors and coefficients are not those of SVC(kernel='rbf') with "
            "scikit-learn's defaults on the first n items of the data set, each flattened"
        )
    return None


# ---------------------------------------------------------------- part 2


# Of the largest decision: defaults on float64 input, another tol or newton-cg differ by < 2.5e-3
# on _points' draws; another C, liblinear, standardised inputs, half the points by > 2.4e-2.
LOGISTIC_ATOL = 5e-3


def _points(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (2n, 2) float32 (even: test_size=0.5 and len(X) // 2 alike), y (2n,) and a grid (50, 2)
    to probe decisions on. The labels follow a noisy line off the origin: the fit's weights and
    intercept are large, so C, the solver and scaling move them (on a circle they did not)."""
    rng = np.random.default_rng(seed)
    n = 2 * int(rng.integers(10, 30))
    X = (rng.normal(size=(n, 2)) * [2, 1] + [3, 0]).astype(np.float32)
    y = (X @ np.array([1.5, -1.0]) + rng.normal(0, 1.5, n) > 4.5).astype(np.int64)
    return X, y, rng.uniform(-2, 2, (50, 2))


@kit.one_case(OWN, draw=kit.draws({}))
def split_runs(ctx) -> dict:
    """split_data on a drawn set of points."""
    X, y, _ = _points(int(ctx.settings["seed"]))
    parts = list(ctx.get("split_data")(X, y))
    if len(parts) != len(SPLIT):
        raise WrongValue(f"it returned {len(parts)} values, not {', '.join(SPLIT)}")
    as_tensor = [torch.as_tensor(np.asarray(p), dtype=torch.float64) for p in parts]
    return {f"{name}_tensor": part for name, part in zip(SPLIT, as_tensor, strict=True)}


# An observer of its own: a split_data that never returns or exits costs fit_logistic nothing.
@kit.one_case(OWN, draw=kit.draws({}))
def logistic_runs(ctx) -> dict:
    """fit_logistic on a drawn training set, probed on a grid."""
    X, y, grid = _points(int(ctx.settings["seed"]))
    return {
        "decision_tensor": torch.as_tensor(ctx.get("fit_logistic")(X, y).decision_function(grid))
    }


@kit.judged(OWN, split_runs, "runs", "split_data(X, y)", name="split_reproduces")
def _split_problem(entry, want, ctx, i) -> str | None:
    got, parts = [entry[f"{n}_tensor"] for n in SPLIT], [want[f"{n}_tensor"] for n in SPLIT]
    if all(torch.equal(g, w) for g, w in zip(got, parts, strict=True)):
        return None
    if all(any(g.shape == w.shape and torch.equal(g, w) for w in parts) for g in got):
        return "its four parts in another order: return X_train, X_test, y_train, y_test"
    return (
        "X_train, X_test, y_train, y_test are not train_test_split(X, y, test_size=0.5, "
        "random_state=42)'s"
    )


@kit.judged(OWN, logistic_runs, "runs", "fit_logistic", name="logistic_regression")
def _logistic_problem(entry, want, ctx, i) -> str | None:
    if not same_values(entry["decision_tensor"], want["decision_tensor"], 0, LOGISTIC_ATOL):
        return "its decisions are not those of LogisticRegression() fitted on the training half"
    return None


# ---------------------------------------------------------------- smallest_width

WIDTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def _draw_widths(rng, manifest) -> dict:
    """Three sweeps ([width, accuracy] pairs in a random order, and a target): one reaching
    0.99 exactly at a drawn width k, with a wider one below it; one reaching a lower target at
    k, with a higher accuracy than a wider width that reaches it exactly (so the width of the
    lowest accuracy reaching the target is not the answer) and none reaching 0.99 (so neither
    is a 0.99 written in for the target); one never reaching 0.99. In both that reach, k - 1 is
    0.004 below the target (rounded to two decimals it would reach it). In the pairs' order a
    wider width reaching the target comes before k, so the first one reaching it in the dict's
    order is not the answer either."""
    cases = []
    for target, reach in ((0.99, "exactly"), (0.9, "above"), (0.99, "")):
        widths = sorted(rng.sample(WIDTHS, 6))
        accuracies = [round(rng.uniform(target - 0.3, target - 0.005), 3) for _ in widths]
        if reach:
            k, top = rng.randint(1, 3), 1.0 if target == 0.99 else 0.985
            accuracies[k - 1] = round(target - 0.004, 3)
            accuracies[k + 1] = round(target - 0.002, 3)
            accuracies[k + 2 :] = [round(rng.uniform(target, top), 3) for _ in widths[k + 2 :]]
            if reach == "above":
                accuracies[k], accuracies[k + 2] = round(rng.uniform(target + 0.03, top), 3), target
            else:
                accuracies[k] = target
        pairs = [list(p) for p in zip(widths, accuracies, strict=True)]
        rng.shuffle(pairs)
        if reach:
            at = [i for i, (w, a) in enumerate(pairs) if a >= target]
            smallest = next(i for i in at if pairs[i][0] == widths[k])
            if smallest == at[0]:  # a wider reaching width first
                pairs[at[0]], pairs[at[1]] = pairs[at[1]], pairs[at[0]]
        cases.append({"pairs": pairs, "target": target})
    return {"cases": cases, "seed": kit.seed(rng)}


@OWN.observer(draw=_draw_widths)
def width_answers(ctx) -> dict:
    def run(i, case):
        accuracies = {int(w): float(a) for w, a in case["pairs"]}
        target = case["target"]
        found = ctx.get("smallest_width")(
            accuracies, **({} if target == 0.99 else {"target": target})
        )
        return {"width": jsonable(found)}

    return {"runs": kit.per_setting(ctx.settings["cases"], int(ctx.settings["seed"]), run)}


def _sweep_at(ctx, i, want) -> str:
    case = ctx.settings["cases"][i]
    pairs = ", ".join(f"{w}: {a}" for w, a in case["pairs"])
    return f"smallest_width({{{pairs}}}, target={case['target']})"


@kit.judged(OWN, width_answers, "runs", _sweep_at, name="smallest_width")
def _width_problem(entry, want, ctx, i) -> str | None:
    if entry["width"] != want["width"]:  # a width written as text ("16") is told so
        return (
            f"it returned {entry['width']!r}{as_text(entry['width'])}, expected {want['width']!r}"
        )
    return None
