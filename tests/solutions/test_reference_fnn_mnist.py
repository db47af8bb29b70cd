"""What of the `fnn_mnist` reference no grading checks: the sheet's arithmetic and claims, the
reference training's split, data and settings, and the committed results. (The reference cells
score full marks on every check: tests/grader/test_variants.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torchvision import datasets, transforms

from grader.judge import load_expected
from grader.manifest import load_manifest
from solutions.data import write_mnist_like
from solutions.data.mnist import FIXTURE, MnistSource
from solutions.fnn_mnist import config, reference, student
from solutions.fnn_mnist.student import FNN, DeepFNN, NetworkUser, init_weights, mean_std

matplotlib.use("Agg")

ID = "fnn_mnist"
MANIFEST = load_manifest(ID)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> Path:
    """A small MNIST-format fixture (torchvision's layout)."""
    return write_mnist_like(tmp_path_factory.mktemp("mnist"), "mnist", n_train=600, n_test=200)


def test_are_the_answers_the_parameter_counts_of_the_submitted_fnns():
    width = student.HIDDEN_SIZE
    linears = 784 * width + width * width + width * 10  # weights of 784 -> w -> w -> 10
    assert student.answers() == {
        "image_size": [28, 28],
        "vector_length": 784,
        "fnn_parameters": linears + 2 * width + 10,  # every linear layer has a bias
        "fnn_batchnorm_parameters": linears + 2 * 2 * width + 10,  # hidden: BN scale and shift
        "batchnorm_added_parameters": 2 * 2 * width,
        "bias_saved_parameters": 2 * width,
    }
    # One width everywhere: the questions, the notebook's training and the submitted models.
    assert all(spec.args == (784, width, 10) for spec in MANIFEST.models)


def test_does_deep_fnn_with_two_equal_hidden_layers_compute_what_fnn_computes():
    torch.manual_seed(0)
    for batch_norm in (False, True):
        fnn = FNN(20, 7, 3, batch_norm=batch_norm)
        deep = DeepFNN(20, [7, 7], 3, batch_norm=batch_norm)
        deep.load_state_dict(fnn.state_dict())
        x = torch.randn(8, 20)
        torch.testing.assert_close(deep(x), fnn(x))  # training mode
        torch.testing.assert_close(deep.eval()(x), fnn.eval()(x))


def test_does_init_weights_draw_within_the_kaiming_and_bias_bounds_and_reset_batch_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), FNN(48, 8, 2, batch_norm=True))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(5.0)  # outside every bound: a layer left alone shows
    init_weights(net)
    for m in net.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            fan_in = m.weight[0].numel()
            assert m.weight.abs().max() <= math.sqrt(6 / fan_in)  # Kaiming-uniform for ReLU
            assert m.bias is None or m.bias.abs().max() <= 1 / math.sqrt(fan_in)
        elif isinstance(m, nn.BatchNorm1d):
            assert torch.equal(m.weight, torch.ones(8)) and torch.equal(m.bias, torch.zeros(8))


def test_do_the_loaders_split_shuffle_and_standardise_as_the_reference_trains(mnist_root):
    n_val = config.validation_size(600)
    train, val, test = student.make_loaders(mnist_root, batch_size=50, validation_size=n_val)
    train_idx, val_idx = reference.split_indices(600, seed=0)  # the reference's split
    assert (train.dataset.indices, val.dataset.indices) == (train_idx.tolist(), val_idx.tolist())
    assert isinstance(train.sampler, RandomSampler)  # only the training loader shuffles
    assert not any(isinstance(loader.sampler, RandomSampler) for loader in (val, test))
    # Statistics of the training part only: its standardised pixels have mean 0 and sd 1.
    pixels = torch.cat([x for x, _ in DataLoader(train.dataset, batch_size=600)])
    assert pixels.shape[1:] == (784,)
    assert pixels.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert pixels.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    _, _, plain = student.make_loaders(mnist_root, validation_size=n_val, normalize=False)
    x, _ = next(iter(plain))
    assert x.min() >= 0 and x.max() <= 1
    with pytest.raises(ValueError, match="validation_size"):
        student.make_loaders(mnist_root, validation_size=600)


def test_does_the_mnist_stand_in_standardise_like_mnist(mnist_root):
    """Its statistics are close to MNIST's, so the notebook's loaders (own statistics) and the
    reference (MNIST's, from the manifest) feed the network nearly the same inputs."""
    mean, std = mean_std(datasets.MNIST(mnist_root, transform=transforms.ToTensor()))
    assert abs(mean - MANIFEST.mean[0]) < 0.02 and abs(std - MANIFEST.std[0]) < 0.1


def test_does_show_predictions_title_each_image_with_both_labels_in_red_when_wrong():
    user = NetworkUser(FNN())
    images, labels = torch.randn(10, 784), torch.arange(10)
    predicted = user.predict(images)
    fig = user.show_predictions(images, labels, n=5)
    for ax, p, t in zip(fig.axes, predicted[:5], labels[:5], strict=True):
        assert ax.get_title() == f"pred {int(p)}\ntrue {int(t)}"
        assert ax.title.get_color() == ("black" if p == t else "red")
        assert ax.images[0].get_array().shape == (28, 28)
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("real", [True, False])
def test_does_a_run_say_whether_it_measured_real_mnist(real):
    source = MnistSource(Path("."), real, "real MNIST" if real else FIXTURE, "e")
    told = reference.measurement(source, 0.98123)
    assert told.measured is real
    assert ("0.9812" in told.reason) is not real  # what the stand-in reached, unmeasured


def test_was_the_committed_expected_file_trained_with_the_current_settings():
    cfg = config.RUN
    for entry in load_expected(ID)["accuracy"].values():
        assert (entry["epochs"], entry["lr"], entry["batch_size"]) == (
            cfg.epochs,
            cfg.lr,
            cfg.batch_size,
        )
