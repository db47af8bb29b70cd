"""Do the family extensions `fnn_mnist` needs work, in-process: builder functions, fixed
keyword arguments, torch.nn classes as values and kinds judged as one check (modules); a trainer
class with its counting function, the loss per sample and the validation loss (loops); test
batches in the model's input shape, prepared by the notebook's own test transform (accuracy);
and does each variant of `fnn_mnist`, run
through the real observers and judges, lose exactly the checks it names?"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from grader.checks.families import accuracy
from grader.checks.families.modules import describe, torch_value
from grader.manifest import ManifestError, load_manifest
from grader.probe.context import ProbeContext
from solutions.fnn_mnist import notebook
from solutions.paths import ASSIGNMENTS_DIR, WEIGHTS_DIR
from tests.fixtures import toy
from tests.fixtures.variants import variants_of
from tests.fixtures.variants.mutations import reference_cells
from tests.grader.families.conftest import Harness

ID = "fnn_mnist"
VARIANTS = variants_of(ID)
ACCURACY = {"fnn_accuracy", "fnn_bn_accuracy"}  # judged on the test split: not in-process


@pytest.fixture(scope="module")
def fnn() -> Harness:
    return Harness.of(ID, seed=3)


def _setup_code() -> str:
    manifest = load_manifest(ID)
    return next(c.source for c in notebook.cells(manifest) if c.grade_id == "setup")


def namespace(**replaced: str) -> dict:
    """The notebook's set-up cell, then every solution cell in order (those in `replaced`
    rewritten), executed afresh: later cells see the replaced definitions."""
    ns: dict = {"__name__": "__main__"}
    cells = {**reference_cells(ID), **{k: textwrap.dedent(v) for k, v in replaced.items()}}
    for source in (_setup_code(), *cells.values()):
        exec(compile(source, "<cell>", "exec"), ns)  # noqa: S102 - test code
    return ns


def _lost(results: dict) -> set[str]:
    return {n for n, r in results.items() if r.points < r.max_points and n not in ACCURACY}


# ---------------------------------------------------------------- every variant, in-process


def test_does_the_reference_lose_nothing(fnn):
    results = fnn.grade(namespace())
    assert _lost(results) == set(), {
        n: r.message for n, r in results.items() if n in _lost(results)
    }


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_does_a_variant_lose_exactly_its_catches(fnn, name):
    variant = VARIANTS[name]
    results = fnn.grade(namespace(**variant.cells))
    lost = _lost(results)
    assert lost == set(variant.catches) - ACCURACY, {
        n: results[n].message for n in lost ^ (set(variant.catches) - ACCURACY)
    }


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


def test_is_a_builder_that_returns_no_module_told_so(fnn):
    code = """
        def dense_layer(in_features, out_features, activation=None, batch_norm=False):
            return torch.zeros(in_features, out_features)
    """
    results = fnn.grade(namespace(dense_layer=code), ["module:dense_layer"])
    assert "not an nn.Module" in results["dense_layer_shapes"].message


def test_is_a_shape_mistake_reported_before_behaviour_in_a_shared_check(fnn):
    # shape and behaviour name one check: a missing bias is told as a parameter problem.
    code = """
        def dense_layer(in_features, out_features, activation=None, batch_norm=False):
            layers = [nn.Linear(in_features, out_features, bias=False)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(out_features))
            if activation is not None:
                layers.append(activation())
            return nn.Sequential(*layers)
    """
    results = fnn.grade(namespace(dense_layer=code), ["module:dense_layer"])
    assert results["dense_layer_shapes"].points == 0
    assert "missing parameters" in results["dense_layer_shapes"].message


def test_is_the_last_activation_mistake_not_charged_twice(fnn):
    # dense_layer_last_activation builds on dense_layer_shapes (`after`).
    code = """
        def dense_layer(in_features, out_features, activation=None, batch_norm=False):
            return nn.Sequential(nn.Linear(out_features, in_features))
    """
    results = fnn.grade(namespace(dense_layer=code))
    assert results["dense_layer_shapes"].status == "fail"
    assert results["dense_layer_last_activation"].status == "skipped"


# ---------------------------------------------------------------- loops family extensions


def _trainer_edit(old: str, new: str) -> str:
    code = reference_cells(ID)["trainer"]
    assert code.count(old) == 1
    return code.replace(old, new)


def test_is_the_mean_of_batch_means_refused_per_sample(fnn):
    code = _trainer_edit(
        "train_loss += loss.item() * len(targets)", "train_loss += loss.item() * 8"
    )
    results = fnn.grade(namespace(trainer=code), ["loops"])
    assert results["trainer_loss"].status == "fail"
    assert "the last batch is shorter" in results["trainer_loss"].message


def test_is_the_validation_loss_judged_too(fnn):
    code = _trainer_edit(
        "return val_loss / seen, correct / seen", "return val_loss / len(self.val_loader), 1.0"
    )
    results = fnn.grade(namespace(trainer=code), ["loops"])
    assert results["trainer_loss"].status == "fail"
    assert "NetworkTrainer.validate returned" in results["trainer_loss"].message


def test_do_trainer_checks_count_with_the_family_s_own_function(fnn):
    # A counting function that is wrong everywhere: only its own check sees it.
    code = """
        def sum_correct_preds(outputs, targets):
            return 0
    """
    results = fnn.grade(namespace(sum_correct_preds=code), ["loops", "sum_correct_preds"])
    assert results["sum_correct_preds"].status == "fail"
    assert results["trainer_accuracy"].status == "pass"


def test_does_the_manifest_refuse_a_counter_keyword_without_a_trainer_class(tmp_path):
    text = toy.MANIFEST.read_text()  # epoch functions, no trainer class
    text = text.replace('loss = "logits"', 'loss = "logits"\ncounter_keyword = "count"', 1)
    (tmp_path / toy.MANIFEST.name).write_text(text)
    with pytest.raises(ManifestError, match="counter_keyword needs the network_trainer"):
        toy.manifest(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('function = "dense_layer"', 'function = "dense_layer"\nclass_name = "X"', "either"),
        ('"nn.Tanh", "nn.Sigmoid"]', '"nn.Tanh", "nn.Sigmoyd"]', "'nn.Sigmoyd' is not a class"),
        ('loss_mean = "per_sample"', 'loss_mean = "per_batch"', "loss_mean: Input should be"),
        ('train = "NetworkTrainer.train_epoch"', 'train = "train_epoch"', "'Class.method'"),
    ],
)
def test_does_the_manifest_refuse_malformed_new_keys(tmp_path, old, new, message):
    text = (ASSIGNMENTS_DIR / f"{ID}.toml").read_text()
    assert old in text
    (tmp_path / f"{ID}.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(ManifestError, match=message):
        load_manifest(ID, tmp_path)


# ---------------------------------------------------------------- accuracy family


def test_are_test_batches_fed_in_the_model_s_input_shape(tmp_path):
    """An FNN whose forward takes only vectors still gets predicted: the batches are reshaped
    to the manifest's input_shape (784,) before they reach it."""
    plain = load_manifest(ID)
    images = torch.randint(0, 256, (7, 1, 28, 28), dtype=torch.uint8)
    torch.save(images, tmp_path / "test_images.pt")
    forward = "return self.layers(torch.flatten(x, start_dim=1))  # (N, ...) -> (N, input_size)"
    code = reference_cells(ID)["fnn"].replace(forward, "return self.layers(x)")
    ctx = ProbeContext(
        ns=namespace(fnn=code),
        manifest=plain,
        weights_dir=Path(WEIGHTS_DIR / ID),
        test_images=tmp_path / "test_images.pt",
    )
    for key in ("fnn", "fnn_bn"):
        seen = accuracy.observer(key)(ctx)
        assert "error" not in seen[key], seen[key]
        assert tuple(seen[key]["logits_tensor"].shape) == (7, 10)


def test_are_test_images_prepared_with_the_notebook_s_own_test_transform(tmp_path):
    """The test images go through the transform of the notebook's test_loader (statistics of
    its own training images, here a stand-in's std of 0.25), not the manifest's MNIST figures;
    without a test_loader, the manifest's figures are used and the report says so."""
    plain = load_manifest(ID)
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    torch.save(images, tmp_path / "test_images.pt")
    ns = namespace()
    own, mnist = (0.13, 0.25), (plain.mean[0], plain.std[0])

    class Unlabelled(Dataset):  # what the notebook's test set is to the grader: a transform
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize(own[:1], own[1:]), ns["flatten"]]
        )

    def predicted(names: dict, key: str) -> dict:
        ctx = ProbeContext(
            ns={**ns, **names},
            manifest=plain,
            weights_dir=Path(WEIGHTS_DIR / ID),
            test_images=tmp_path / "test_images.pt",
        )
        return accuracy.observer(key)(ctx)[key]

    for key in ("fnn", "fnn_bn"):
        model = load_manifest(ID).model(key).build(ns)
        model.load_state_dict(torch.load(WEIGHTS_DIR / ID / f"{key}.pt", weights_only=True))
        model.eval()
        with torch.no_grad():
            pixels = images.float().flatten(1) / 255
            want = {stats: model((pixels - stats[0]) / stats[1]) for stats in (own, mnist)}
        seen = predicted({"test_loader": DataLoader(Unlabelled())}, key)
        assert seen["prepared"] == "test_loader's own transform"
        torch.testing.assert_close(seen["logits_tensor"], want[own], rtol=1e-4, atol=1e-4)
        seen = predicted({}, key)
        assert f"the manifest's mean {list(plain.mean)}" in seen["prepared"], seen["prepared"]
        assert "test_loader is not defined" in seen["prepared"]
        torch.testing.assert_close(seen["logits_tensor"], want[mnist], rtol=1e-4, atol=1e-4)
