"""Do the grader's stand-ins for a GPU keep Colab code running and show what fails on one?"""

from __future__ import annotations

import pytest
import torch

from grader.checks.common import observe_on_cpu
from grader.checks.gpu import Resident, gpu_calls_on_cpu


def test_does_every_factory_naming_a_gpu_make_its_tensor_on_the_cpu():
    asked: list = []
    gpu = ("cuda", "cuda:0", torch.device("cuda"), 0)
    with gpu_calls_on_cpu(asked):
        made = [torch.zeros(2, device=d) for d in gpu]
        made += [torch.tensor([1.0], device="cuda"), torch.arange(3, device="cuda")]
        made += [torch.ones_like(made[0], device="cuda"), made[0].new_full((2,), 1.0, device=0)]
        kept = [torch.zeros(1, device="cpu"), torch.zeros(1, device="meta"), torch.zeros(1)]
    assert {t.device.type for t in made} == {"cpu"} and len(asked) == len(made), asked
    assert [t.device.type for t in kept] == ["cpu", "meta", "cpu"]
    assert torch.zeros(1, device="meta").device.type == "meta"  # the mode ends with the block


def test_does_a_generator_on_a_gpu_or_the_meta_probe_make_a_cpu_one():
    """torch.Generator(device=self.device) in a train_epoch (blind 15b, fnn v02), right on Colab
    and on a CPU, raised "META device type not an accelerator" under the devices probe and lost
    train_device; "cuda" raised for want of a driver. Both give a CPU generator now."""
    asked: list = []
    with gpu_calls_on_cpu(asked):
        made = [torch.Generator(device=d) for d in ("meta", torch.device("meta"), "cuda", 0)]
        made += [torch.Generator(), torch.Generator("cpu"), torch.Generator(device=None)]
        drawn = torch.randperm(4, generator=made[0], device="meta")
        inside = all(isinstance(g, torch.Generator) for g in [*made, torch.default_generator])
    assert {g.device.type for g in made} == {"cpu"} and asked == ["cuda", "0"], asked
    assert inside and drawn.device.type == "meta"
    with pytest.raises(RuntimeError, match="META"):  # the patch ends with the block
        torch.Generator(device="meta")


@pytest.mark.parametrize(
    "home",
    [
        lambda t: t.cpu(),
        lambda t: t.to("cpu"),
        lambda t: t.to(device=torch.device("cpu")),
        lambda t: t.to(torch.zeros(1)),
        lambda t: t.type(torch.LongTensor),
        lambda t: torch.as_tensor(t, device="cpu"),
    ],
)
def test_does_every_move_to_the_cpu_give_a_plain_tensor(home):
    """Round 14's open item: torch.as_tensor(predictions, device="cpu"), a move to the CPU on
    a GPU, was still taken for a GPU's tensor, and its .numpy() raised."""
    predicted = (torch.arange(6).as_subclass(Resident) * 2).argmax(dim=0, keepdim=True)
    assert type(predicted) is Resident
    with pytest.raises(TypeError, match="cuda"):
        predicted.numpy()
    with gpu_calls_on_cpu([]):  # as at grading
        assert home(predicted).numpy().tolist() == [5]
        assert type(torch.as_tensor(predicted, device="cuda")) is Resident


def test_is_a_deep_copy_of_a_gpu_output_still_a_gpu_tensor():
    """Blind round 15b: fc1_features whose forward hook kept `copy.deepcopy(output)` then
    returned `.cpu()` lost its points to torch's RuntimeError for a subclass without new_empty;
    on a GPU the copy is a GPU tensor, and moving it to the CPU is right."""
    import copy

    output = torch.arange(6.0).as_subclass(Resident) * 2
    copied = copy.deepcopy(output)
    assert type(copied) is Resident and copied is not output and torch.equal(copied, output)
    with pytest.raises(TypeError, match="cuda"):
        copied.numpy()
    assert copied.cpu().numpy().tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    with pytest.raises(RuntimeError, match="graph leaves"):  # as torch says of any tensor
        copy.deepcopy(torch.ones(2, requires_grad=True).as_subclass(Resident) * 2)


def test_is_a_gpu_made_the_default_device_the_cpu():
    """torch.set_default_device("cuda") in a graded function (blind 15b, fnn: not tried) raised
    "Found no NVIDIA driver" (torch asks torch.cuda for its current device): now the CPU, noted."""
    asked: list = []
    with gpu_calls_on_cpu(asked):
        torch.set_default_device("cuda")
        try:
            made = torch.zeros(2)
        finally:
            torch.set_default_device(None)
    assert made.device.type == "cpu" and asked == ["cuda"], asked
    assert torch.get_default_device().type == "cpu"


def _mode_on() -> bool:
    return torch._C._is_torch_function_mode_enabled()


def test_does_an_observer_that_asks_for_a_gpu_run_again_with_factories_on_the_cpu():
    """Observers run without the factories mode (every torch call through it cost 10-20% of the
    observers' time) and again with it, after the probe's restore, where torch was asked for a
    GPU: whether the error escapes or the notebook catches it."""
    runs, restored = [], []

    def escapes(ctx):
        runs.append(_mode_on())
        return torch.zeros(2, device="cuda").sum().item() + ctx

    def caught(ctx):
        try:
            return torch.arange(3, device=0).device.type
        except RuntimeError:
            return "raised"

    assert observe_on_cpu(escapes, 1.0, lambda: restored.append(True)) == 1.0
    assert runs == [False, True] and restored == [True]
    assert observe_on_cpu(caught, None) == "cpu"


def test_does_an_observer_that_names_no_gpu_factory_run_once_without_the_mode():
    runs = []

    def moved(ctx):  # .to("cuda") and .cuda() are patched methods: no second run for them
        runs.append(_mode_on())
        return torch.ones(2).to("cuda").cuda().device.type

    def wrong(ctx):
        runs.append(_mode_on())
        raise ValueError("the student's own")

    assert observe_on_cpu(moved, None) == "cpu"
    with pytest.raises(ValueError, match="own"):
        observe_on_cpu(wrong, None)
    assert runs == [False, False]
