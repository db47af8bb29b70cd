"""Do the devices checks alone charge a GPU written into the loops (the grader has none)?"""

from __future__ import annotations

import pytest

from tests.fixtures import toy

LOOPS = ["loops", "loops_evaluate", "devices", "devices_evaluate"]


def _failing(results: dict) -> set[str]:
    return {name for name, r in results.items() if r.status in ("fail", "error")}


@pytest.mark.parametrize("gpu", ["images.cuda(), labels.cuda()", "images.to('cuda'), labels.to(0)"])
def test_is_a_gpu_written_in_charged_to_the_device_check_alone(harness, gpu):
    """`model.cuda()` and `images.cuda()` in the trainer, a Colab habit that runs there (blind 14,
    cifar g1): on the grader (no GPU) every train check raised "Found no NVIDIA driver" (4
    points). The code runs on the CPU; train_device alone says the device argument is ignored."""
    code = toy.cells()["loops"].replace("model.to(device)", "model.cuda()", 1)
    code = code.replace("images.to(device), labels.to(device)", gpu, 1)
    results = harness.grade(harness.namespace(code), LOOPS)
    assert _failing(results) == {"train_device"}, {n: r.message for n, r in results.items()}
    assert "moves to the GPU itself" in results["train_device"].message


def test_is_a_gpu_accumulator_charged_to_the_device_check_alone(harness):
    """`correct = torch.zeros(1, device="cuda")` in evaluate, a Colab habit that runs there: on
    the grader (no GPU) every evaluate check raised "Found no NVIDIA driver". The factory makes
    its tensor on the CPU; evaluate_device alone charges the hard-coded GPU."""
    code = toy.cells()["loops"].replace(
        "correct, count = 0, 0", 'correct, count = torch.zeros((), device="cuda"), 0'
    )
    code = code.replace("return correct / count", "return (correct / count).item()")
    assert 'device="cuda"' in code and ".item()" in code
    results = harness.grade(harness.namespace(code), LOOPS)
    assert _failing(results) == {"evaluate_device"}, {n: r.message for n, r in results.items()}
    assert "device='cuda'" in results["evaluate_device"].message


def test_are_sums_made_on_the_device_made_the_default_right(harness):
    """Blind round 15b, cnn v15: evaluate's sums made where `with torch.device(device):` puts
    them, right on a GPU, lost evaluate_device: torch's DataLoader drew its seed on the probe's
    meta device (".item() cannot be called on meta tensors") before the first batch."""
    code = toy.cells()["loops"].replace(
        "    with torch.no_grad():\n        for images",
        "    with torch.device(device), torch.no_grad():\n        correct = torch.zeros(())\n"
        "        for images",
        1,
    )
    code = code.replace("return correct / count", "return (correct / count).item()")
    assert "with torch.device(device)" in code and ".item()" in code
    results = harness.grade(harness.namespace(code), LOOPS)
    assert not _failing(results), {n: r.message for n, r in results.items()}


def test_is_the_meta_device_named_where_a_loop_refuses_it(harness):
    """Blind round 15b (mlp_tuning v04): a train_epoch that raises for a device type other than
    cpu, cuda or mps lost train_device with "device meta is not supported", a device the
    notebook never mentions: the message says the grader passes it, standing in for a GPU."""
    code = toy.cells()["loops"].replace(
        "    model.to(device)\n    model.train()",
        "    if torch.device(device).type not in ('cpu', 'cuda', 'mps'):\n"
        "        raise NotImplementedError(f'device {device} is not supported')\n"
        "    model.to(device)\n    model.train()",
        1,
    )
    assert "mps" in code
    results = harness.grade(harness.namespace(code), LOOPS)
    assert _failing(results) == {"train_device"}, {n: r.message for n, r in results.items()}
    assert 'passes torch.device("meta"), a stand-in' in results["train_device"].message
