"""Does mlp_tuning's std check take the sheet's formula however a student rewrites it, in
float32, in every grading run's cases, and still name the formula's mistakes? Is an MLP that
cannot be trained charged to its dropout, not to the search; augmenting after Standardise, to
the training transform?"""

from __future__ import annotations

import json
import logging
import random
from types import SimpleNamespace

import optuna
import pytest
import torch

from grader.checks.families import accuracy
from grader.checks.families.images import noise_images
from grader.checks.mlp_tuning import final, mlp, search, transforms
from grader.checks.mlp_tuning import statistics as own
from grader.checks.mlp_tuning.shared import ARCHITECTURE
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext
from tests.fixtures.variants import reference_cells
from tests.grader.families.conftest import Harness

SEEDS = range(300)
RIGHT = {
    "two passes": lambda x: ((x - x.mean(0)) ** 2).mean(0).sqrt(),
    "E[x^2] - E[x]^2": lambda x: ((x * x).sum(0) / len(x) - x.mean(0) ** 2).sqrt(),
}
WRONG = {
    "lacks the + 1e-5": lambda x: x.std(0, correction=0) - own.EPSILON,
    "divides by N - 1": lambda x: x.std(0),
}


def _problem(std_of, seed: int) -> str | None:
    """stats_formula's verdict on `std_of(float32 images) + 1e-5` in the first drawn case."""
    case = own._draw_statistics(random.Random(seed), None)["cases"][0]
    x = noise_images(case["images"], case["seed"])[case["indices"]].float() / 255
    want = {"std_tensor": x.std(0, correction=0) + own.EPSILON}
    entry = {"std_tensor": std_of(x) + own.EPSILON, "std_type": "a tensor"}
    return own.stats_formula(entry, want, SimpleNamespace(settings={"cases": [case]}), 0)


@pytest.mark.parametrize("formula", RIGHT)
def test_is_the_sheet_s_formula_right_in_float32_however_written(formula):
    assert [s for s in SEEDS if _problem(RIGHT[formula], s) is not None] == []


@pytest.mark.parametrize("mistake", WRONG)
def test_is_each_mistake_of_the_formula_named(mistake):
    assert all(mistake in (_problem(WRONG[mistake], s) or "") for s in SEEDS[:20])


def test_does_a_stacked_pair_lose_only_its_form():
    """`torch.stack([mean, std])`, which the notebook's own cell unpacks, is the form the
    docstring rules out (stats_shape); the images' values are right (blind round 9: it also
    lost the 3 points of stats_training_subset)."""
    ns: dict = {}
    exec(IMPORTS + "\n" + reference_cells("mlp_tuning")["statistics"], ns)  # noqa: S102
    settings = own._draw_statistics(random.Random(2), None)
    observed = [own.statistics(ProbeContext(ns=ns, manifest=None, settings=settings))]
    pair = ns["standardisation_images"]
    ns["standardisation_images"] = lambda subset: torch.stack(pair(subset))
    observed.insert(0, own.statistics(ProbeContext(ns=ns, manifest=None, settings=settings)))
    checks = [c for c in own.OWN.checks if c.observer == "statistics"]
    verdicts = {c.name: c.judge(*observed, SimpleNamespace(settings=settings)) for c in checks}
    assert {n for n, v in verdicts.items() if v.fraction < 1} == {"stats_shape"}, verdicts
    assert "stacked" in verdicts["stats_shape"].message


def test_is_one_value_for_every_pixel_named_as_such():
    """Blind round 13: the mean and std of all the pixels, spread over (28, 28) images, were told
    "use only the images subset.indices names", though the student had used only those."""
    ns: dict = {}
    exec(IMPORTS + "\n" + reference_cells("mlp_tuning")["statistics"], ns)  # noqa: S102
    settings = own._draw_statistics(random.Random(2), None)
    want = own.statistics(ProbeContext(ns=ns, manifest=None, settings=settings))

    def one_value(subset):
        x = subset.dataset.data[torch.as_tensor(subset.indices)].float() / 255
        return torch.full((28, 28), float(x.mean())), torch.full((28, 28), float(x.std()) + 1e-5)

    ns["standardisation_images"] = one_value
    seen = own.statistics(ProbeContext(ns=ns, manifest=None, settings=settings))
    check = next(c for c in own.OWN.checks if c.name == "stats_training_subset")
    verdict = check.judge(seen, want, SimpleNamespace(settings=settings))
    assert verdict.fraction == 0 and "one value for all pixels" in verdict.message, verdict
    assert "subset.indices" not in verdict.message


IMPORTS = (
    "import math, time, optuna, torch\nfrom torch import nn\nfrom torchvision import transforms"
)
IMPORTS += "\nfrom torch.utils.data import DataLoader, Dataset, Subset"


def _verdicts(part, observer, **cells: str) -> dict:
    """check name -> Verdict of `part`'s checks fed by `observer`, for the reference's cells with
    `cells` in their place, run in process and judged against the reference's observation."""
    manifest, reference = load_manifest("mlp_tuning"), reference_cells("mlp_tuning")
    draw = next(o.draw for o in part.OWN.observers if o.observe is observer)
    settings, observed = draw(random.Random(1), manifest), []
    for changes in (cells, {}):
        ns: dict = {}
        for name in ("transforms", "mlp", "loops", "search"):
            exec(compile(IMPORTS + "\n" + {**reference, **changes}[name], name, "exec"), ns)
        observed.append(observer(ProbeContext(ns=ns, manifest=manifest, settings=settings)))
    checks = [c for c in part.OWN.checks if c.observer == observer.__name__]
    return {c.name: c.judge(*observed, SimpleNamespace(settings=settings)) for c in checks}


def test_is_dropout_in_place_charged_to_the_dropout_check_and_not_to_the_search():
    """Reported: nn.ReLU(inplace=True) then nn.Dropout(inplace=True) gives the right outputs,
    but a backward pass raises (the dropout overwrote what the activation's gradient needs): it
    lost the search's 5 points (run_search raised) and none of the MLP's."""
    cell = reference_cells("mlp_tuning")["mlp"]
    cell = cell.replace('"relu": nn.ReLU}', '"relu": lambda: nn.ReLU(inplace=True)}')
    cell = cell.replace("nn.Dropout(dropout)]", "nn.Dropout(dropout, inplace=True)]")
    dropout = _verdicts(mlp, mlp.mlp_dropout, mlp=cell)["mlp_dropout_modes"]
    assert dropout.fraction == 0.5 and "inplace=True" in dropout.message, dropout
    assert not dropout.raised  # a wrong value: it excuses mlp_behaviour, which builds on it
    searched = _verdicts(search, search.search, mlp=cell)
    assert all(v.fraction == 1 for v in searched.values()), searched


def test_is_a_lazy_first_layer_judged_by_the_mlp_checks():
    """Blind round 13b: nn.LazyLinear(width) as the first hidden layer (the modules family
    shapes it by a forward pass) raised in fix_parameters (an uninitialised parameter's shape)
    and lost mlp_activation and mlp_dropout_modes, 4 points, for the right MLP."""
    cell = reference_cells("mlp_tuning")["mlp"]
    assert "nn.Linear(features, width)" in cell
    lazy = "(nn.LazyLinear(width) if features == input_size else nn.Linear(features, width))"
    cell = cell.replace("nn.Linear(features, width)", lazy)
    for observer in (mlp.mlp_hidden, mlp.mlp_dropout):
        verdicts = _verdicts(mlp, observer, mlp=cell)
        assert all(v.fraction == 1 for v in verdicts.values()), verdicts


PARAMETER_LIST_MLP = """import torch.nn.functional as F
class MLP(nn.Module):
    def __init__(self, hidden_layers=2, width=256, activation="relu", dropout=0.0,
                 input_size=784, classes=10):
        super().__init__()
        sizes = [input_size] + [width] * hidden_layers + [classes]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layer = nn.Linear(n_in, n_out)
            self.weights.append(layer.weight)
            self.biases.append(layer.bias)
        self.activation, self.dropout = activation, nn.Dropout(dropout)

    def forward(self, x):
        x, act = x.flatten(1), getattr(torch, self.activation)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            x = self.dropout(act(F.linear(x, w, b)))
        return F.linear(x, self.weights[-1], self.biases[-1])
"""


def test_are_layers_applied_with_f_linear_judged_by_the_mlp_checks():
    """Blind round 14 (s14): weights and biases in two nn.ParameterLists, applied with F.linear
    (registered, trained and saved; parameters, outputs and behaviour right) lost mlp_activation
    and mlp_dropout_modes, 4 points: "0 nn.Linear layer calls in forward"."""
    for observer in (mlp.mlp_hidden, mlp.mlp_dropout):
        verdicts = _verdicts(mlp, observer, mlp=PARAMETER_LIST_MLP)
        assert all(v.fraction == 1 for v in verdicts.values()), verdicts
    wrong = PARAMETER_LIST_MLP.replace("getattr(torch, self.activation)", "torch.tanh")
    assert _verdicts(mlp, mlp.mlp_hidden, mlp=wrong)["mlp_activation"].fraction < 1


def test_is_a_log_softmax_mlp_charged_to_mlp_output():
    """Blind round 14 (s28): an MLP returning log_softmax(logits) (the sheet: "raw scores
    (logits, no softmax)") passed mlp_output and lost mlp_behaviour, told to check the order of
    its layers. The manifest asks for raw logits: mlp_output names the log-softmax."""
    from grader.checks.families import modules

    manifest = load_manifest("mlp_tuning")
    entry = next(m for m in manifest.modules if m.name == "mlp")
    cell = reference_cells("mlp_tuning")["mlp"]
    observe, draw = modules.observe(entry, False), modules.draw_settings(entry)
    settings, seen = draw(random.Random(1), manifest), []
    for code in (
        cell.replace("return self.layers(x)", "return self.layers(x).log_softmax(1)"),
        cell,
    ):
        ns: dict = {}
        exec(compile(IMPORTS + "\n" + code, "mlp", "exec"), ns)
        seen.append(observe(ProbeContext(ns=ns, manifest=manifest, settings=settings)))
    problems = [
        modules._output_problem(entry, *pair)
        for pair in zip(*(s["settings"] for s in seen), strict=True)
    ]
    assert all("log-probabilities" in p for p in problems), problems


@pytest.mark.parametrize(
    "old, new",
    [
        ("return correct / count", "return object()"),  # evaluate: no number
        ("return correct / count", "correct / count"),  # evaluate: None
        ("return total / count", "total / count"),  # train_epoch: None
    ],
)
def test_is_a_loops_mistake_charged_to_the_loops_checks_and_not_to_the_search(old, new):
    """Blind round 10: an evaluate written with torchmetrics (a stand-in on the grading machine)
    returned no number, Optuna refused it as a trial's value and run_search raised: the search
    lost its 5 points besides evaluate's own. A forgotten return did the same."""
    cell = reference_cells("mlp_tuning")["loops"]
    assert cell.count(old) == 1
    searched = _verdicts(search, search.search, loops=cell.replace(old, new))
    assert all(v.fraction == 1 for v in searched.values()), searched


def test_is_a_float64_transform_not_charged_to_the_search():
    """Blind round 13: a Standardise that kept float64 images (the student's own loops cast each
    batch to float32) made the grader's stand-in epoch functions raise in run_search, which
    lost its 5 points (and final_accuracy its 5, measured through the same transform)."""
    cell = reference_cells("mlp_tuning")["transforms"]
    old = "        self.mean_image = mean_image\n        self.std_image = std_image\n"
    assert cell.count(old) == 1
    cell = cell.replace(old, old.replace("_image\n", "_image.double()\n"))
    searched = _verdicts(search, search.search, transforms=cell)
    assert all(v.fraction == 1 for v in searched.values()), searched


def test_is_a_standardise_left_undone_not_charged_to_the_search():
    """Blind round 15 (v02): make_transforms done, its helper Standardise left as released: the
    search, done, raised NotImplementedError in every trial and lost its 5 points, though the
    search check stands in the grader's statistics, MLP and epoch functions for the student's."""
    cell = reference_cells("mlp_tuning")["transforms"]
    start, end = cell.index("    def __init__(self, mean_image"), cell.index("def make_transforms")
    undone = "    def __init__(self, mean_image, std_image):\n        raise NotImplementedError()\n"
    searched = _verdicts(search, search.search, transforms=cell[:start] + undone + cell[end:])
    assert all(v.fraction == 1 for v in searched.values()), searched


def test_is_a_search_validated_on_the_training_split_charged_to_best_trial():
    """Blind round 14 (s13): train_and_validate(config, train_set, train_set, ...) scored every
    trial by its training accuracy, which it also reported: both search checks passed."""
    cell = reference_cells("mlp_tuning")["search"]
    old = "config, train_set, val_set, stats, stage["
    assert cell.count(old) == 1
    searched = _verdicts(
        search, search.search, search=cell.replace(old, old.replace("val", "train"))
    )
    assert searched["search_never_tests"].fraction == 1, searched
    best = searched["search_best_trial"]
    assert best.fraction == 0 and "trained on" in best.message, searched


def test_does_the_search_check_print_no_optuna_trial_lines():
    """Seen by an instructor: grading printed Optuna's INFO line for each trial of the
    reference's search, which the grading run observes in its own process (--quiet too)."""
    optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's default
    logged, handler = [], logging.Handler()
    handler.emit = logged.append
    logging.getLogger("optuna").addHandler(handler)
    try:
        searched = _verdicts(search, search.search)
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert all(v.fraction == 1 for v in searched.values()), searched
    assert [r.getMessage() for r in logged] == []


@pytest.mark.parametrize(
    "steps, right",
    [("[to_tensor[0], *augment, *to_tensor[1:]]", True), ("to_tensor + augment", False)],
)
def test_is_augmenting_after_standardise_wrong_and_after_to_tensor_right(steps, right):
    """Augmenting tensors after ToTensor gives the sheet's images within a grey level; after the
    per-pixel Standardise, pixels move away from their own statistics (it passed full marks)."""
    cell = reference_cells("mlp_tuning")["transforms"]
    cell = cell.replace("Compose(augment + to_tensor)", f"Compose({steps})")
    verdicts = _verdicts(transforms, transforms.transform_outputs, transforms=cell)
    assert verdicts["train_transform_augments"].fraction == (1 if right else 0.5), verdicts
    assert (
        right or "in this order" in verdicts["train_transform_augments"].message
    )  # not Standardise


def test_is_a_generator_of_the_two_transforms_taken_as_their_pair():
    """Blind round 18 (mlp_tuning s16): make_transforms yielding its two transforms, which every
    cell of the notebook unpacks (`train_t, eval_t = make_transforms(...)`), lost 4 points as
    "not a pair"; a generator of three is still no pair."""
    cell = reference_cells("mlp_tuning")["transforms"]
    given = "return transforms.Compose(augment + to_tensor), transforms.Compose(to_tensor)"
    for extra, right in (("", True), (", None", False)):
        made = f"return (t for t in ({given.removeprefix('return ')}{extra}))"
        verdicts = _verdicts(
            transforms, transforms.transform_outputs, transforms=cell.replace(given, made)
        )
        assert all((v.fraction == 1) == right for v in verdicts.values()), verdicts


def test_is_a_standardise_mistake_named_as_one_and_not_as_an_augmentation_mistake():
    """Blind round 11: a Standardise that ignored the images it was given lost points in the
    augmentation and evaluation checks, whose messages sent the student to the augmentations'
    order and to augmenting evaluation images instead."""
    cell = reference_cells("mlp_tuning")["transforms"]
    own = "return (x - self.mean_image) / self.std_image"
    cell = cell.replace(own, "return (x - 0.2860) / 0.3530")  # Fashion-MNIST's channel stats
    verdicts = _verdicts(transforms, transforms.transform_outputs, transforms=cell)
    hints = {"train_transform_augments": "in this order", "eval_transform_deterministic": "no aug"}
    for name, elsewhere in hints.items():
        assert verdicts[name].fraction == 0.5, verdicts  # as before: the message changed
        message = verdicts[name].message
        assert "must apply Standardise" in message and elsewhere not in message, message


def test_is_a_standardise_left_unused_not_blamed_on_standardise():
    """Blind round 15b (mlp_tuning v09): a correct Standardise that make_transforms never used
    (a Centre step, x - mean_image, in its place) was told "Standardise must compute (x -
    mean_image) / std_image", which sent the student to a class that was right."""
    cell = reference_cells("mlp_tuning")["transforms"]
    cell = cell.replace("Standardise(mean_image, std_image))", "lambda x: x - mean_image)")
    verdicts = _verdicts(transforms, transforms.transform_outputs, transforms=cell)
    message = verdicts["eval_transform_deterministic"].message
    assert verdicts["eval_transform_deterministic"].fraction < 1, verdicts
    assert "make_transforms must apply Standardise" in message, message


def test_does_a_standardise_sharing_its_images_between_instances_lose_the_evaluation_check():
    """Blind round 12: a Standardise that kept its images as class attributes
    (`Standardise.mean_image = mean_image`) standardised every transform with the images of the
    last one made, and kept full marks: each transform was probed before another was made."""
    cell = reference_cells("mlp_tuning")["transforms"]
    for name in ("mean_image", "std_image"):
        cell = cell.replace(f"self.{name} = {name}", f"Standardise.{name} = {name}")
        cell = cell.replace(f"self.{name}", f"Standardise.{name}")
    verdicts = _verdicts(transforms, transforms.transform_outputs, transforms=cell)
    assert verdicts["train_transform_augments"].fraction == 1, verdicts  # charged once
    evaluation = verdicts["eval_transform_deterministic"]
    assert evaluation.fraction == 0.5 and "its own" in evaluation.message, evaluation


GLOBAL_STATE = {
    "float64 by default": ("torch.set_default_dtype(torch.float64)", torch.get_default_dtype),
    "gradients off": ("torch.set_grad_enabled(False)", torch.is_grad_enabled),
    "bfloat16 matmuls": (
        'torch.set_float32_matmul_precision("medium")',
        torch.get_float32_matmul_precision,
    ),
}


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness.of("mlp_tuning")


@pytest.mark.parametrize("case", sorted(GLOBAL_STATE))
def test_is_global_state_left_by_a_late_cell_ignored(harness, case):
    """Blind round 7: a right notebook's last cell `torch.set_default_dtype(torch.float64)` (a
    gradcheck) cost train_mode, train_loss, the transforms (float64 random draws) and
    mlp_behaviour; `torch.set_grad_enabled(False)` train_mode, train_loss and the search (nothing
    to backpropagate); `torch.set_float32_matmul_precision("medium")` mlp_behaviour (bfloat16 on
    the grading CPU). Observers run under torch's defaults and give the cell's state back."""
    cell, state = GLOBAL_STATE[case]
    before = state()
    try:
        ns = harness.namespace(cell)
        left = state()
        results = harness.grade(ns, ["module:mlp", "loops", "transform_outputs"])
        assert state() == left != before  # given back to the notebook as it left it
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)
        torch.set_float32_matmul_precision("highest")
    assert {n for n, r in results.items() if r.status != "pass"} == set(), results


def test_does_config_matches_weights_say_that_it_unwrapped_a_checkpoint_dict(tmp_path):
    """A checkpoint dict ({"model": state dict, "epoch": ...}) is graded, as the README says the
    accuracy checks do, and config_matches_weights says so (blind round 8: it said nothing)."""
    ns = {"torch": torch, "nn": torch.nn}
    exec(reference_cells("mlp_tuning")["mlp"], ns)  # noqa: S102 - the reference's code
    config = {"hidden_layers": 1, "width": 8, "activation": "tanh", "dropout": 0.0}
    (tmp_path / "final_config.json").write_text(json.dumps({**config, "normalise": True}))
    state = ns["MLP"](**config).state_dict()
    torch.save({"model": state, "epoch": 3}, tmp_path / "mlp_final.pt")
    manifest = load_manifest("mlp_tuning")
    ctx = ProbeContext(ns=ns, manifest=manifest, workdir=tmp_path, weights_dir=tmp_path)
    judge = accuracy.judge_config_fits("mlp", ARCHITECTURE)
    verdict = judge(final.predictions(ctx), None, SimpleNamespace(manifest=manifest))
    assert verdict.fraction == 1 and "under 'model' graded" in verdict.message, verdict.message


def test_does_a_lazy_first_layer_load_the_final_weights(tmp_path):
    """Blind round 13b: an MLP whose first layer is nn.LazyLinear(width) loads a state dict
    (the load shapes it), but config_matches_weights and final_accuracy read the shapes of its
    uninitialised parameters first and raised: 7 points lost for weights that fit."""
    ns = {"torch": torch, "nn": torch.nn}
    exec(reference_cells("mlp_tuning")["mlp"], ns)  # noqa: S102 - the reference's code
    config = {"hidden_layers": 1, "width": 8, "activation": "tanh", "dropout": 0.0}
    (tmp_path / "final_config.json").write_text(json.dumps({**config, "normalise": True}))
    torch.save(ns["MLP"](**config).state_dict(), tmp_path / "mlp_final.pt")

    class Lazy(ns["MLP"]):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            first = next(i for i, m in enumerate(self.layers) if isinstance(m, torch.nn.Linear))
            self.layers[first] = torch.nn.LazyLinear(kwargs["width"])

    manifest = load_manifest("mlp_tuning")
    ctx = ProbeContext(
        ns={**ns, "MLP": Lazy}, manifest=manifest, workdir=tmp_path, weights_dir=tmp_path
    )
    judge = accuracy.judge_config_fits("mlp", ARCHITECTURE)
    verdict = judge(final.predictions(ctx), None, SimpleNamespace(manifest=manifest))
    assert verdict.fraction == 1, verdict.message


def test_does_a_split_of_fixed_sizes_hear_of_validation_size(monkeypatch):
    """Blind round 13: random_split(dataset, [55000, 5000], ...) raised on the probe's 60 items,
    and the message asked for "55,000 for training first", which the student's split gives."""
    images = torch.rand(2, 28, 28)
    monkeypatch.setattr(own, "training_statistics", lambda dataset: tuple(images))
    ns: dict = {}
    exec(IMPORTS + "\nfrom torch.utils.data import random_split", ns)  # noqa: S102
    exec(  # noqa: S102
        "def split_train_validation(dataset, validation_size=5000, seed=0):\n"
        "    g = torch.Generator().manual_seed(seed)\n"
        "    return random_split(dataset, [55000, 5000], generator=g)\n",
        ns,
    )
    ns["mean_image"], ns["std_image"] = images
    seen = own.notebook_images(ProbeContext(ns=ns, manifest=None, settings={}))
    manifest = SimpleNamespace(dataset="fashion_mnist")
    verdict = own.notebook_statistics(seen, {}, SimpleNamespace(manifest=manifest))
    assert verdict.fraction == 0 and "ValueError" in verdict.message, verdict
    assert "len(dataset) - validation_size items for training first" in verdict.message


def test_does_a_statistics_image_replaced_later_hear_of_it(monkeypatch):
    """Blind round 15 (v05): a later cell set mean_image, std_image to the validation split's;
    the message only told how to split, which the student's split_train_validation did right."""
    images = torch.rand(2, 28, 28)
    monkeypatch.setattr(own, "training_statistics", lambda dataset: tuple(images))
    ns: dict = {}
    exec(IMPORTS + "\n" + reference_cells("mlp_tuning")["split"], ns)  # noqa: S102
    ns["random_split"] = torch.utils.data.random_split
    ns["mean_image"], ns["std_image"] = images[0] + 0.01, images[1]
    seen = own.notebook_images(ProbeContext(ns=ns, manifest=None, settings={}))
    manifest = SimpleNamespace(dataset="fashion_mnist")
    verdict = own.notebook_statistics(seen, {}, SimpleNamespace(manifest=manifest))
    assert verdict.fraction == 0 and "mean_image is not" in verdict.message, verdict
    assert "std_image is not" not in verdict.message and "unreplaced" in verdict.message


def test_is_a_torchscript_mlp_judged_as_it_computes(harness):
    """Blind round 17 (p11): `self.layers = torch.jit.script(nn.Sequential(*layers))`, layers
    registered, trained and saved as the sheet asks, lost mlp_activation and mlp_dropout_modes
    (4 points, "0 nn.Linear layer calls"): a scripted Linear runs no forward hook and no torch
    function mode. Observers build student modules eagerly, as they run compiled ones."""
    old = "self.layers = nn.Sequential(*layers)"
    cell = reference_cells("mlp_tuning")["mlp"]
    assert old in cell
    ns = harness.namespace(cell.replace(old, f"self.layers = torch.jit.script({old[14:]})"))
    with pytest.warns(FutureWarning):  # torch 2.10+: torch.jit.script is deprecated
        assert isinstance(ns["MLP"]().layers, torch.jit.ScriptModule)  # scripted in the notebook
    results = harness.grade(ns, ["module:mlp", "mlp_hidden", "mlp_dropout"])
    assert len(results) == 5 and all(r.status == "pass" for r in results.values()), results
    assert torch.jit._state._enabled.enabled  # given back to the notebook


def test_is_the_final_accuracy_measured_through_a_generator_of_transforms(tmp_path):
    """Blind round 18 (mlp_tuning s16): make_transforms returning a generator of its two
    transforms, which every cell of the notebook unpacks, lost final_accuracy's 5 points, told
    "mlp_final.pt could not be evaluated: TypeError: 'generator' object is not subscriptable":
    the weights were fine. The evaluation transform is unpacked, as the notebook's test cell
    does; the form of the pair is judged by the transforms checks alone."""
    from torch.utils.data import Dataset
    from torchvision import transforms as tv

    ns = {"torch": torch, "nn": torch.nn, "transforms": tv, "Dataset": Dataset}
    for cell in ("mlp", "transforms"):
        exec(reference_cells("mlp_tuning")[cell], ns)  # noqa: S102 - the reference's code
    config = {"hidden_layers": 1, "width": 8, "activation": "tanh", "dropout": 0.0}
    (tmp_path / "final_config.json").write_text(json.dumps({**config, "normalise": True}))
    torch.save(ns["MLP"](**config).state_dict(), tmp_path / "mlp_final.pt")
    torch.save(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8), tmp_path / "test.pt")
    ns.update(mean_image=torch.full((28, 28), 0.3), std_image=torch.full((28, 28), 0.2))
    pair, scores = ns["make_transforms"], {}
    makes = {"tuple": pair, "generator": lambda *a, **k: (t for t in pair(*a, **k))}
    for form, make in makes.items():
        ctx = ProbeContext(
            ns={**ns, "make_transforms": make},
            manifest=load_manifest("mlp_tuning"),
            settings={"seed": 0},
            workdir=tmp_path,
            weights_dir=tmp_path,
            test_images=tmp_path / "test.pt",
        )
        scores[form] = final.predictions(ctx)["mlp"]
    assert "logits_tensor" in scores["generator"], scores["generator"]
    assert torch.equal(scores["generator"]["logits_tensor"], scores["tuple"]["logits_tensor"])
