"""Do cnn_techniques' own checks, called in-process, catch what the variants do not grade?"""

from __future__ import annotations

import torch

from grader.checks.cnn_techniques import training
from grader.checks.cnn_techniques.counts import PytorchExampleNet
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext


def _setup(lr_used):
    def finetuning_setup(mnist_state, lr):
        model = PytorchExampleNet()
        model.load_state_dict(mnist_state)
        model.requires_grad_(False)
        model.fc2.requires_grad_(True)
        return model, torch.optim.Adadelta(model.fc2.parameters(), lr=lr_used(lr))

    return finetuning_setup


def test_does_finetune_optimizer_catch_a_learning_rate_ignored():
    """finetuning_setup(state, lr) with its optimiser's lr typed (1.0) instead of lr."""
    manifest = load_manifest("cnn_techniques")
    for lr in (0.1, 0.5):
        seen = {}
        for name, used in (("right", lambda lr: lr), ("typed", lambda lr: 1.0)):
            ns = {"Net": PytorchExampleNet, "finetuning_setup": _setup(used)}
            ctx = ProbeContext(ns=ns, manifest=manifest, settings={"lr": lr, "seed": 0})
            seen[name] = training.finetuning(ctx)["runs"][0]
        assert training.finetune_optimizer(seen["right"], seen["right"], ctx, 0) is None
        assert "learning rate" in training.finetune_optimizer(seen["typed"], seen["right"], ctx, 0)
