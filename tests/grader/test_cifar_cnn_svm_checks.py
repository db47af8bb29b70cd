"""Do cifar_cnn_svm's own draws tell each half-right answer from the right one in every
grading run, not only in the run the variants happen to be graded with?"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from grader.checks import cifar_cnn_svm as own
from grader.checks.assemble import build_checkset
from grader.checks.common import jsonable, same_values
from grader.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]

SEEDS = range(500)


def test_does_every_drawn_size_pair_refuse_a_rounded_ratio():
    # Sizes 13 and 4 (3.25) let round(ratio, 2) through, 20 and 5 a ratio divided with //.
    for seed in SEEDS:
        for train, test in own._draw_sizes(random.Random(seed), None)["sizes"]:
            ratio = train / test
            assert all(abs(wrong - ratio) > 1e-6 for wrong in (train // test, round(ratio, 2)))


def test_is_an_exact_fraction_or_a_tensor_a_number_for_size_ratio():
    # "A number, not rounded": Fraction(train, test) is the exact one.
    want = {"answers": {"size_ratio": 34 / 3, "first_five": ["cat", "dog"]}}
    for ratio in (Fraction(34, 3), torch.tensor(34 / 3, dtype=torch.float64), np.float32(34 / 3)):
        entry = {"answers": jsonable({"size_ratio": ratio, "first_five": ("cat", "dog")})}
        assert own._answers_problem(entry, want, None, 0) is None, ratio


def test_is_a_ratio_written_as_a_string_told_it_is_one():
    """Blind round 15 (v13): size_ratio f"{ratio:.2f}" was told "size_ratio '4.67', expected
    4.66667", which reads as a rounding problem only; the unrounded string fails too."""
    want = {"answers": {"size_ratio": 14 / 3, "first_five": ["cat"]}}
    for ratio in ("4.67", str(14 / 3)):
        entry = {"answers": jsonable({"size_ratio": ratio, "first_five": ["cat"]})}
        told = own._answers_problem(entry, want, None, 0)
        assert "is a string: return a number" in told, told


def _readings(accuracies: dict, target: float) -> dict:
    reaching = [w for w, a in accuracies.items() if a >= target]
    return {
        "first in the dict's order": next(iter(reaching), None),
        "lowest accuracy reaching": min(reaching, key=accuracies.get, default=None),
        "more than the target": min((w for w in reaching if accuracies[w] > target), default=None),
        "0.99 written in": min((w for w, a in accuracies.items() if a >= 0.99), default=None),
        "rounded": min((w for w, a in accuracies.items() if round(a, 2) >= target), default=None),
    }


def test_does_every_drawn_sweep_set_each_wrong_reading_apart():
    for seed in SEEDS:
        missed = set(_readings({}, 0))
        for case in own._draw_widths(random.Random(seed), None)["cases"]:
            accuracies = {int(w): a for w, a in case["pairs"]}
            right = min((w for w, a in accuracies.items() if a >= case["target"]), default=None)
            readings = _readings(accuracies, case["target"])
            missed -= {name for name, answer in readings.items() if answer != right}
        assert not missed, (seed, missed)


def test_does_the_logistic_probe_take_every_default_fit_and_no_other_model():
    for seed in range(100):
        X, y, grid = own._points(seed)
        want = torch.as_tensor(LogisticRegression().fit(X, y).decision_function(grid))
        for model, inputs, right in [
            (LogisticRegression(), X.astype(np.float64), True),  # lbfgs stops elsewhere
            (LogisticRegression(C=2), X, False),
            (LogisticRegression(solver="liblinear"), X, False),  # its intercept penalised
        ]:
            got = torch.as_tensor(model.fit(inputs, y).decision_function(grid))
            assert same_values(got, want, 0, own.LOGISTIC_ATOL) == right, (seed, model)


def test_does_the_split_check_name_parts_in_another_order():
    parts = {f"{n}_tensor": torch.full((3,), float(i)) for i, n in enumerate(own.SPLIT)}
    swapped = dict(zip(parts, [parts[k] for k in list(parts)[::-1]], strict=True))
    assert "another order" in own._split_problem(swapped, parts, None, 0)


def test_does_every_deep_setting_show_one_middle_layer_repeated():
    # [nn.Linear(h, h)] * (n_hidden - 1) in a ModuleList counts its parameters once: with one
    # middle layer (n_hidden 2) that is the right count, and such a setting gave partial credit.
    entry = load_manifest("cifar_cnn_svm").module("deep")
    low, high = next(a.range for a in entry.args if a.name == "n_hidden")
    for n_hidden in {*range(low, high + 1), *(fixed[0] for fixed in entry.fixed)}:
        middle = torch.nn.Linear(4, 4)
        repeated = torch.nn.ModuleList([middle] * (n_hidden - 1))
        distinct = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(n_hidden - 1)])
        count = [sum(p.numel() for p in m.parameters()) for m in (repeated, distinct)]
        assert count[0] < count[1], n_hidden


def test_are_split_data_and_fit_logistic_observed_apart():
    # The probe stops a whole observer: a split_data that slept past its limit or exited cost
    # fit_logistic its check too while one observer called both.
    checks = build_checkset(load_manifest("cifar_cnn_svm")).checks
    assert checks["split_reproduces"].observer != checks["logistic_regression"].observer


def _svc_entry(flatten_images) -> dict:
    """svc_fit's entry for a student whose fit_svc is right and flatten_images is the one given."""
    from sklearn.svm import SVC

    code = {"flatten_images": flatten_images}
    code["fit_svc"] = lambda dataset, n: SVC(kernel="rbf").fit(*code["flatten_images"](dataset, n))
    ctx = SimpleNamespace(
        settings={"seed": 3, "n": 12},
        manifest=load_manifest("cifar_cnn_svm"),
        get=code.__getitem__,
    )
    return own.svc_fit(ctx)["runs"][0]


def _transformed(dataset, n):
    X = np.stack([dataset[i][0].numpy().ravel() for i in range(n)])
    return X, np.array([dataset[i][1] for i in range(n)])


def test_does_a_flatten_images_of_raw_pixels_say_so():
    # dataset.data / 255 skips the transform (the normalisation): the fit_svc is right, the
    # message named only the fit ("its support vectors and coefficients are not those ...").
    def raw(dataset, n):
        return dataset.data[:n].reshape(n, -1) / 255.0, np.array(dataset.targets[:n])

    want = _svc_entry(_transformed)
    assert own._svc_problem(_svc_entry(_transformed), want, None, 0) is None
    problem = own._svc_problem(_svc_entry(raw), want, None, 0)
    assert problem.startswith("flatten_images(dataset, n) returned another X")
    assert "after its transform" in problem


def test_does_a_shuffled_flatten_images_say_the_order():
    # Blind round 13: a DataLoader(dataset, shuffle=True, generator=...) in flatten_images was
    # told "each row must be an item as the data set hands it out ... (not the raw pixels)".
    def shuffled(dataset, n):
        order = np.random.default_rng(0).permutation(len(dataset))[:n]
        return _transformed(torch.utils.data.Subset(dataset, order), n)

    want = _svc_entry(_transformed)
    problem = own._svc_problem(_svc_entry(shuffled), want, None, 0)
    assert "not the first n in order" in problem and "shuffled" in problem, problem


def test_is_a_deep_classifier_checkpointed_on_its_points_told_it_cannot_train():
    # DeepClassifier is fed the points themselves (the manifest's `data`), which need no
    # gradient: under a reentrant checkpoint its first layer trains nothing. The probe fed it
    # inputs with a gradient, as a block's, and deep_behaviour passed (the last note).
    from tests.grader.families.conftest import Harness

    cifar = Harness.of("cifar_cnn_svm")
    code = (REPO / "solutions" / "cifar_cnn_svm" / "student.py").read_text()
    old = "x = F.leaky_relu(self.first(x))"
    assert code.count(old) == 1
    new = "x = F.leaky_relu(torch.utils.checkpoint.checkpoint(self.first, x, use_reentrant={}))"
    for reentrant, failing in ((True, {"deep_behaviour"}), (False, set())):
        student = cifar.namespace(code.replace(old, new.format(reentrant)))
        results = cifar.grade(student, ["module:deep"])
        assert {n for n, r in results.items() if r.points < r.max_points} == failing, results
        assert (
            not failing or "no gradient reaches first.weight" in results["deep_behaviour"].message
        )


def test_is_a_decimal_ratio_a_number_and_a_width_as_text_told_so():
    """Blind 15b: size_ratio Decimal(train) / Decimal(test), a number not rounded, became
    '<Decimal>' and was told "is a string"; smallest_width returning str(width) was told only
    "it returned '16', expected 16"."""
    want = {"answers": {"size_ratio": 14 / 3, "first_five": ["cat"]}}
    ratio = Decimal(14) / Decimal(3)
    entry = {"answers": jsonable({"size_ratio": ratio, "first_five": ["cat"]})}
    assert own._answers_problem(entry, want, None, 0) is None
    told = own._width_problem({"width": jsonable("16")}, {"width": 16}, None, 0)
    assert "a number written as text" in told, told
