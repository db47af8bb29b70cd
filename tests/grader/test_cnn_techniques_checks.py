"""Do cnn_techniques' own checks, called in-process, catch what the variants do not grade?"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from grader.checks.cnn_techniques import analysis, counts, training
from grader.checks.cnn_techniques.counts import PytorchExampleNet
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext
from tests.fixtures.variants import reference_cells
from tests.grader.families.conftest import Harness


def _setup(typed):
    def finetuning_setup(mnist_state, lr):
        model = PytorchExampleNet()
        model.load_state_dict(mnist_state)
        model.requires_grad_(False)
        model.fc2.requires_grad_(True)
        return model, torch.optim.Adadelta(model.fc2.parameters(), lr=typed or lr)

    return finetuning_setup


def test_does_finetune_optimizer_catch_a_learning_rate_ignored():
    """finetuning_setup(state, lr) with its optimiser's lr typed instead of lr, whatever the
    course's settings draw (a drawn 1.0 let Adadelta's default through)."""
    manifest = load_manifest("cnn_techniques")
    for lr in training.LRS:
        seen = {}
        for typed in (None, 1.0, 0.1, 0.01, 0.001):
            ns = {"Net": PytorchExampleNet, "finetuning_setup": _setup(typed)}
            ctx = ProbeContext(ns=ns, manifest=manifest, settings={"lr": lr, "seed": 0})
            seen[typed] = training.finetuning(ctx)["runs"][0]
        for typed, entry in seen.items():
            verdict = training.finetune_optimizer(entry, seen[None], ctx, 0)
            assert (verdict is None) is (typed is None), (lr, typed, verdict)


def _new_head(mnist_state, lr):
    model = PytorchExampleNet()
    model.load_state_dict(mnist_state)
    model.requires_grad_(False)
    model.fc2 = torch.nn.Linear(128, 10)  # a fresh head, as transfer learning often does
    return model, torch.optim.Adadelta(model.fc2.parameters(), lr=lr)


def test_is_a_new_fc2_named_in_finetune_frozen():
    """Blind round 11: finetuning_setup replaced fc2 by a new nn.Linear; finetune_frozen said
    only that the model does not hold the MNIST state, not which part or why."""
    manifest, seen = load_manifest("cnn_techniques"), {}
    for name, setup in (("want", _setup(None)), ("seen", _new_head)):
        ns = {"Net": PytorchExampleNet, "finetuning_setup": setup}
        ctx = ProbeContext(ns=ns, manifest=manifest, settings={"lr": 0.2, "seed": 0})
        seen[name] = training.finetuning(ctx)["runs"][0]
    assert training.finetune_frozen(seen["want"], seen["want"], ctx, 0) is None
    verdict = training.finetune_frozen(seen["seen"], seen["want"], ctx, 0)
    assert "fc2.weight" in verdict and "new layer" in verdict, verdict


CHECKS = (analysis.dream_ascent, analysis.dream_empty_start)


def _dream(penalised):
    """activation_maximisation as the reference writes it, with the penalty on `penalised`."""

    def activation_maximisation(
        model, target, mean, std, steps=200, lr=0.05, decay=0.05, device="cpu"
    ):
        model.eval()
        image = torch.zeros(1, 1, 28, 28, requires_grad=True)
        optimizer = torch.optim.Adam([image], lr=lr)
        scores = []
        for _ in range(steps):
            score = model((image - mean) / std)[0, target]
            scores.append(score.item())
            objective = score - decay * penalised(image, mean, std).pow(2).sum()
            (gradient,) = torch.autograd.grad(objective, image)
            image.grad = -gradient
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0.0, 1.0)
        scores.append(model((image - mean) / std)[0, target].item())
        return image.detach(), scores

    return activation_maximisation


def test_does_dream_ascent_catch_the_penalty_on_the_normalised_input():
    """decay * (((image - mean) / std) ** 2).sum() pulls pixels to the mean grey, not to black:
    the dream probe's logit rose all the same, and it scored full marks (blind round 6)."""
    manifest = load_manifest("cnn_techniques")
    seen = {}
    for name, penalised in (("pixels", lambda x, m, s: x), ("input", lambda x, m, s: (x - m) / s)):
        ns = {"activation_maximisation": _dream(penalised)}
        ctx = ProbeContext(ns=ns, manifest=manifest, settings={"target": 3, "norm": [0.5, 0.5]})
        seen[name] = analysis.dream_seen(ctx)["runs"][0]
    assert analysis.dream_ascent(seen["pixels"], seen["pixels"], ctx, 0) is None
    verdict = analysis.dream_ascent(seen["input"], seen["pixels"], ctx, 0)
    assert "grew brighter" in verdict, verdict


def test_is_an_ascent_on_the_softmax_probability_told_to_use_the_logit():
    """Blind round 11: a student ascended softmax(...)[0, target] ("most sure of a class"); on
    the probe's confident model its gradient vanished, the logit never moved, and the message
    named neither the softmax nor the logit before it."""
    manifest, seen = load_manifest("cnn_techniques"), {}
    for name, softmax in (("want", False), ("seen", True)):
        reference = _dream(lambda x, m, s: x)

        def dream(model, *args, _softmax=softmax, _reference=reference, **kwargs):
            if not _softmax:
                return _reference(model, *args, **kwargs)
            return _reference(torch.nn.Sequential(model, torch.nn.Softmax(1)), *args, **kwargs)

        settings = {"target": 2, "norm": [0.5, 0.5]}
        ctx = ProbeContext(
            ns={"activation_maximisation": dream}, manifest=manifest, settings=settings
        )
        seen[name] = analysis.dream_seen(ctx)["runs"][0]
    verdict = analysis.dream_ascent(seen["seen"], seen["want"], ctx, 0)
    assert verdict and "softmax" in verdict, verdict


def _dream_float64(model, target, mean, std, steps=200, lr=0.05, decay=0.05, device="cpu"):
    """The ascent on a float64 copy of the model (the model itself untouched)."""
    net = copy.deepcopy(model).double().eval()
    image = torch.zeros(1, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    optimizer, scores = torch.optim.Adam([image], lr=lr), []
    for _ in range(steps):
        score = net((image - mean) / std)[0, target]
        scores.append(score.item())
        image.grad = -torch.autograd.grad(score - decay * image.pow(2).sum(), image)[0]
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
    scores.append(net((image - mean) / std)[0, target].item())
    return image.detach().float(), scores


def _dream_fashion(model, target, mean, std, **kwargs):
    """The reference's ascent normalised with the notebook's MEAN, STD, whatever it is given."""
    return _dream(lambda x, m, s: x)(model, target, 0.286, 0.353, **kwargs)


@pytest.mark.parametrize(("dream", "passes"), [(_dream_float64, True), (_dream_fashion, False)])
def test_do_the_dream_checks_grade_the_arguments_not_the_precision(dream, passes):
    """Blind round 9: the ascent on a float64 copy raised in the grader's own float32 model and
    lost both checks; one normalising with the global MEAN, STD instead of its arguments scored
    full marks (the grader passed Fashion-MNIST's): the mean and std are drawn now."""
    manifest, want = load_manifest("cnn_techniques"), {}
    for norm in ([0.1307, 0.3081], [0.5, 0.5]):
        settings = {"target": 4, "norm": norm}
        for name, fn in (("want", _dream(lambda x, m, s: x)), ("seen", dream)):
            ctx = ProbeContext(
                ns={"activation_maximisation": fn}, manifest=manifest, settings=settings
            )
            want[name] = analysis.dream_seen(ctx)["runs"][0]
        verdicts = [check(want["seen"], want["want"], ctx, 0) for check in CHECKS]
        assert (verdicts == [None, None]) if passes else all(verdicts), (norm, verdicts)


FIT_CASES = {  # a reference cell edited: (cell, old, new), and the checks that must catch it
    "the reference": ("fit", "", "", set()),
    "one epoch short": (
        "fit",
        "range(1, epochs + 1)",
        "range(1, epochs)",
        {"fit_keeps_best_epoch"},
    ),
    # One epoch shows no scheduler step: fit_scheduler says so instead of "[0.1], expected [0.1]".
    "one epoch only": (
        "fit",
        "range(1, epochs + 1)",
        "range(1, 2)",
        {"fit_keeps_best_epoch", "fit_scheduler"},
    ),
    # Weights never change, so no epoch's can be told apart: train_epoch's mistake (charged by
    # train_zero_grad) cost fit_keeps_best_epoch too (blind round 7).
    "train_epoch that never trains": ("loops", "loss.backward()", "loss.detach()", set()),
    "the best state not copied": (
        "fit",
        "copy.deepcopy(model.state_dict())",
        "model.state_dict()",
        {"fit_keeps_best_epoch"},
    ),
    "no scheduler step": ("fit", "    scheduler.step()\n", "    pass\n", {"fit_scheduler"}),
    # Blind round 14: a fit evaluating on train_loader lost fit_scheduler too (each evaluation
    # pass counted as an epoch) and was told its weights were "none of an epoch's end".
    "evaluated on the training loader": (
        "fit",
        "evaluate(model, test_loader, device)",
        "evaluate(model, train_loader, device)",
        {"fit_keeps_best_epoch"},
    ),
    # Blind round 11: early stopping after 3 epochs without improvement never stopped within
    # the probe's 4 epochs and kept full marks; the probe runs the notebook's 10, 6 of them
    # worse than the best before a tie, so a patience up to 6 stops it (5 did not, at 7).
    **{
        f"early stopping, patience {n}": (
            "fit",
            "  # a copy: training changes it\n",
            f"\n        elif epoch - best_epoch >= {n}:\n            break\n",
            {"fit_keeps_best_epoch"},
        )
        for n in (3, 6)
    },
}


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness.of("cnn_techniques")


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_do_fit_s_checks_charge_only_fit_s_own_mistakes(harness, case):
    """Blind round 7: a fit one epoch short lost fit_scheduler too (3 learning rates, 4 expected)
    though it stepped once per epoch; the epochs' count is fit_keeps_best_epoch's alone."""
    cell, old, new, caught = FIT_CASES[case]
    cells = {k: reference_cells("cnn_techniques")[k] for k in ("loops", "fit")}
    assert cells[cell].count(old) == 1 or not old
    cells[cell] = cells[cell].replace(old, new) if old else cells[cell]
    results = harness.grade(harness.namespace(*cells.values()), ["fit_run"])
    assert {n for n, r in results.items() if r.status != "pass"} == caught, results
    if "train_loader, device)" in new:
        assert "but on the training loader" in results["fit_keeps_best_epoch"].message, results


def _counts(model):
    """parameter_counts as the notebook asks: each direct submodule's parameters, the total."""
    counts = {name: sum(p.numel() for p in c.parameters()) for name, c in model.named_children()}
    return {**counts, "total": sum(p.numel() for p in model.parameters())}


@pytest.mark.parametrize(
    ("parameter_counts", "passes"),
    [
        (_counts, True),
        (lambda model: _counts(PytorchExampleNet()), False),  # counts Net, not the model given
        (lambda model: dict(_counts(PytorchExampleNet())), False),  # typed: Net's numbers
    ],
)
def test_does_parameter_counts_give_nothing_for_the_same_answer_to_every_model(
    parameter_counts, passes
):
    """Net's numbers typed into parameter_counts were right for Net and earned half the check
    (blind round 8); an answer that does not change with the model now fails both models."""
    settings = {"names": ["conv", "pool", "head", "bn"], "channels": 3, "features": 7}
    ns, manifest = {"parameter_counts": parameter_counts}, load_manifest("cnn_techniques")
    ctx = ProbeContext(ns=ns, manifest=manifest, settings=settings)
    entries = counts.counted(ctx)["models"]
    verdicts = [
        entry.get("wrong") or counts.parameter_counts(entry, entry, ctx, i)
        for i, entry in enumerate(entries)
    ]
    assert (verdicts == [None, None]) if passes else all(verdicts), verdicts


def _state_dict_counts(model):
    """Counts read from state_dict(): batch norm's running statistics counted too."""
    state = model.state_dict()
    counts = {
        n: sum(v.numel() for k, v in state.items() if k.startswith(f"{n}."))
        for n, _ in model.named_children()
    }
    return {**counts, "total": sum(v.numel() for v in state.values())}


def test_are_counts_of_the_state_dict_told_that_buffers_are_no_parameters():
    """Blind round 17: counts summed over state_dict() were right for Net and told, for the drawn
    network with batch norm, "named_children, not named_modules", which was not the mistake."""
    settings = {"names": ["conv", "pool", "head", "bn"], "channels": 3, "features": 7}
    ns, manifest = {"parameter_counts": _state_dict_counts}, load_manifest("cnn_techniques")
    ctx = ProbeContext(ns=ns, manifest=manifest, settings=settings)
    entries = counts.counted(ctx)["models"]
    assert counts.parameter_counts(entries[0], entries[0], ctx, 0) is None
    message = counts.parameter_counts(entries[1], entries[1], ctx, 1)
    assert "bn, total add the buffers" in message and "named_modules" not in message, message


def test_is_a_fit_mistake_charged_once_though_the_curves_show_it():
    """fit counting best_epoch from 0 wrote it so into histories.json too, and lost
    curves_per_epoch beside fit_keeps_best_epoch (blind round 8): the curves build on fit."""
    from grader.judge import _apply_policy
    from grader.report import CheckResult

    manifest = load_manifest("cnn_techniques")
    results = {c.name: CheckResult(c.name, c.points, c.points, "pass", "") for c in manifest.checks}
    for name, points in (("fit_keeps_best_epoch", 0.0), ("curves_per_epoch", 0.0)):
        results[name] = CheckResult(name, points, results[name].max_points, "fail", "best_epoch")
    final = {r.name: r for r in _apply_policy(manifest, results)}
    assert final["fit_keeps_best_epoch"].status == "fail"
    assert (final["curves_per_epoch"].status, final["curves_per_epoch"].points) == ("skipped", 1)


def test_does_fit_pass_with_an_evaluate_that_measures_in_float64(harness):
    """Blind round 9: an evaluate running the model in float64 (and back to float32 after) made
    the grader's scripted test loader, which labels images by the model's predictions, raise in
    float32: fit lost both its checks for a right evaluate."""
    cells = {k: reference_cells("cnn_techniques")[k] for k in ("loops", "fit")}
    head, sep, evaluate = cells["loops"].partition("def evaluate")
    for old, new in (
        ("model.eval()", "model.double().eval()"),
        ("logits = model(images)", "logits = model(images.double())"),
        ("    return total_loss", "    model.float()\n    return total_loss"),
    ):
        assert evaluate.count(old) == 1, old
        evaluate = evaluate.replace(old, new)
    cells["loops"] = head + sep + evaluate
    results = harness.grade(harness.namespace(*cells.values()), ["fit_run"])
    assert all(r.status == "pass" for r in results.values()), results


@pytest.mark.parametrize(
    ("old", "new", "passes"),
    [
        ("", "", True),
        ("outputs.append(output)", "outputs.append(output.squeeze())", False),
        ("labels.append(batch_labels)", "labels.append(batch_labels.squeeze())", False),
        # Blind round 14: features returned on the GPU (the docstring: on the CPU) passed.
        ("torch.cat(outputs).cpu()", "torch.cat(outputs)", False),
        # Blind round 14b: moves to the CPU that a GPU's outputs allow were charged so.
        ("torch.cat(outputs).cpu()", 'torch.cat(outputs).to("cpu")', True),
        ("torch.cat(outputs).cpu()", "torch.cat(outputs).type(torch.FloatTensor)", True),
        # Blind round 18: features computed with gradients (the docstring: "without gradients")
        # kept full marks; they hold every batch's graph, and .numpy() refuses them.
        ("with torch.no_grad():", "with torch.enable_grad():", False),
        ("with torch.no_grad():", "with torch.inference_mode():", True),
    ],
)
def test_does_tsne_fc1_features_see_a_batch_of_one(harness, old, new, passes):
    """Blind round 12: fc1_features squeezing each batch's output ((1, 128) -> (128,)) breaks on
    a last batch of one image, and kept full marks: the probe's batches of 16 never left one."""
    cell = reference_cells("cnn_techniques")["tsne"]
    assert cell.count(old) == 1 or not old
    ns = harness.namespace(reference_cells("cnn_techniques")["net"], cell.replace(old, new))
    results = harness.grade(ns, ["features_seen"])
    assert (results["tsne_fc1_features"].status == "pass") is passes, results
    assert passes or "the last of one image" in results["tsne_fc1_features"].message
    assert passes or ".cpu()" in results["tsne_fc1_features"].message or "cpu()" not in old


def test_does_fit_pass_with_an_evaluate_that_rebatches_its_loader_s_dataset(harness):
    """Blind round 14b: an evaluate iterating DataLoader(loader.dataset, batch_size=1000) (the
    same images, larger batches; evaluate's own checks pass it) read the scripted test loader's
    unlabelled dataset, and its fit was told it "never evaluated the model on test_loader"."""
    cells = {k: reference_cells("cnn_techniques")[k] for k in ("loops", "fit")}
    head, sep, evaluate = cells["loops"].partition("def evaluate")
    old = "for images, labels in loader:"
    assert evaluate.count(old) == 1
    evaluate = evaluate.replace(old, old.replace("loader", "DataLoader(loader.dataset, 1000)"))
    cells["loops"] = "from torch.utils.data import DataLoader\n" + head + sep + evaluate
    results = harness.grade(harness.namespace(*cells.values()), ["fit_run"])
    assert all(r.status == "pass" for r in results.values()), results


@pytest.mark.parametrize(
    "moved",
    ['.to("cpu")', ".to(labels.device)", ".to(labels)", ".type(torch.LongTensor)", '.to("cuda")'],
)
def test_do_predictions_moved_to_the_cpu_pass_confusion_rows(harness, moved):
    """Blind round 14b: confusion's predictions moved to the CPU otherwise than by .cpu() lost
    confusion_rows ("can't convert cuda:0 device type tensor to numpy"): under the grader's
    gpu_calls_on_cpu, Tensor.to's stand-in was named "to_cpu", which gpu.Resident did not
    take for a move; .type(torch.LongTensor) and .to(a CPU tensor) move to the CPU on a GPU."""
    cell = reference_cells("cnn_techniques")["confusion"]
    assert cell.count(".argmax(dim=1).cpu()") == 1
    ns = harness.namespace(cell.replace(".argmax(dim=1).cpu()", ".argmax(dim=1)" + moved))
    results = harness.grade(ns, ["confusion_seen"])
    assert (results["confusion_rows"].status == "pass") is ("cuda" not in moved), results


def test_does_fc1_features_pass_when_it_asks_the_student_s_net_for_its_features(harness):
    """Blind round 14: fc1_features calling model(images, return_features=True), an argument
    of the student's own Net (the only model the notebook gives it), raised a TypeError in the
    grader's network and lost tsne_fc1_features; it is now run on the student's Net."""
    net = reference_cells("cnn_techniques")["net"]
    for old, new in (
        ("def forward(self, x):", "def forward(self, x, return_features=False):"),
        (
            "x = self.dropout2(F.relu(self.fc1(x)))",
            "f = self.fc1(x)\n        x = self.dropout2(F.relu(f))",
        ),
        ("return self.fc2(x)", "return (self.fc2(x), f) if return_features else self.fc2(x)"),
    ):
        assert net.count(old) == 1, old
        net = net.replace(old, new)
    cell = """
@torch.no_grad()
def fc1_features(model, loader, device):
    model.to(device).eval()
    pairs = [(model(x.to(device), return_features=True)[1].cpu(), y) for x, y in loader]
    return tuple(torch.cat(t) for t in zip(*pairs))
"""
    for cell_ in (cell, cell.replace(".cpu(), y)", ".cpu()[:, :64], y)")):
        results = harness.grade(harness.namespace(net, cell_), ["features_seen"])
        assert (results["tsne_fc1_features"].status == "pass") is (cell_ == cell), results


@pytest.mark.parametrize("normalize", [None, "true"])
def test_is_a_normalised_confusion_matrix_told_so(normalize):
    """Blind round 12: confusion with normalize="true" (each row's fractions) lost confusion_rows,
    rightly, but was told "entry [i, j] must count images of true class i predicted as j"."""
    from sklearn.metrics import confusion_matrix

    from grader.checks.families import loop_models

    def confusion(model, loader, device):
        pairs = [(y, model.eval()(x).argmax(1).cpu()) for x, y in loader]
        truth, predicted = (torch.cat(t).numpy() for t in zip(*pairs, strict=True))
        return confusion_matrix(truth, predicted, labels=list(range(10)), normalize=normalize)

    entry = loop_models.confusion_probe(confusion, 40, 3, seed=0)
    problem = loop_models.confusion_problem(entry)
    assert (problem is None) if normalize is None else "fractions" in problem, problem


def test_are_predictions_left_on_the_gpu_caught_by_confusion_rows():
    """Blind round 14: confusion handing scikit-learn the predictions without .cpu() fails on
    Colab's GPU ("can't convert cuda:0 device type tensor to numpy") and kept full marks on the
    CPU grader: the probe's model now computes as on a GPU (gpu.Resident)."""
    from sklearn.metrics import confusion_matrix

    from grader.checks.families import loop_models

    for cpu in (True, False):

        def confusion(model, loader, device, cpu=cpu):
            pairs = [(y, model.eval()(x.to(device)).argmax(1)) for x, y in loader]
            truth, predicted = (torch.cat(t) for t in zip(*pairs, strict=True))
            predicted = predicted.cpu() if cpu else predicted
            return confusion_matrix(truth.numpy(), predicted.numpy(), labels=list(range(10)))

        if cpu:
            assert loop_models.confusion_probe(confusion, 40, 3, seed=0)["right"]
        else:
            with pytest.raises(TypeError, match=r"Tensor\.cpu\(\)"):
                loop_models.confusion_probe(confusion, 40, 3, seed=0)


@pytest.mark.parametrize(
    ("new", "passes"),
    [
        # in evaluation mode too: still charged
        ("torch.flatten(x * torch.bernoulli(torch.full_like(x, 0.75)) / 0.75, 1)", False),
        (
            "torch.flatten(x * torch.bernoulli(torch.full_like(x, 0.75)) / 0.75 "
            "if self.training else x, 1)",
            True,
        ),
        ("torch.flatten(x, 1)", False),  # the first dropout left out: still charged
    ],
)
def test_is_a_mask_by_hand_beside_nn_dropout_judged_as_one_by_hand(harness, new, passes):
    """Blind round 14b: Net's first dropout drawn by hand (torch.bernoulli, under `if
    self.training`) beside nn.Dropout for the second lost net_behaviour ("not in training
    mode"): training outputs were compared exactly whenever F.dropout ran at all, though the
    hand-drawn mask cannot be the reference's. Draws of a mask's kind now count as by hand."""
    net, old = reference_cells("cnn_techniques")["net"], "torch.flatten(self.dropout1(x), 1)"
    assert net.count(old) == 1
    observer = harness.checkset.checks["net_behaviour"].observer
    results = harness.grade(harness.namespace(net.replace(old, new)), [observer])
    assert (results["net_behaviour"].status == "pass") is passes, results


@pytest.mark.parametrize("rebound", [[[1.2, 3.4]], {}])
def test_are_the_handed_in_curves_judged_when_a_later_cell_rebinds_histories(tmp_path, rebound):
    """Blind round 15 (cnn v14): the dream cell reused the name `histories` for a list of the
    dreams' scores; curves_per_epoch read the name as the notebook left it and said "no learning
    curves: hand in the histories.json" though the file handed in was right. The file is read."""
    manifest = load_manifest("cnn_techniques")
    run = {"train_loss": [0.5, 0.4], "train_accuracy": [0.8, 0.9], "test_loss": [0.4, 0.3]}
    run |= {"test_accuracy": [0.85, 0.9], "best_epoch": 2, "best_accuracy": 0.9}
    (tmp_path / training.HISTORIES).write_text(json.dumps({m.key: run for m in manifest.models}))
    ctx = ProbeContext(ns={"histories": rebound}, manifest=manifest, workdir=tmp_path)
    verdict = training.curves_per_epoch(training.submitted_curves(ctx), None, ctx)
    assert verdict.fraction == 1, verdict


@pytest.mark.parametrize("epochs, passes", [(2, True), (4, False), (None, True)])
def test_are_runs_shorter_than_the_notebook_s_epochs_charged(tmp_path, epochs, passes):
    """Blind round 16 (cnn s10): EPOCHS = 5 set in the baseline's training cell, five epochs in
    every run's curves, kept curves_per_epoch though "Every run trains for 10 epochs"."""
    manifest = load_manifest("cnn_techniques")
    run = {"train_loss": [0.5, 0.4], "train_accuracy": [0.8, 0.9], "test_loss": [0.4, 0.3]}
    run |= {"test_accuracy": [0.85, 0.9], "best_epoch": 2, "best_accuracy": 0.9}
    (tmp_path / training.HISTORIES).write_text(json.dumps({m.key: run for m in manifest.models}))
    ns = {} if epochs is None else {"EPOCHS": epochs}
    ctx = ProbeContext(ns=ns, manifest=manifest, workdir=tmp_path)
    verdict = training.curves_per_epoch(training.submitted_curves(ctx), None, ctx)
    assert (verdict.fraction == 1) is passes, verdict
    if not passes:
        assert "baseline: 2 epochs" in verdict.message, verdict.message
        assert "the notebook asks for 4 (EPOCHS)" in verdict.message, verdict.message


def _materialised_loaders(dataset_class, root, train_transform, test_transform, batch_size=64):
    loaders = []
    for train, transform, size in (
        (True, train_transform, batch_size),
        (False, test_transform, 1000),
    ):
        data = dataset_class(root, train=train, download=True, transform=transform)
        images = torch.stack([data[i][0] for i in range(len(data))])  # transformed once
        dataset = torch.utils.data.TensorDataset(images, data.targets.clone())
        loaders.append(torch.utils.data.DataLoader(dataset, batch_size=size, shuffle=train))
    return tuple(loaders)


def test_is_a_make_loaders_that_materialises_the_data_set_told_so():
    """Blind round 15 (cnn v18): make_loaders transformed every image once into a TensorDataset
    (augmentation frozen, `loader.dataset` not the data set). It lost make_loaders, rightly, but
    was told only "raised TypeError: expected Tensor ... but got str" (the stand-in's items)."""
    ns = {"make_loaders": _materialised_loaders}
    ctx = ProbeContext(ns=ns, manifest=load_manifest("cnn_techniques"), settings={"batch": 16})
    entry = counts.loaders_made(ctx)["runs"][0]
    assert "read the data set's items itself" in entry.get("wrong", ""), entry


class _CountingNet(PytorchExampleNet):
    """Net with a buffer of its own that every training forward changes."""

    def __init__(self):
        super().__init__()
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))


@pytest.mark.parametrize("fc2_trained, passes", [(True, True), (False, False)])
def test_is_a_buffer_of_net_changed_by_fine_tuning_not_charged(tmp_path, fc2_trained, passes):
    """Blind round 17: a Net with a buffer counting the images it saw in training (saved with the
    weights) lost finetune_from_mnist, "differ in ['images_seen']", though only fc2 trained."""
    manifest = load_manifest("cnn_techniques")
    mnist = _CountingNet().state_dict()
    finetuned = {k: v.clone() for k, v in mnist.items()}
    finetuned["images_seen"] += 60000
    if fc2_trained:
        finetuned["fc2.bias"] += 1.0
    torch.save(mnist, tmp_path / manifest.model("mnist").weights)
    torch.save(finetuned, tmp_path / manifest.model("finetuned").weights)
    ctx = ProbeContext(
        ns={"Net": _CountingNet}, manifest=manifest, workdir=tmp_path, weights_dir=tmp_path
    )
    verdict = training.finetune_from_mnist(training.finetuned_files(ctx), None, ctx)
    assert (verdict.fraction == 1) is passes, verdict
    assert "images_seen" not in verdict.message, verdict.message
    # Without a Net to build, every tensor counts, as before.
    ctx = ProbeContext(ns={}, manifest=manifest, workdir=tmp_path, weights_dir=tmp_path)
    assert (
        "images_seen"
        in training.finetune_from_mnist(training.finetuned_files(ctx), None, ctx).message
    )
