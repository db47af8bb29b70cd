"""Do the family extensions `fnn_mnist` needs work, in-process: builder functions, torch.nn
classes as values and kinds judged as one check (modules); the validation loss of a trainer
class (loops); test batches in the model's input shape, prepared by the notebook's own test
transform (accuracy)? Each variant's verdicts: tests/grader/test_variants.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from grader.checks.families import accuracy
from grader.checks.families.modules import describe, torch_value
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext
from solutions.fnn_mnist import notebook
from solutions.paths import WEIGHTS_DIR
from tests.fixtures.variants.mutations import reference_cells
from tests.grader.families.conftest import Harness

ID = "fnn_mnist"
MANIFEST = load_manifest(ID)


@pytest.fixture(scope="module")
def fnn() -> Harness:
    return Harness.of(ID, seed=3)


def _setup_code() -> str:
    return next(c.source for c in notebook.cells(MANIFEST) if c.grade_id == "setup")


def namespace(**replaced: str) -> dict:
    """The notebook's set-up cell, then every solution cell in order (those in `replaced`
    rewritten), executed afresh: later cells see the replaced definitions."""
    ns: dict = {"__name__": "__main__"}
    cells = {**reference_cells(ID), **{k: textwrap.dedent(v) for k, v in replaced.items()}}
    for source in (_setup_code(), *cells.values()):
        exec(compile(source, "<cell>", "exec"), ns)  # noqa: S102 - test code
    return ns


# ---------------------------------------------------------------- modules family extensions


def test_are_settings_only_entries_no_observers(fnn):
    assert "module:fnn" not in fnn.checkset.observers
    assert "module:deep_fnn" not in fnn.checkset.observers
    assert {"fnn_structure", "deep_fnn_structure"} <= set(fnn.checkset.observers)


def test_are_torch_nn_names_the_classes_and_described_by_name(fnn):
    assert torch_value("nn.Tanh") is torch.nn.Tanh and torch_value("nnet") == "nnet"
    spec = fnn.manifest.module("dense_layer_batchnorm")
    text = describe(spec, [20, 7, "nn.ReLU", True], fnn.manifest)
    assert text == (
        "dense_layer(in_features=20, out_features=7, activation=nn.ReLU, batch_norm=True) "
        "on 20 inputs"
    )


DENSE = reference_cells(ID)["dense_layer"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("nn.Sequential(*layers)", "torch.zeros(in_features, out_features)", "not an nn.Module"),
        # shape and behaviour are one check: a missing bias is told as a parameter problem.
        ("bias=not batch_norm", "bias=False", "missing parameters"),
    ],
)
def test_is_a_dense_layer_mistake_told_by_what_it_gets_wrong_first(fnn, old, new, message):
    assert DENSE.count(old) == 1
    results = fnn.grade(namespace(dense_layer=DENSE.replace(old, new)), ["module:dense_layer"])
    assert results["dense_layer_shapes"].points == 0
    assert message in results["dense_layer_shapes"].message


# ---------------------------------------------------------------- loops family extensions


def test_is_the_validation_loss_judged_too(fnn):
    code = reference_cells(ID)["trainer"].replace(
        "val_loss / seen,", "val_loss / len(self.val_loader),"
    )
    results = fnn.grade(namespace(trainer=code), ["loops"])
    assert results["trainer_loss"].status == "fail"
    assert "NetworkTrainer.validate returned" in results["trainer_loss"].message


# ---------------------------------------------------------------- accuracy family


def _observed(folder: Path, ns: dict) -> dict:
    """The accuracy family's observations of the committed weights on 6 random test images."""
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    torch.save(images, folder / "test_images.pt")
    ctx = ProbeContext(
        ns=ns,
        manifest=MANIFEST,
        weights_dir=WEIGHTS_DIR / ID,
        test_images=folder / "test_images.pt",
    )
    return {"images": images, **accuracy.observe(ctx)}


def test_are_test_batches_fed_in_the_model_s_input_shape(tmp_path):
    """An FNN whose forward takes only vectors still gets predicted: the batches are reshaped
    to the manifest's input_shape (784,) before they reach it."""
    code = reference_cells(ID)["fnn"].replace("torch.flatten(x, start_dim=1)", "x")
    seen = _observed(tmp_path, namespace(fnn=code))
    for key in ("fnn", "fnn_bn"):
        assert "error" not in seen[key], seen[key]
        assert tuple(seen[key]["logits_tensor"].shape) == (6, 10)


def test_are_test_images_prepared_with_the_notebook_s_own_test_transform(tmp_path):
    """The test images go through the transform of the notebook's test_loader (statistics of
    its own training images, here a stand-in's std of 0.25), not the manifest's MNIST figures;
    without a test_loader, the manifest's figures are used and the report says so."""
    ns = namespace()
    own, mnist = (0.13, 0.25), (MANIFEST.mean[0], MANIFEST.std[0])

    class Unlabelled(Dataset):  # what the notebook's test set is to the grader: a transform
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize(own[:1], own[1:]), ns["flatten"]]
        )

    with_loader = _observed(tmp_path, {**ns, "test_loader": DataLoader(Unlabelled())})
    without = _observed(tmp_path, ns)
    assert "test_loader is not defined" in without["fnn"]["prepared"]
    assert f"the manifest's mean {list(MANIFEST.mean)}" in without["fnn"]["prepared"]
    for key in ("fnn", "fnn_bn"):
        model = MANIFEST.model(key).build(ns)
        model.load_state_dict(torch.load(WEIGHTS_DIR / ID / f"{key}.pt", weights_only=True))
        assert with_loader[key]["prepared"] == "test_loader's own transform"
        for seen, (mean, std) in ((with_loader, own), (without, mnist)):
            pixels = seen["images"].float().flatten(1) / 255
            with torch.no_grad():
                want = model.eval()((pixels - mean) / std)
            torch.testing.assert_close(seen[key]["logits_tensor"], want, rtol=1e-4, atol=1e-4)
