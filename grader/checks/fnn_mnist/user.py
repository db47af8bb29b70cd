"""The NetworkUser: the save -> load round trip of a network of the grader's (predict's labels
(N,) on a batch of one too), and the mode and gradient state predict runs in."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from grader.checks import kit
from grader.checks.common import inputs, saved_state, tensor_record
from grader.checks.families.loop_models import classifier
from grader.spec import Definitions

OWN = Definitions()


def _user_model(features: int, hidden: int, seed: int) -> nn.Module:
    model = nn.Sequential(*classifier(features, 5, seed, hidden, batch_norm=True))
    with torch.no_grad():  # running statistics away from their start: they must travel too
        model.train()(torch.randn(64, features) * 3 + 1)
    return model


@OWN.observer(draw=kit.draws({"hidden": (3, 12)}))
def save_load_roundtrip(ctx) -> dict:
    """Save a network of the grader's with NetworkUser, load the file into a fresh one, predict;
    then predict with a network whose predictions show the mode and the gradient state (inputs
    (N, 784), as the instructions say: a predict may reshape to them)."""
    user_class, s = ctx.get("NetworkUser"), ctx.settings
    seed, features, hidden = int(s["seed"]), 784, int(s["hidden"])
    x = inputs(16, features, seed=seed)

    def roundtrip(path: Path) -> dict:
        user_class(_user_model(features, hidden, seed)).save(path)
        saved, fresh = saved_state(path), user_class(_user_model(features, hidden, seed + 1))
        fresh.load(path)
        return {"saved": saved, **tensor_record(fresh.predict(x), "labels")}

    def modes(path: Path) -> dict:
        # Predicts MODE_CLASS in train mode, GRAD_CLASS with gradients (loop_models.Marks).
        marked = nn.Sequential(*classifier(features, 5, seed + 2, hidden, marks=True)).train()
        labels = tensor_record((user := user_class(marked)).predict(x), "labels")
        return {"one": str(tuple(getattr(user.predict(x[:1]), "shape", ()))), **labels}  # (1,)

    with tempfile.TemporaryDirectory(prefix="dlgrade-user-") as folder:
        path = Path(folder) / "weights.pt"
        return {"runs": kit.per_setting([roundtrip, modes], seed, lambda i, run: run(path))}


ROUND_TRIP = ["save -> load into a fresh network -> predict", "predict, model in training mode"]


@kit.judged(OWN, save_load_roundtrip, "runs", ROUND_TRIP, name="save_load_roundtrip")
def _round_tripped(entry, want, ctx, i) -> str | None:
    if i == 0 and entry.get("saved") != want["saved"]:
        return (
            f"the saved file holds {str(entry.get('saved'))[:120]}, expected the model's "
            "state_dict (torch.save(model.state_dict(), path))"
        )
    if entry.get("labels") != want["labels"]:
        return f"predict returned {entry.get('labels')}, expected {want['labels']}"
    if torch.equal(entry["labels_tensor"], want["labels_tensor"]):
        if (one := entry.get("one")) == want.get("one"):
            return None
        return f"on one input (1, 784) predict returned shape {one}, expected (1,): no squeeze()"
    if i == 1:
        return (
            "its labels are not those of evaluation mode without gradients: predict must call "
            "self.model.eval() and compute under torch.no_grad()"
        )
    return (
        "after load, the fresh network predicts other labels than the saved one: load must put "
        "every saved parameter and buffer into the model (load_state_dict), predict must run "
        "in eval mode"
    )
