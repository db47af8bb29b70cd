"""Do the loop and device families catch each generic mistake, and only it, in-process?"""

from __future__ import annotations

import pytest

from tests.fixtures.variants.mutations import LOOP_MUTATIONS, reference_cells

LOOPS = ["loops", "devices"]
MUTATED = {m.name: m for m in LOOP_MUTATIONS}


def _failing(results: dict) -> set[str]:
    return {name for name, r in results.items() if r.status in ("fail", "error")}


def test_does_the_reference_pass_every_loop_check(harness):
    results = harness.grade(harness.namespace(), LOOPS)
    assert _failing(results) == set(), {n: r.message for n, r in results.items()}


@pytest.mark.parametrize("name", sorted(MUTATED))
def test_does_each_generic_mistake_cost_exactly_its_checks(harness, name):
    mutation = MUTATED[name]
    code = mutation.apply(reference_cells("res_dense_nets")["loops"])
    results = harness.grade(harness.namespace(code), LOOPS)
    names = harness.manifest.loops.checks
    assert _failing(results) == {names[k] for k in mutation.catches}, {
        n: r.message for n, r in results.items() if r.status != "pass"
    }


ACCEPTED = {
    # The grader's training batches are equal in size: per image or per batch, the same mean.
    "mean of the batch means": (
        "total += loss.item() * len(labels)\n        count += len(labels)",
        "total += loss.item()\n        count += 1",
    ),
    "percent accuracy": ("return correct / count", "return 100.0 * correct / count"),
    "inference mode": ("with torch.no_grad():", "with torch.inference_mode():"),
}


@pytest.mark.parametrize("reading", sorted(ACCEPTED))
def test_are_other_reasonable_readings_accepted(harness, reading):
    old, new = ACCEPTED[reading]
    code = reference_cells("res_dense_nets")["loops"]
    assert old in code
    results = harness.grade(harness.namespace(code.replace(old, new, 1)), LOOPS)
    assert _failing(results) == set(), {n: r.message for n, r in results.items()}


WRONG = {
    "summed loss": ("return total / count", "return total", {"train_loss"}),
    "softmax before the loss": (
        "loss = loss_fn(model(images), labels)",
        "loss = loss_fn(torch.softmax(model(images), 1), labels)",
        {"train_loss"},  # zero_grad's trajectory differs too, but is not charged (after)
    ),
    "accuracy per batch averaged": (
        "correct += (model(images).argmax(dim=1) == labels).sum().item()\n"
        "            count += len(labels)",
        "correct += (model(images).argmax(dim=1) == labels).float().mean().item()\n"
        "            count += 1",
        {"evaluate_accuracy"},
    ),
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_are_value_mistakes_caught_by_their_check(harness, mistake):
    old, new, caught = WRONG[mistake]
    code = reference_cells("res_dense_nets")["loops"]
    assert old in code, old
    results = harness.grade(harness.namespace(code.replace(old, new, 1)), LOOPS)
    assert _failing(results) == caught, {n: r.message for n, r in results.items()}
