"""Does the loops family judge what each pass did (which batches, which functions, what it
returned), in-process?"""

from __future__ import annotations

import pytest
import torch

from grader.checks.common import along
from grader.checks.families.loop_models import scheduler_on
from tests.fixtures import toy
from tests.grader.families.conftest import Harness

REBATCHED = """    loader = torch.utils.data.DataLoader(
        loader.dataset, batch_size=loader.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    for images, labels in loader:"""


def test_is_a_train_that_reshuffles_its_loader_s_data_told_so(harness):
    """Blind round 14b: train_epoch looping over a DataLoader of its own over loader.dataset
    (the same batch size, reshuffled) lost train_mode ("batch-norm statistics are not the ones
    one pass gives") and train_zero_grad ("must call optimizer.zero_grad()"), which it did: the
    batches held other images. Only the sizes were compared; the images are now, and the pass
    is named where the Rprop steps differ."""
    code = toy.cells()["loops"]
    loop = "    for images, labels in loader:"
    assert code.count(loop) == 2  # train's loop first
    results = harness.grade(harness.namespace(code.replace(loop, REBATCHED, 1)), ["loops"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"train_zero_grad"}, {n: r.message for n, r in results.items()}
    told = results["train_zero_grad"].message
    assert "other images" in told and "zero_grad()" not in told, told


@pytest.mark.parametrize(
    ("assignment", "also_lost"),
    [(None, set()), ("cnn_techniques", {"train_loss"})],  # its train_loss judges evaluate's loss
)
def test_does_a_missing_evaluate_cost_train_nothing(harness, assignment, also_lost):
    """Blind round 15 (cifar v03, cnn v03): a typo in a line between train_epoch and evaluate
    raised, so evaluate was never defined; every loops and devices check, train's too, said
    "evaluate is not defined". Each observer now looks up only its own function: only what
    calls evaluate is lost, and says why."""
    harness = Harness.of(assignment) if assignment else harness
    ns = harness.namespace()
    del ns["evaluate"]
    results = harness.grade(ns, ["loops", "loops_evaluate", "devices", "devices_evaluate"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    lost = {"evaluate_mode", "evaluate_accuracy", "evaluate_device"} | also_lost
    assert failing == lost, {n: r.message for n, r in results.items()}
    assert all("evaluate is not defined" in results[n].message for n in failing)


def test_is_a_number_returned_as_text_told_so(harness):
    """Blind round 15 (res_dense_nets): evaluate returning f"{correct / count:.4f}" lost
    evaluate_accuracy, rightly, told "returned '0.5714' ..., expected 0.5714 (... not a
    percentage ...)", which did not say what was wrong: the text is named as one."""
    code = toy.cells()["loops"]
    end = "    return correct / count"
    assert code.count(end) == 1
    code = code.replace(end, '    return f"{correct / count:.4f}"')
    results = harness.grade(harness.namespace(code), ["loops_evaluate"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"evaluate_accuracy"}, {n: r.message for n, r in results.items()}
    assert "a number written as text" in results["evaluate_accuracy"].message


def test_is_an_optimizer_of_its_own_told_so_and_not_charged_to_the_mode(harness):
    """Blind round 17 (fnn): a trainer that made its own Adam ("Adam with a learning rate of
    0.001") instead of stepping the optimizer it was given lost train_mode ("batch-norm
    statistics are not the ones one pass gives") and train_loss ("... no label smoothing ...
    no softmax"), neither its mistake. The given optimizer's steps are counted: none while the
    weights moved is the pass's problem, charged to train_loss alone (train_zero_grad builds
    on it)."""
    code = toy.cells()["loops"]
    start = "    model.train()\n    loss_fn"
    assert code.count(start) == 1
    own = "    model.train()\n    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
    results = harness.grade(harness.namespace(code.replace(start, own + "    loss_fn")), ["loops"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"train_loss"}, {n: r.message for n, r in results.items()}
    told = "never called step() of the optimizer"
    assert told in results["train_loss"].message and told in results["train_zero_grad"].message


SMOOTHED = """        logits = model(images)
        loss = nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
        loss.backward()
        optimizer.step()
        total += nn.functional.cross_entropy(logits.detach(), labels).item() * len(labels)"""


def test_is_a_train_that_clears_its_gradients_not_told_to_call_zero_grad(harness):
    """Blind round 17 (mlp_tuning p25, p26): train_epoch training with label smoothing (or
    class weights) and returning the plain mean cross-entropy lost train_zero_grad, told "must
    call optimizer.zero_grad() before each loss.backward()", which it did: its Rprop steps
    differ because its gradients are another loss's. The check now sees whether the gradients
    were cleared before each backward pass, and says which it was."""
    code = toy.cells()["loops"]
    old = """        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)"""
    assert code.count(old) == 1
    results = harness.grade(harness.namespace(code.replace(old, SMOOTHED)), ["loops"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"train_zero_grad"}, {n: r.message for n, r in results.items()}
    told = results["train_zero_grad"].message
    assert "clears the gradients" in told and "must call" not in told, told
    forgot = code.replace("        optimizer.zero_grad()\n", "")
    told = harness.grade(harness.namespace(forgot), ["loops"])["train_zero_grad"].message
    assert "must call optimizer.zero_grad()" in told, told  # the forgotten call still named


SUMMED = {  # cifar's train_epoch edited (old -> new pairs), what train_loss's message must say
    "summed by default": (
        [
            ("criterion or nn.NLLLoss()", 'criterion or nn.NLLLoss(reduction="sum")'),
            ("total += loss.item() * len(labels)", "total += loss.item()"),
        ],
        "times the batch size",
    ),
    "its default loss, always": (
        [("criterion or nn.NLLLoss()", "nn.NLLLoss()")],
        "use the loss it is given",
    ),
}


@pytest.mark.parametrize("case", sorted(SUMMED))
def test_is_a_train_that_uses_its_criterion_but_sums_told_what_it_did(case):
    """Blind round 17 (cifar v09): NLLLoss(reduction="sum") as train_epoch's default and
    loss.item() added unweighted: right with the default, wrong with a mean criterion passed
    in. It lost train_loss, rightly, but was told "use the loss it is given", which it did.
    The given loss notes its calls; a train that called it is told how to average it."""
    from tests.grader.families.test_loops_and_devices import REPO

    cifar = Harness.of("cifar_cnn_svm")
    code = (REPO / "solutions" / "cifar_cnn_svm" / "student.py").read_text()
    edits, told = SUMMED[case]
    for old, new in edits:
        assert code.count(old) == 1
        code = code.replace(old, new)
    results = cifar.grade(cifar.namespace(code), ["loops"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"train_loss"}, {n: r.message for n, r in results.items()}
    assert told in results["train_loss"].message, results["train_loss"].message
    from grader.checks.families.loop_results import given_advice  # called on other outputs

    assert "other outputs" in given_advice([[2.0, 8]], 1.0, None)


def test_is_an_evaluate_that_leaves_gradients_off_told_so(harness):
    """Blind round 18 (mlp_tuning s07): evaluate calling torch.set_grad_enabled(False) instead of
    `with torch.no_grad():`, never switching gradients back on, kept every point: each observer
    starts with gradients on. In the notebook every training after an evaluation (the next epoch
    of train_and_validate) then raises in backward(). evaluate_mode is lost, and says why."""
    code = toy.cells()["loops"]
    old = "    with torch.no_grad():\n        for images, labels in loader:"
    assert code.count(old) == 1
    new = "    torch.set_grad_enabled(False)\n    if True:\n        for images, labels in loader:"
    results = harness.grade(harness.namespace(code.replace(old, new)), ["loops_evaluate"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"evaluate_mode"}, {n: r.message for n, r in results.items()}
    assert "left gradients switched off" in results["evaluate_mode"].message
    assert torch.is_grad_enabled()  # the observer's defaults restored it


def test_is_a_train_under_no_grad_told_that_no_gradient_reached_the_weights(harness):
    """Blind round 18 (cifar s07): train_epoch decorated with @torch.no_grad(), backward's
    error ("does not require grad") silenced by loss.requires_grad_(True), never trained. It
    lost train_zero_grad, rightly, told "is optimizer.step() called, after loss.backward() and
    with no optimizer.zero_grad() between the two?", all of which it did. The backward passes
    that reach the weights are counted, and none with steps taken is named as such."""
    code = toy.cells()["loops"]
    old = "        loss.backward()\n"
    assert code.count(old) == 1 and code.startswith("def train_epoch(")
    code = "@torch.no_grad()\n" + code.replace(old, "        loss.requires_grad_(True)\n" + old)
    results = harness.grade(harness.namespace(code), ["loops"])
    failing = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert failing == {"train_zero_grad"}, {n: r.message for n, r in results.items()}
    told = results["train_zero_grad"].message
    assert "no gradient ever reached the weights" in told and "@torch.no_grad()" in told, told
    unstepped = toy.cells()["loops"].replace("        optimizer.step()\n", "", 1)
    told = harness.grade(harness.namespace(unstepped), ["loops"])["train_zero_grad"].message
    assert "is optimizer.step() called" in told, told  # a missing step still named


def test_is_a_train_that_changes_its_batches_not_told_it_reshuffled(harness):
    """Blind round 18 (res_dense_nets s09): train_epoch standardising each batch in place
    (images.sub_(images.mean()).div_(images.std())) lost train_zero_grad, told it ran "other
    images (a DataLoader of its own over loader.dataset, reshuffled?)": it iterated over its
    loader. A reshuffle keeps the sum of all the images; a change to them does not: told so."""
    code = toy.cells()["loops"]
    move = "        images, labels = images.to(device), labels.to(device)\n        optimizer"
    assert code.count(move) == 1
    again = "        images.sub_(images.mean()).div_(images.std())\n        optimizer"
    edited = code.replace(move, move.replace("        optimizer", again))
    results = harness.grade(harness.namespace(edited), ["loops"])
    told = results["train_zero_grad"].message
    assert results["train_zero_grad"].status == "fail", told
    assert "images changed" in told and "reshuffled" not in told, told


def test_is_a_scheduler_seen_before_it_changes_the_rate():
    """Blind round 19: StepLR(step_size=5) or ReduceLROnPlateau after one epoch leave the rate
    as it was; NT3 uses no scheduler all the same."""

    def optimizer():
        return torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)

    class Trainer:
        def __init__(self, optimizer, scheduler=None):
            self.optimizer, self.scheduler = optimizer, scheduler and scheduler(optimizer)

    lr_scheduler = torch.optim.lr_scheduler
    assert scheduler_on(optimizer(), Trainer(optimizer())) is None
    step = Trainer(sgd := optimizer(), lambda o: lr_scheduler.StepLR(o, step_size=5))
    assert "StepLR" in scheduler_on(sgd, step)
    assert "scheduler" in scheduler_on(sgd)  # a local one: its "initial_lr"
    plateau = Trainer(sgd := optimizer(), lr_scheduler.ReduceLROnPlateau)
    assert "ReduceLROnPlateau" in scheduler_on(sgd, plateau)


def test_is_a_step_with_gradients_clipped_to_a_value_along_the_reference_s():
    """Blind round 19: clip_grad_value_ cuts each entry, which turns the step a little; a step
    of another gradient, or none, is still not along."""
    want = torch.tensor([0.5, -2.0, 0.1, 3.0])
    assert along(want.clamp(-1, 1), want)
    assert along(2 * want, want)
    assert not along(torch.tensor([0.5, -1.0, 0.3, 1.0]), want)
    assert not along(torch.zeros(4), want)
