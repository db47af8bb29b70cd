"""Device placement, checked on a CPU-only grader with the meta device.

The student's training and evaluation code is called with `torch.device("meta")`; a forward
pre-hook on the model records where its parameters and its first input are. Code that moves the
model and every batch to the device it is given shows ("meta", "meta") and runs on until it asks
for a value (a meta tensor has none), where labels left on the CPU make torch raise as it would
on a GPU; code that forgets the batch shows ("meta", "cpu"), code that hard-codes "cuda" or
ignores the argument shows "cpu" parameters (both stopped at that first forward).
What a function hands back from a model (predictions for scikit-learn, features) is checked
with `gpu.Resident` outputs instead, tensors that stand for a GPU's: `.numpy()` without
`.cpu()` raises there as on Colab.
"""

from __future__ import annotations

import contextlib
from functools import partial

import torch

from grader.checks import kit
from grader.checks.common import device_probe
from grader.checks.families.loop_models import loader, probe_model
from grader.checks.families.loops import entry_points
from grader.checks.gpu import accelerator_calls_idle, gpu_calls_on_cpu
from grader.spec import CheckSet, Verdict

NAME = "devices"
# One observer per function (as in the loops family): one that hangs costs only its own check.
OBSERVERS = {"train": "devices", "evaluate": "devices_evaluate"}


def observe(ctx, key: str) -> dict:
    """{key: where the [loops] function `key` ("train" or "evaluate") put the model and batch}."""
    train, evaluate = entry_points(ctx, key)
    meta, seed = torch.device("meta"), int(ctx.settings["seed"])
    model = probe_model(ctx.manifest, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = loader(ctx.manifest, seed + 1, (4, 4))
    run = (lambda m: train(m, data, optimizer, meta)) if key == "train" else None
    run = run or (lambda m: evaluate(m, data, meta))
    moved, first = [], []  # tensors copied to meta by Tensor.to; the model's first input
    asked = []  # .cuda() or "cuda" written in, run on the CPU
    handle = model.register_forward_pre_hook(lambda _, args: first.extend(args[:1]))
    try:
        with gpu_calls_on_cpu(asked), _moves_recorded(moved), accelerator_calls_idle():
            seen = device_probe(run, model)
    finally:
        handle.remove()
    seen["cuda_asked"] = bool(asked)
    seen["copy_dropped"] = bool(first) and any(t is first[0] for t in moved)
    return {key: seen}


@contextlib.contextmanager
def _moves_recorded(moved: list):
    """The tensors that Tensor.to copies onto the meta device while the block runs, appended to
    `moved` (kept alive, so that `is` tells them apart)."""
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if isinstance(out, torch.Tensor) and out.device.type == "meta" and out is not self:
            moved.append(self)
        return out

    torch.Tensor.to = to
    try:
        yield
    finally:
        torch.Tensor.to = original


def draw(rng, manifest) -> dict:
    return {"seed": kit.seed(rng)}


def _verdict(seen: dict, fn: str) -> Verdict:
    if "input_device" not in seen:
        reason = seen.get("error", "it returned without calling the model")
        if "meta" in reason:  # blind round 15b (mlp v04): a device type refused, "meta" unknown
            reason += ' (the grader passes torch.device("meta"), a stand-in for a GPU it lacks)'
        what = Verdict.error if "error" in seen else Verdict.wrong
        return what(f"{fn} never ran the model on the given device: {reason}")
    model_ok, batch_ok = seen["param_device"] == "meta", seen["input_device"] == "meta"
    if model_ok and batch_ok and "mixed" in seen:
        return Verdict.wrong(
            f"{fn} moves the model and the images to the device it is given, but then uses the "
            f"model's outputs with a tensor left on the CPU ({seen['mixed']}; on a GPU this "
            "line fails): move the labels too, labels.to(device)"
        )
    if model_ok and batch_ok and seen.get("cuda_asked"):  # torch.zeros(..., device="cuda")
        return Verdict.wrong(
            f"{fn} moves the model and the batches to the device it is given, but also puts a "
            "tensor on the GPU itself ('cuda' written in, e.g. torch.zeros(1, device='cuda')): "
            'where the notebook passes "cpu", or on a machine without a GPU, that line fails; '
            "use the device it is given (device=device), or a Python number"
        )
    if model_ok and batch_ok:
        return Verdict.ok(f"{fn} moves the model and the batches to the device it is given")
    missing = [what for what, ok in (("the model", model_ok), ("the batches", batch_ok)) if not ok]
    where = seen["param_device"] if not model_ok else seen["input_device"]
    if seen.get("cuda_asked"):  # run on the CPU by torch_defaults, where a GPU was named
        return Verdict.wrong(
            f"{fn} was given a device but left {' and '.join(missing)} on {where}: it moves "
            "to the GPU itself (.cuda() or 'cuda' written in), not to the device it is given; "
            "use model.to(device), images.to(device), labels.to(device) with its argument (the "
            "notebook passes \"cpu\" in places, and a machine without a GPU has no 'cuda')"
        )
    if not batch_ok and seen.get("copy_dropped"):  # `images.to(device)` as a statement
        return Verdict.wrong(
            f"{fn} was given a device but left {' and '.join(missing)} on {where}: it calls "
            ".to(device) on the batch but drops what that returns; a tensor's .to(device) "
            "returns a moved copy and leaves the tensor where it was (a module's moves the "
            "module itself): assign it, images = images.to(device), labels = labels.to(device)"
        )
    return Verdict.wrong(
        f"{fn} was given a device but left {' and '.join(missing)} on {where}: use "
        "model.to(device) and images.to(device), labels.to(device) with the device it is given "
        "(its argument, or self.device as it was given: not a global such as the notebook's "
        "`device`, nor one chosen again with torch.cuda.is_available(), which on a machine "
        "without a GPU is the CPU whatever device it is given)"
    )


def source_problem(manifest, parts: list[str]) -> str | None:
    """What is wrong with a check source "devices.train" or "devices.evaluate", if anything."""
    if manifest.loops is None:
        return "the manifest has no [loops] section naming the functions"
    if parts not in (["train"], ["evaluate"]):
        return "write it as devices.train or devices.evaluate"
    return None


def register(checks: CheckSet, manifest) -> None:
    """The devices observer and the checks whose source is "devices.<train|evaluate>"."""
    sourced = manifest.sourced(NAME)
    if not sourced:
        return
    for check in sourced:
        key = check.source.split(".")[1]
        fn, name = getattr(manifest.loops, key), OBSERVERS[key]
        if name not in checks.observers:  # placement: nothing to compare with the reference
            checks.add_observer(name, partial(observe, key=key), draw=draw, reference=False)
        checks.add_check(
            check.name, name, lambda seen, want, ctx, fn=fn, key=key: _verdict(seen[key], fn)
        )
