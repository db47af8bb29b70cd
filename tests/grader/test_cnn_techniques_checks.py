"""Do cnn_techniques' own checks, called in-process, catch what the variants do not grade?"""

from __future__ import annotations

import torch

from grader.checks.cnn_techniques import training
from grader.checks.cnn_techniques.counts import PytorchExampleNet
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext


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
