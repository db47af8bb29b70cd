"""Device placement, checked on a CPU-only grader with the meta device.

The student's training and evaluation code is called with `torch.device("meta")`; a forward
pre-hook on the model records where its parameters and its first input are, then stops the run
(a meta tensor has no values to compute a loss from). Code that moves the model and every batch
to the device it is given shows ("meta", "meta"); code that forgets the batch shows
("meta", "cpu"), code that hard-codes "cuda" or ignores the argument shows "cpu" parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from grader.checks.common import device_probe
from grader.checks.families.loops import entry_points, loader, probe_model
from grader.spec import CheckSet, Verdict

OBSERVER = "devices"


def observe(ctx) -> dict:
    train, evaluate = entry_points(ctx)
    meta, seed = torch.device("meta"), int(ctx.settings["seed"])
    model = probe_model(ctx.manifest, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = loader(ctx.manifest, seed + 1, (4, 4))
    seen_train = device_probe(lambda m: train(m, data, optimizer, meta), model)
    model = probe_model(ctx.manifest, seed)
    seen_eval = device_probe(lambda m: evaluate(m, data, meta), model)
    return {"train": seen_train, "evaluate": seen_eval}


def draw(rng, manifest) -> dict:
    return {"seed": rng.randrange(2**31)}


def _verdict(seen: dict, fn: str) -> Verdict:
    if "input_device" not in seen:
        reason = seen.get("error", "it returned without calling the model")
        what = Verdict.error if "error" in seen else Verdict.wrong
        return what(f"{fn} never ran the model on the given device: {reason}")
    model_ok, batch_ok = seen["param_device"] == "meta", seen["input_device"] == "meta"
    if model_ok and batch_ok:
        return Verdict.ok(f"{fn} moves the model and the batches to the device it is given")
    missing = [what for what, ok in (("the model", model_ok), ("the batches", batch_ok)) if not ok]
    where = seen["param_device"] if not model_ok else seen["input_device"]
    return Verdict.wrong(
        f"{fn} was given a device but left {' and '.join(missing)} on {where}: use "
        "model.to(device) and images.to(device), labels.to(device) with the device argument"
    )


def register(checks: CheckSet, spec: Mapping[str, Any]) -> None:
    # Placement is a property of the student's code alone: nothing to compare with the reference.
    checks.add_observer(OBSERVER, observe, draw=draw, reference=False)
    train, evaluate = spec["train"], spec["evaluate"]
    for kind, fn, key in (
        ("train_device", train, "train"),
        ("evaluate_device", evaluate, "evaluate"),
    ):
        if kind in spec["checks"]:
            checks.add_check(
                spec["checks"][kind],
                OBSERVER,
                lambda seen, want, ctx, fn=fn, key=key: _verdict(seen[key], fn),
            )
