"""Does the `fnn_mnist` reference code do what its notebook tells students, does the manifest say
what the grader needs, and do training and the data fixtures run end to end?"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import matplotlib
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, RandomSampler, Subset
from torchvision import datasets as tv_datasets
from torchvision import transforms

from grader.judge import load_expected
from grader.manifest import load_manifest
from solutions.data import FIXTURE_SIZES, resolve_root, torchvision_dataset, write_mnist_like
from solutions.data.mnist import FIXTURE, MnistSource, describe_mnist
from solutions.expected import ModelRun, accuracy_entry, sha256
from solutions.fnn_mnist import config, reference, student
from solutions.fnn_mnist.student import (
    FNN,
    DeepFNN,
    answers,
    dense_layer,
    flatten,
    init_weights,
    make_loaders,
    mean_std,
)
from solutions.paths import ASSIGNMENTS_DIR, WEIGHTS_DIR
from solutions.training import History
from tests.conftest import run_cli

matplotlib.use("Agg")

ID = "fnn_mnist"
MANIFEST = load_manifest(ID)
EXPECTED_KEYS = {"assignment", "provenance", "accuracy", "weights", "quick"}
ACCURACY_KEYS = {
    "test_accuracy",
    "threshold",
    "measured",
    "reason",
    "epochs",
    "optimizer",
    "lr",
    "batch_size",
}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _fnn_count(widths: list[int], batch_norm: bool) -> int:
    """Parameters of dense layers widths[0] -> ... -> widths[-1], the last one plain linear."""
    hidden = [
        _linear(a, b, bias=not batch_norm) + (2 * b if batch_norm else 0)
        for a, b in zip(widths[:-2], widths[1:-1], strict=True)
    ]
    return sum(hidden) + _linear(widths[-2], widths[-1])


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> Path:
    """A small MNIST-format fixture (torchvision's layout)."""
    return write_mnist_like(tmp_path_factory.mktemp("mnist"), "mnist", n_train=600, n_test=200)


# ---------------------------------------------------------------- [N] the network


@pytest.mark.parametrize(("n_in", "n_out"), [(784, 256), (20, 7), (6, 1)])
def test_is_a_dense_layer_a_linear_layer_then_its_activation(n_in, n_out):
    layer = dense_layer(n_in, n_out, nn.Tanh)
    assert isinstance(layer, nn.Sequential)
    assert [type(m) for m in layer] == [nn.Linear, nn.Tanh]
    x = torch.randn(5, n_in)
    assert layer(x).shape == (5, n_out)
    torch.testing.assert_close(layer(x), torch.tanh(layer[0](x)))
    assert sorted(tuple(p.shape) for p in layer.parameters()) == [(n_out,), (n_out, n_in)]


def test_does_a_dense_layer_without_activation_stay_linear():
    layer = dense_layer(20, 7)
    assert [type(m) for m in layer] == [nn.Linear]
    assert (layer(torch.randn(50, 20)) < 0).any()


def test_does_the_batchnorm_dense_layer_drop_the_bias_and_normalise_before_the_activation():
    layer = dense_layer(20, 7, nn.ReLU, batch_norm=True).train()
    assert [type(m) for m in layer] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert layer[0].bias is None
    assert _count(layer) == 20 * 7 + 2 * 7
    x = torch.randn(64, 20) * 3 + 2
    normalised = layer[:2](x)  # before the ReLU: zero mean, unit variance per feature
    torch.testing.assert_close(normalised.mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(layer(x), F.relu(normalised))


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("widths", [(784, 256, 10), (20, 7, 3), (50, 1, 4)])
def test_are_the_fnn_parameter_counts_those_of_two_hidden_dense_layers(widths, batch_norm):
    n_in, hidden, n_out = widths
    model = FNN(n_in, hidden, n_out, batch_norm=batch_norm)
    assert _count(model) == _fnn_count([n_in, hidden, hidden, n_out], batch_norm)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == (2 if batch_norm else 0)


def test_does_fnn_take_vectors_and_images_and_return_logits():
    torch.manual_seed(0)
    model = FNN().eval()
    images = torch.randn(6, 1, 28, 28)
    out = model(images)
    assert out.shape == (6, 10)
    torch.testing.assert_close(out, model(images.reshape(6, 784)))
    assert (out < 0).any(), "logits, not ReLU outputs"
    assert not torch.allclose(out.sum(1), torch.ones(6)), "logits, not probabilities"


def test_is_the_fnn_output_layer_plain_linear_and_the_hidden_ones_activated():
    model = FNN(20, 7, 3, activation=nn.Tanh)
    modules = [m for m in model.modules() if not list(m.children())]  # leaves, in order
    assert [type(m) for m in modules] == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("hidden_sizes", [(), (16,), [32, 16, 8], (5, 5, 5, 5)])
def test_does_deep_fnn_build_one_registered_layer_per_hidden_size(hidden_sizes, batch_norm):
    model = DeepFNN(30, hidden_sizes, 4, batch_norm=batch_norm).eval()
    assert model(torch.randn(3, 1, 5, 6)).shape == (3, 4)
    assert _count(model) == _fnn_count([30, *hidden_sizes, 4], batch_norm)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == len(hidden_sizes) + 1


def test_does_deep_fnn_with_two_equal_hidden_layers_compute_what_fnn_computes():
    torch.manual_seed(0)
    for batch_norm in (False, True):
        fnn, deep = (
            FNN(20, 7, 3, batch_norm=batch_norm),
            DeepFNN(20, [7, 7], 3, batch_norm=batch_norm),
        )
        deep.load_state_dict(fnn.state_dict())
        x = torch.randn(8, 20)
        for mode in ("train", "eval"):
            getattr(fnn, mode)(), getattr(deep, mode)()
            torch.testing.assert_close(deep(x), fnn(x))


def test_does_init_weights_redraw_every_weight_and_bias_of_any_network():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        FNN(3 * 4 * 4, 8, 2, batch_norm=True),
        nn.Linear(2, 5),
    )
    with torch.no_grad():  # a "trained" batch norm, so that its reset shows
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.weight.fill_(2.0)
                m.bias.fill_(-1.0)
    layers = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    before = {id(p): p.detach().clone() for m in layers for p in m.parameters()}
    init_weights(net)
    for m in layers:
        fan_in = m.weight[0].numel()
        assert not torch.equal(before[id(m.weight)], m.weight)
        assert m.weight.abs().max() <= math.sqrt(6 / fan_in), "Kaiming-uniform bound for ReLU"
        if m.bias is not None:
            assert not torch.equal(before[id(m.bias)], m.bias)
            assert m.bias.abs().max() <= 1 / math.sqrt(fan_in)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    assert net(torch.randn(4, 1, 6, 6)).shape == (4, 5)


def test_does_init_weights_take_a_single_layer_and_follow_the_seed():
    draws = []
    for _ in range(2):
        layer = nn.Linear(4, 3)
        torch.manual_seed(7)
        init_weights(layer)
        draws.append(torch.cat([layer.weight.flatten(), layer.bias]))
    torch.testing.assert_close(draws[0], draws[1])


def test_are_the_answers_read_from_the_models():
    got = answers()
    assert got == {
        "image_size": [28, 28],
        "vector_length": 28 * 28,
        "fnn_parameters": _fnn_count([784, student.HIDDEN_SIZE, student.HIDDEN_SIZE, 10], False),
        "fnn_batchnorm_parameters": _fnn_count(
            [784, student.HIDDEN_SIZE, student.HIDDEN_SIZE, 10], True
        ),
        # Scale and shift per feature of both hidden layers; the biases those layers drop.
        "batchnorm_added_parameters": 2 * 2 * student.HIDDEN_SIZE,
        "bias_saved_parameters": 2 * student.HIDDEN_SIZE,
    }
    assert all(type(v) is int for k, v in got.items() if k != "image_size")
    # One width everywhere: the questions, the reference training and the submitted models.
    assert student.HIDDEN_SIZE == config.HIDDEN_SIZE
    for spec in MANIFEST.models:
        assert spec.args == (784, config.HIDDEN_SIZE, 10)


# ---------------------------------------------------------------- [DL] the data loader


def test_does_flatten_keep_the_rows_in_order():
    image = torch.arange(784.0).reshape(1, 28, 28)
    assert torch.equal(flatten(image), torch.arange(784.0))


def test_does_mean_std_agree_for_every_kind_of_data_set(mnist_root):
    plain = tv_datasets.MNIST(mnist_root, train=True, transform=transforms.ToTensor())
    pixels = plain.data.double() / 255
    want = (pixels.mean().item(), pixels.std(unbiased=False).item())
    indices = list(range(0, 600, 3))
    subset = pixels[indices]
    want_subset = (subset.mean().item(), subset.std(unbiased=False).item())
    pairs = [plain[i] for i in indices]  # (image tensor 0..1, label)
    for got, expected in (
        (mean_std(plain), want),
        (mean_std(Subset(plain, indices)), want_subset),
        (mean_std(pairs), want_subset),
    ):
        assert all(type(v) is float for v in got)
        assert got == pytest.approx(expected, abs=1e-6)


def test_do_the_loaders_split_normalise_and_flatten_as_the_notebook_says(mnist_root):
    train, val, test = make_loaders(mnist_root, batch_size=50, validation_size=100, seed=3)
    order = torch.randperm(600, generator=torch.Generator().manual_seed(3)).tolist()
    assert val.dataset.indices == order[:100] and train.dataset.indices == order[100:]
    assert len(test.dataset) == 200
    assert isinstance(train.sampler, RandomSampler)
    assert not isinstance(val.sampler, RandomSampler) and not isinstance(
        test.sampler, RandomSampler
    )
    x, y = next(iter(test))
    assert x.shape == (50, 784) and y.shape == (50,)
    # Statistics of the training part only: the standardised training pixels have mean 0, sd 1.
    pixels = torch.cat([x for x, _ in DataLoader(train.dataset, batch_size=500)])
    assert pixels.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert pixels.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    plain = tv_datasets.MNIST(mnist_root, train=False, transform=transforms.ToTensor())
    test_mean, _ = mean_std(plain)
    train_mean, train_std = mean_std(Subset(plain_train(mnist_root), order[100:]))
    assert test_mean != pytest.approx(train_mean, abs=1e-6)  # the test would tell them apart
    torch.testing.assert_close(
        x, (plain.data[:50].float().div(255).reshape(50, 784) - train_mean) / train_std
    )


def plain_train(root: Path):
    return tv_datasets.MNIST(root, train=True, transform=transforms.ToTensor())


def test_does_the_same_seed_give_the_same_split_and_another_seed_another(mnist_root):
    first = make_loaders(mnist_root, validation_size=100, seed=0)[1].dataset.indices
    again = make_loaders(mnist_root, validation_size=100, seed=0)[1].dataset.indices
    other = make_loaders(mnist_root, validation_size=100, seed=1)[1].dataset.indices
    assert first == again and first != other


def test_do_unnormalised_loaders_keep_the_0_to_1_scale(mnist_root):
    _, _, test = make_loaders(mnist_root, validation_size=100, normalize=False)
    x, _ = next(iter(test))
    assert x.min() >= 0 and x.max() <= 1


def test_does_make_loaders_refuse_a_validation_split_as_large_as_the_data(mnist_root):
    with pytest.raises(ValueError, match="validation_size"):
        make_loaders(mnist_root, validation_size=600)


# ---------------------------------------------------------------- manifest and config


def test_does_the_manifest_build_both_submitted_models_with_their_arguments():
    fnn, fnn_bn = (spec.build(student) for spec in MANIFEST.models)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in fnn.modules())
    assert any(isinstance(m, nn.BatchNorm1d) for m in fnn_bn.modules())
    assert all(spec.input_shape == (784,) for spec in MANIFEST.models)
    assert MANIFEST.dataset == "mnist" and MANIFEST.max_score == pytest.approx(40)


def _manifest_with(tmp_path: Path, model_lines: str) -> Path:
    text = (ASSIGNMENTS_DIR / "fnn_mnist.toml").read_text()
    start = text.index("[[models]]")
    end = text.index("[[modules]]")
    (tmp_path / "fnn_mnist.toml").write_text(text[:start] + model_lines + "\n" + text[end:])
    return tmp_path


BASE_MODEL = 'key = "fnn"\nclass_name = "FNN"\nweights = "fnn.pt"\nmax_weights_mb = 5\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "give 'threshold_margin' .* or 'threshold' with 'threshold_source'"),
        ("threshold = 0.9\n", "'threshold' and 'threshold_source' go together"),
        ('threshold_source = "me"\n', "give 'threshold_margin' .* or 'threshold' with"),
        ('threshold = 1.5\nthreshold_source = "me"\n', "threshold.*less than or equal to 1"),
        (
            'threshold_margin = 0.03\nthreshold = 0.9\nthreshold_source = " "\n',
            "'threshold' and 'threshold_source' go together",
        ),
        ("threshold_margin = 0.03\nthreshhold = 0.9\n", "unknown key 'threshhold'"),
    ],
)
def test_does_the_manifest_refuse_a_model_without_a_well_sourced_threshold(
    tmp_path, extra, message
):
    folder = _manifest_with(tmp_path, "[[models]]\n" + BASE_MODEL + extra)
    with pytest.raises(ValueError, match=message):
        load_manifest(ID, folder)


def test_does_a_measurement_win_over_the_manifest_threshold_when_there_is_one():
    spec = MANIFEST.model("fnn")
    measured = spec.threshold_entry(0.9812)
    assert measured == {
        "threshold": math.floor((0.9812 - spec.threshold_margin) * 100) / 100,
        "threshold_rule": f"floor((test_accuracy - {spec.threshold_margin}) * 100) / 100",
    }
    assert spec.threshold_entry(None) == {
        "threshold": spec.threshold,
        "threshold_source": spec.threshold_source,
    }


def test_does_the_notebook_training_code_build_the_reference_optimiser():
    for cfg in (config.FNN, config.FNN_BN):
        model = FNN()
        scope = {"torch": torch, "nn": nn, "model": model, "init_weights": init_weights}
        exec(cfg.code("model"), scope)  # the text the notebook's training cell shows
        assert scope["epochs"] == cfg.epochs
        assert isinstance(scope["criterion"], nn.CrossEntropyLoss)
        built = cfg.make(model)
        assert type(scope["optimizer"]) is type(built)
        assert scope["optimizer"].defaults == built.defaults


def test_is_the_reference_split_the_notebook_split_at_the_real_size():
    train_idx, val_idx = reference.split_indices(config.REAL_TRAIN_SIZE, seed=0)
    order = torch.randperm(config.REAL_TRAIN_SIZE, generator=torch.Generator().manual_seed(0))
    assert torch.equal(val_idx, order[: config.VALIDATION_SIZE])
    assert torch.equal(train_idx, order[config.VALIDATION_SIZE :])
    assert config.validation_size(12000) == 1000


# ---------------------------------------------------------------- real MNIST or a fixture


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_does_the_mnist_stand_in_standardise_like_mnist(mnist_root):
    """Its own statistics are close to MNIST's, so the notebook's loaders (own statistics) and
    the grader (MNIST's, from the manifest) feed the network nearly the same inputs."""
    mean, std = mean_std(plain_train(mnist_root))
    assert abs(mean - MANIFEST.mean[0]) < 0.02
    assert abs(std - MANIFEST.std[0]) < 0.1


def test_is_a_fixture_never_taken_for_real_mnist(mnist_root):
    source = describe_mnist(mnist_root)
    assert not source.real and source.description == FIXTURE
    assert "MD5" in source.evidence


def test_would_files_with_the_published_checksums_count_as_real(mnist_root, monkeypatch):
    raw = mnist_root / "MNIST" / "raw"
    published = [
        (url, _md5(raw / Path(url).name)) for url, _ in tv_datasets.MNIST.resources
    ]  # pretend the fixture's files are the published ones
    monkeypatch.setattr(tv_datasets.MNIST, "resources", published)
    source = describe_mnist(mnist_root)
    assert source.real and "verified" in source.evidence


def test_without_gz_files_do_only_the_real_sizes_count_as_real(tmp_path):
    root = write_mnist_like(tmp_path, "mnist", n_train=30, n_test=10)
    for gz in (root / "MNIST" / "raw").glob("*.gz"):
        gz.unlink()
    source = describe_mnist(root)
    assert not source.real and "30 training and 10 test images" in source.evidence


@pytest.mark.parametrize("real", [True, False])
def test_does_the_accuracy_entry_say_whether_it_was_measured(real):
    source = MnistSource(Path("."), real, "real MNIST" if real else FIXTURE, "e")
    cfg = reference.MODELS["fnn"]
    run = ModelRun(
        History(loss=[0.5, 0.4]),
        0.98123,
        cfg.optimizer,
        cfg.lr,
        cfg.batch_size,
        reference.measurement(source, 0.98123),
    )
    entry = accuracy_entry(MANIFEST.model("fnn"), run)
    spec = MANIFEST.model("fnn")
    rule = "threshold_rule" if real else "threshold_source"
    assert set(entry) == ACCURACY_KEYS | {rule}
    assert entry["measured"] is real and entry["epochs"] == 2
    assert entry["test_accuracy"] == (0.9812 if real else None)
    assert entry["threshold"] == (spec.measured_threshold(0.98123) if real else spec.threshold)
    assert ("0.9812" in entry["reason"]) is not real  # what the stand-in reached, unmeasured


# ---------------------------------------------------------------- command line and files


def test_does_the_data_command_write_every_fixture_where_dlgrade_data_finds_it(
    tmp_path, monkeypatch
):
    result = run_cli("solutions", "data", "--fixtures", str(tmp_path / "root"), timeout=300)
    assert result.returncode == 0, result.stderr
    root = (tmp_path / "root").resolve()
    monkeypatch.setenv("DLGRADE_DATA", str(root))
    for name, (n_train, n_test) in FIXTURE_SIZES.items():
        assert f"{name}: {n_train} training and {n_test} test images" in result.stdout
        assert resolve_root(name, online=False).root == root
        train = torchvision_dataset(name, True, root=root, verify=False)
        test = torchvision_dataset(name, False, root=root, verify=False)
        assert (len(train), len(test)) == (n_train, n_test)
    assert f"DLGRADE_DATA={root}" in result.stdout


def test_does_quick_training_on_a_fixture_write_expected_answers_weights_and_figures(
    tmp_path, monkeypatch
):
    root = write_mnist_like(tmp_path / "data", "mnist", n_train=3000, n_test=1000)
    monkeypatch.setenv("DLGRADE_DATA", str(root))
    out = tmp_path / "out"
    args = ("train", ID, "--quick", "--device", "cpu", "--output-dir", str(out))
    result = run_cli("solutions", *args, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((out / f"{ID}.json").read_text())
    assert set(written) == EXPECTED_KEYS and written["quick"] is True
    assert written["provenance"]["data"] == FIXTURE
    assert written["provenance"]["epochs"] == {"fnn": 1, "fnn_bn": 1}
    for spec in MANIFEST.models:
        entry = written["accuracy"][spec.key]
        assert set(entry) == ACCURACY_KEYS | {"threshold_source"}
        assert entry["measured"] is False and entry["test_accuracy"] is None
        assert entry["threshold"] == spec.threshold
        model = spec.build(student)
        model.load_state_dict(torch.load(out / "weights" / spec.weights, weights_only=True))
        digest = hashlib.sha256((out / "weights" / spec.weights).read_bytes()).hexdigest()
        assert written["weights"][spec.weights]["sha256"] == digest
    assert (out / "learning_curves.png").stat().st_size > 10_000
    assert (out / "predictions.png").stat().st_size > 5_000


def test_does_the_committed_expected_file_hold_only_what_the_grader_reads():
    expected = load_expected(ID)
    assert set(expected) == EXPECTED_KEYS and expected["quick"] is False
    for key in ("command", "commit", "device", "torch", "seed", "epochs", "data", "images"):
        assert key in expected["provenance"], key
    for spec in MANIFEST.models:
        entry = expected["accuracy"][spec.key]
        measured = entry["measured"]
        assert entry == {
            **entry,
            **spec.threshold_entry(entry["test_accuracy"] if measured else None),
        }
        assert measured == (expected["provenance"]["data"] == "real MNIST")
        assert entry["epochs"] == expected["provenance"]["epochs"][spec.key]
        cfg = reference.MODELS[spec.key]
        assert (entry["epochs"], entry["lr"], entry["batch_size"]) == (
            cfg.epochs,
            cfg.lr,
            cfg.batch_size,
        )
        path = WEIGHTS_DIR / ID / spec.weights
        assert expected["weights"][spec.weights]["sha256"] == sha256(path)
        model = spec.build(student)
        model.load_state_dict(torch.load(path, weights_only=True))
