"""Does the `cnn_techniques` reference do what the sheet asks, and does its training run?"""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from grader.judge import load_expected
from grader.manifest import load_manifest
from solutions import notebook_builder
from solutions.cnn_techniques import config, notebook, reference, student
from solutions.data import (
    DATASETS,
    DataNotFoundError,
    torchvision_dataset,
)
from solutions.data.mnist import FIXTURE
from solutions.expected import sha256
from solutions.notebook_builder import student_chunks
from solutions.paths import WEIGHTS_DIR

ID = "cnn_techniques"
MANIFEST = load_manifest(ID)
FASHION = DATASETS["fashion_mnist"]
BLACK = (0.0 - FASHION.mean[0]) / FASHION.std[0]  # a black pixel, normalised
CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def _conv(c_in, c_out, k):
    return c_out * (c_in * k * k + 1)


def _linear(n_in, n_out):
    return n_out * (n_in + 1)


# ---------------------------------------------------------------- networks


def test_are_the_parameter_counts_read_from_the_model():
    # The sheet's layers: 3x3 conv 1->32, 3x3 conv 32->64, fc 64*12*12->128, fc 128->10.
    layers = {
        "conv1": _conv(1, 32, 3),
        "conv2": _conv(32, 64, 3),
        "fc1": _linear(64 * 12 * 12, 128),
        "fc2": _linear(128, 10),
    }
    assert student.parameter_counts(student.Net()) == {**layers, "total": sum(layers.values())}
    # Not typed: another network gets its own counts.
    other = student.parameter_counts(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)))
    assert other == {"0": 8, "2": 3, "total": 11}


@pytest.mark.parametrize("cls", [student.Net, student.BatchNormNet])
def test_do_the_networks_map_images_to_ten_logits(cls):
    torch.manual_seed(0)
    model = cls().eval()
    x = torch.randn(5, 1, 28, 28)
    out = model(x)
    assert out.shape == (5, 10)
    assert not torch.allclose(out.exp().sum(1), torch.ones(5)), "logits, not probabilities"
    assert torch.equal(out, model(x)), "evaluation mode is deterministic"
    assert {"conv1", "conv2", "fc1", "fc2"} <= dict(model.named_children()).keys()


def test_does_the_batch_norm_network_normalise_differently_in_training_and_evaluation():
    torch.manual_seed(0)
    model = student.BatchNormNet()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [m.num_features for m in norms] == [32, 64, 128]
    model.dropout1.p = model.dropout2.p = 0.0  # only batch norm differs between the modes
    x = torch.randn(8, 1, 28, 28) * 3 + 1
    train_out = model.train()(x)
    assert not torch.allclose(train_out, model.eval()(x))


# ---------------------------------------------------------------- augmentation


def _pil(seed: int) -> Image.Image:
    pixels = torch.randint(0, 256, (28, 28), generator=torch.Generator().manual_seed(seed))
    return Image.fromarray(pixels.to(torch.uint8).numpy())


def test_is_augmentation_in_the_training_transform_only():
    image = _pil(0)
    train, test = student.make_transforms(FASHION.mean, FASHION.std, augment=True)
    plain_train, plain_test = student.make_transforms(FASHION.mean, FASHION.std)
    torch.manual_seed(0)
    reference_tensor = plain_test(image)
    assert all(torch.equal(test(image), reference_tensor) for _ in range(10))
    assert all(torch.equal(plain_train(image), reference_tensor) for _ in range(10))
    draws = [train(image) for _ in range(30)]
    assert any(not torch.equal(d, reference_tensor) for d in draws)
    # Every augmented draw is the image, maybe flipped, shifted by at most the padding, with
    # black coming in at the border.
    candidates = [
        F.pad(source, (2,) * 4, value=BLACK)[:, y : y + 28, x : x + 28]
        for source in (reference_tensor, reference_tensor.flip(-1))
        for y in range(5)
        for x in range(5)
    ]
    for d in draws:
        assert any(torch.allclose(d, c, atol=1e-6) for c in candidates)


def test_does_the_tensor_augmentation_flip_and_crop_as_torchvision_does():
    torch.manual_seed(1)
    x = torch.randn(64, 1, 28, 28)
    out = reference.augmentation()(x)
    assert out.shape == x.shape
    flipped = shifted = 0
    for original, augmented in zip(x, out, strict=True):
        matches = []
        for source in (original, original.flip(-1)):
            padded = F.pad(source, (config.CROP_PADDING,) * 4, value=BLACK)
            span = 2 * config.CROP_PADDING + 1
            for y in range(span):
                for x0 in range(span):
                    if torch.equal(padded[:, y : y + 28, x0 : x0 + 28], augmented):
                        matches.append((source is not original, (y, x0)))
        assert matches, "every output is a flipped or unflipped, padded window of its input"
        flip, offset = matches[0]
        flipped += flip
        shifted += offset != (config.CROP_PADDING,) * 2
    assert 10 < flipped < 54 and shifted > 32  # p = 0.5 flips; most windows move


def test_does_the_reference_test_loader_see_no_augmentation(monkeypatch):
    seen = []
    real = student.fit

    def spy(model, optimizer, train_loader, test_loader, *args):
        seen.append((train_loader.transform, test_loader.transform))
        return real(model, optimizer, train_loader, test_loader, *args)

    monkeypatch.setattr(student, "fit", spy)
    splits = {"train": _tiny_split(32, 0), "test": _tiny_split(16, 1)}
    model = student.Net()
    optimizer, scheduler = config.RUNS["augmented"].make(model.parameters())
    transform = reference.augmentation()
    reference._fit("augmented", model, optimizer, scheduler, splits, "cpu", 0, True, transform)
    assert seen == [(transform, None)]


def _tiny_split(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


# ---------------------------------------------------------------- training


def test_does_fit_keep_the_weights_of_the_best_epoch(monkeypatch):
    """Scripted epochs: the test accuracy rises, falls, ties; each epoch sets a known weight."""
    accuracies = iter([0.5, 0.9, 0.7, 0.9])
    model = nn.Linear(1, 1)

    def train_epoch(model, loader, optimizer, device):
        with torch.no_grad():
            model.weight += 1.0  # epoch k leaves weight == initial + k
        return 1.0, 0.5

    def evaluate(model, loader, device):
        return 0.3, next(accuracies)

    monkeypatch.setattr(student, "train_epoch", train_epoch)
    monkeypatch.setattr(student, "evaluate", evaluate)
    start = float(model.weight.detach())
    history = student.fit(model, None, [], [], 4, "cpu")
    assert history["best_epoch"] == 2 and history["best_accuracy"] == 0.9  # the earlier tie
    assert history["test_accuracy"] == [0.5, 0.9, 0.7, 0.9]
    assert all(len(history[k]) == 4 for k in ("train_loss", "train_accuracy", "test_loss"))
    assert float(model.weight.detach()) == pytest.approx(start + 2)


def test_do_the_epoch_functions_return_mean_loss_and_accuracy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    batches = [_tiny_split(8, 0), _tiny_split(5, 1)]  # a short last batch
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        want_loss = float(F.cross_entropy(model(x), y))
        want_acc = float((model(x).argmax(1) == y).float().mean())
    loss, acc = student.evaluate(model, batches, "cpu")
    assert loss == pytest.approx(want_loss, rel=1e-5) and acc == pytest.approx(want_acc)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss, acc = student.train_epoch(model, batches, optimizer, "cpu")
    assert loss == pytest.approx(want_loss, rel=1e-5) and acc == pytest.approx(want_acc)


def test_are_the_notebook_s_default_settings_the_reference_s():
    defaults = inspect.signature(student.activation_maximisation).parameters
    assert (defaults["steps"].default, defaults["lr"].default, defaults["decay"].default) == (
        config.DREAM_STEPS,
        config.DREAM_LR,
        config.DREAM_DECAY,
    )


def test_does_the_notebook_hyperparameter_code_build_the_reference_optimiser():
    for key, cfg in config.RUNS.items():
        model = student.Net()
        scope = {"torch": torch, "model": model}
        exec(cfg.code("model.parameters()"), scope)  # the text the notebook shows students
        optimizer, scheduler = cfg.make(model.parameters())
        assert type(scope["optimizer"]) is type(optimizer), key
        assert scope["optimizer"].defaults == optimizer.defaults
        assert (scope["scheduler"].step_size, scope["scheduler"].gamma) == (1, cfg.gamma)
        assert scheduler.gamma == cfg.gamma


# ---------------------------------------------------------------- fine-tuning


def test_does_finetuning_train_fc2_only_from_the_mnist_weights():
    torch.manual_seed(0)
    state = student.Net().state_dict()
    model, optimizer = student.finetuning_setup(state, 1.0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc2.weight", "fc2.bias"}
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert {id(p) for p in held} == {id(model.fc2.weight), id(model.fc2.bias)} and len(held) == 2
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    student.train_epoch(model, [_tiny_split(16, 0)], optimizer, "cpu")
    after = model.state_dict()
    for name, value in state.items():
        assert torch.equal(after[name], value) == (not name.startswith("fc2")), name


# ---------------------------------------------------------------- looking inside


def test_are_the_fc1_features_the_layer_s_output_in_loader_order():
    torch.manual_seed(0)
    model = student.Net()
    batches = [_tiny_split(6, 0), _tiny_split(4, 1)]
    features, labels = student.fc1_features(model, batches, "cpu")
    x = torch.cat([b[0] for b in batches])
    with torch.no_grad():
        flat = torch.flatten(F.max_pool2d(F.relu(model.conv2(F.relu(model.conv1(x)))), 2), 1)
        assert torch.allclose(features, model.fc1(flat), atol=1e-5)
    assert features.shape == (10, 128) and torch.equal(labels, torch.cat([b[1] for b in batches]))
    assert not model.training and not model.fc1._forward_hooks, "eval mode, hook removed"


def test_does_activation_maximisation_climb_from_a_black_image():
    torch.manual_seed(0)
    model = student.Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first_inputs = []
    model.register_forward_pre_hook(lambda m, args: first_inputs.append(args[0].clone()))
    # No brightness penalty: every step of an untrained network's ascent raises the logit.
    image, scores = student.activation_maximisation(
        model, 9, FASHION.mean[0], FASHION.std[0], steps=30, decay=0.0
    )
    start = first_inputs[0]
    assert torch.allclose(start, torch.full_like(start, BLACK)), "starts from an empty image"
    assert image.shape == (1, 1, 28, 28) and 0.0 <= image.min() and image.max() <= 1.0
    rises = sum(b > a for a, b in zip(scores, scores[1:], strict=False))
    assert len(scores) == 31 and rises >= 27, "gradient ascent on the logit"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_are_the_confusion_matrix_rows_the_true_classes():
    class Shift(nn.Module):
        """Predicts label + 1 (mod 10) for an image filled with its label."""

        def forward(self, x):
            return F.one_hot((x[:, 0, 0, 0].long() + 1) % 10, 10).float()

    labels = torch.tensor([0, 0, 0, 3, 3, 9])
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 1, 28, 28)
    matrix = student.confusion(Shift(), [(images, labels)], "cpu")
    assert matrix.shape == (10, 10)
    assert matrix[0, 1] == 3 and matrix[3, 4] == 2 and matrix[9, 0] == 1
    assert matrix.sum(axis=1).tolist() == torch.bincount(labels, minlength=10).tolist()


# ---------------------------------------------------------------- the notebook


def test_does_the_notebook_hold_every_solution_cell_and_an_answer_to_every_question():
    cells = notebook.cells(MANIFEST)
    notebook_builder.build(cells)  # valid nbformat, unique ids
    by_id = {c.grade_id: c for c in cells if c.grade_id}
    for cell_id, code in student_chunks(notebook.STUDENT).items():
        assert by_id[cell_id].solution and by_id[cell_id].source == code
    assert {c for c in MANIFEST.cells()} <= {c.grade_id for c in cells if c.grade}
    for index, cell in enumerate(cells):
        if cell.kind == "markdown" and "**Question" in cell.source:
            assert cells[index + 1].cell_id and cells[index + 1].cell_id.startswith("answer_")
    text = " ".join(" ".join(c.source for c in cells).split())  # one line: words as read
    for model in MANIFEST.models:
        assert model.weights in text
    assert f"**first {config.TSNE_IMAGES:,} training images**" in text
    assert "lower it" in text  # the sheet's learning-rate hint


# ---------------------------------------------------------------- data and results


def test_without_mnist_does_the_pretraining_fall_back_to_the_generated_fixture(
    tmp_path, monkeypatch
):
    def no_mnist(data_root=None):
        raise DataNotFoundError("data set 'mnist' not found")

    monkeypatch.setattr(reference, "find_mnist", no_mnist)
    monkeypatch.setattr(reference, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(reference, "FIXTURE_SIZES", {"mnist": (30, 10)})  # small and quick
    source = reference.mnist_source(None)
    assert source.root == tmp_path / "fixtures" and not source.real
    assert source.description == FIXTURE
    train = torchvision_dataset("mnist", True, root=source.root)
    assert len(train) == 30


def test_does_the_committed_expected_file_say_where_it_came_from_and_reach_the_targets():
    """A full run reaches the issue's targets and measures its thresholds; a shorter one (a
    machine too slow for the full run) says so in every entry and takes the manifest's."""
    expected = load_expected(ID)
    for key in ("command", "commit", "device", "torch", "seed", "epochs", "wall_time_s", "mnist"):
        assert key in expected["provenance"], key
    assert expected["provenance"]["dirty"] is False
    full = not expected["quick"] and set(expected["provenance"]["epochs"].values()) == {
        config.EPOCHS
    }
    real_mnist = expected["provenance"]["mnist"] == "real MNIST"
    accuracy = expected["accuracy"]
    assert set(accuracy) == {m.key for m in MANIFEST.models}
    if full:
        assert accuracy["baseline"]["test_accuracy"] >= 0.915  # the targets
        assert accuracy["batchnorm"]["test_accuracy"] >= 0.925
    for spec in MANIFEST.models:
        entry = accuracy[spec.key]
        assert entry["epochs"] == expected["provenance"]["epochs"][spec.key]
        measured = full and (real_mnist or spec.key not in reference.PRETRAINED)
        assert entry.get("measured", True) is measured
        if measured:
            assert entry["threshold"] == spec.measured_threshold(entry["test_accuracy"])
            assert entry["test_accuracy"] == max(entry["test_accuracy_per_epoch"])
        else:
            assert entry["test_accuracy"] is None and entry["reason"]
            assert entry["threshold"] == spec.threshold and entry["threshold_source"]
            assert full or f"of the sheet's {config.EPOCHS} epochs" in entry["reason"]


def test_do_the_committed_weights_and_curves_match_the_expected_file():
    expected = load_expected(ID)
    folder = WEIGHTS_DIR / ID
    assert set(expected["weights"]) == {m.weights for m in MANIFEST.models} | set(MANIFEST.files)
    for name, entry in expected["weights"].items():
        assert sha256(folder / name) == entry["sha256"], name
    for spec in MANIFEST.models:
        assert (folder / spec.weights).stat().st_size < 5_000_000
        spec.build(student).load_state_dict(torch.load(folder / spec.weights, weights_only=True))
    histories = json.loads((folder / reference.HISTORIES_FILE).read_text())
    for key, history in histories.items():
        entry = expected["accuracy"][key]
        assert all(len(history[k]) == entry["epochs"] for k in CURVES), key
        assert history["best_accuracy"] == max(history["test_accuracy"])
        assert entry["best_epoch"] == history["best_epoch"]
        assert entry["test_accuracy_per_epoch"] == [round(a, 4) for a in history["test_accuracy"]]
