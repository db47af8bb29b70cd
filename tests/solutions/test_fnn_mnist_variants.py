"""Are the `fnn_mnist` submission variants what they claim to be?

Every variant's cells are executed (with the reference cells they do not replace) as a notebook
would run them, and each check name of the manifest is asked in-process by a small *model* of
that check, written here from the semantics stated in `tests/fixtures/variants/fnn_mnist.py`:
the reference and every correct variant must pass all of them, each buggy variant must fail
exactly the checks its `catches` names (apart from the accuracy of a model whose weights it
does not keep). These models are a specification to compare the grader's checks with, not the
grader: they never run in the sandbox and award no points.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchvision import datasets, transforms

from grader.judge import load_expected
from solutions.data import FIXTURE_SIZES, load_split, normalize, write_mnist_like
from solutions.fnn_mnist import student as reference
from solutions.manifest import load_manifest
from solutions.notebook_builder import student_chunks
from solutions.paths import REPO_ROOT, WEIGHTS_DIR
from tests.fixtures.variants import Variant, model_namespace, remap_state

matplotlib.use("Agg")

ASSIGNMENT = "fnn_mnist"
MANIFEST = load_manifest(ASSIGNMENT)
VARIANTS_FILE = REPO_ROOT / "tests" / "fixtures" / "variants" / f"{ASSIGNMENT}.py"


def _load_variants() -> list[Variant]:
    # By path: `tests/fixtures/variants.py` is still a module, so `variants/` is no package yet.
    spec = importlib.util.spec_from_file_location("fnn_mnist_variants", VARIANTS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VARIANTS


VARIANTS = _load_variants()
BUGGY = [v for v in VARIANTS if not v.correct]
CORRECT = [v for v in VARIANTS if v.correct]
REFERENCE_CELLS = student_chunks(REPO_ROOT / "solutions" / ASSIGNMENT / "student.py")


def _ids(variants):
    return [v.name for v in variants]


def _setup_namespace() -> dict:
    """What the notebook's set-up cell imports."""
    return {
        "__name__": "__variant__",
        "math": math,
        "os": os,
        "plt": plt,
        "torch": torch,
        "nn": nn,
        "F": F,
        "DataLoader": DataLoader,
        "Subset": Subset,
        "TensorDataset": TensorDataset,
        "datasets": datasets,
        "transforms": transforms,
    }


def _cells(variant: Variant | None) -> dict[str, str]:
    """Solution cells in notebook order, the variant's replacing the reference's."""
    cells = dict(REFERENCE_CELLS)
    if variant is not None:
        unknown = set(variant.cells) - set(cells)
        assert not unknown, f"{variant.name} replaces cells the notebook lacks: {unknown}"
        cells.update(variant.cells)
    return cells


def _namespace(variant: Variant | None) -> dict:
    ns = _setup_namespace()
    for cell, code in _cells(variant).items():
        exec(compile(code, f"<{cell}>", "exec"), ns)  # noqa: S102 - trusted fixture code
    return ns


# ---------------------------------------------------------------- helpers of the check models


def _module(layers) -> nn.Module:
    return nn.Sequential(*layers) if isinstance(layers, list | tuple) else layers


def _shapes(module: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in module.parameters())


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _from_shapes(module: nn.Module) -> nn.Module:
    """Set every parameter and float buffer from its shape alone (names and order ignored)."""
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            seed = int(hashlib.sha256(str(tuple(tensor.shape)).encode()).hexdigest()[:8], 16)
            g = torch.Generator().manual_seed(seed)
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.5)
    return module


def _same_behaviour(build_student: Callable, build_reference: Callable, x: torch.Tensor) -> bool:
    """Equal outputs under shape-chosen parameters, in train and in eval mode."""
    ours, theirs = _from_shapes(_module(build_student())), _from_shapes(build_reference())
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        with torch.no_grad():
            got, want = ours(x), theirs(x)
        if got.shape != want.shape or not torch.allclose(got, want, atol=1e-5):
            return False
    return True


def _data(n=10, features=6, seed=0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    return TensorDataset(x, torch.randint(0, 3, (n,), generator=g))


def _trainer(ns, model, data, lr=0.0, batch_size=4, criterion=None, **kwargs):
    return ns["NetworkTrainer"](
        model,
        DataLoader(data, batch_size=batch_size),
        DataLoader(data, batch_size=batch_size),
        criterion or nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=lr),
        "cpu",
        sum_correct_preds=kwargs.pop("sum_correct_preds", reference.sum_correct_preds),
        **kwargs,
    )


def _per_sample_loss(model, data) -> float:
    x, y = data.tensors
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


class _Stop(Exception):
    pass


class _GradientRecorder(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.grads = []

    def step(self, closure=None):
        self.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


# ---------------------------------------------------------------- the check models

ACTIVATIONS = (nn.ReLU, nn.Tanh)


def dense_layer_shapes(ns, env) -> bool:
    for n_in, n_out in ((784, 256), (20, 7), (6, 1)):
        for act in ACTIVATIONS:
            layer = _module(ns["dense_layer"](n_in, n_out, act))
            if layer(torch.randn(5, n_in)).shape != (5, n_out):
                return False
            if _shapes(layer) != [(n_out,), (n_out, n_in)]:
                return False
            ok = _same_behaviour(
                lambda a=act, i=n_in, o=n_out: ns["dense_layer"](i, o, a),
                lambda a=act, i=n_in, o=n_out: reference.dense_layer(i, o, a),
                torch.randn(8, n_in),
            )
            if not ok:
                return False
    return True


def dense_layer_batchnorm(ns, env) -> bool:
    for n_in, n_out in ((784, 256), (20, 7)):
        for act in (nn.ReLU, None):  # other activation classes are dense_layer_shapes' matter
            layer = _module(ns["dense_layer"](n_in, n_out, act, batch_norm=True))
            want = reference.dense_layer(n_in, n_out, act, batch_norm=True)
            if _shapes(layer) != _shapes(want):
                return False
            if not any(isinstance(m, nn.BatchNorm1d) for m in layer.modules()):
                return False
            ok = _same_behaviour(
                lambda a=act, i=n_in, o=n_out: ns["dense_layer"](i, o, a, batch_norm=True),
                lambda a=act, i=n_in, o=n_out: reference.dense_layer(i, o, a, batch_norm=True),
                torch.randn(16, n_in) * 2 + 1,
            )
            if not ok:
                return False
    return True


def dense_layer_last_activation(ns, env) -> bool:
    # Nothing squashes the output: for large inputs, ReLU networks give logits far below -1
    # (a ReLU, tanh or sigmoid after the output layer would not). Judged on outputs only, so
    # layers PyTorch cannot see (a plain list) do not matter here.
    torch.manual_seed(2)
    x = torch.randn(64, 20) * 100
    for model in (ns["FNN"](20, 7, 3), ns["DeepFNN"](20, [7, 5], 3), ns["DeepFNN"](20, [], 3)):
        with torch.no_grad():
            if not (model.eval()(x) < -1).any():
                return False
    return True


def fnn_output(ns, env) -> bool:
    model = ns["FNN"](784, 32, 10).eval()
    images = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        flat, square = model(images.reshape(5, 784)), model(images)
    return flat.shape == square.shape == (5, 10) and torch.allclose(flat, square)


FNN_SETTINGS = ((784, 256, 10), (20, 7, 3), (50, 1, 4))


def fnn_parameters(ns, env) -> bool:
    return all(
        _count(ns["FNN"](*s, batch_norm=bn)) == _count(reference.FNN(*s, batch_norm=bn))
        for s in FNN_SETTINGS
        for bn in (False, True)
    )


def fnn_behaviour(ns, env) -> bool:
    return all(
        _same_behaviour(
            lambda s=s, a=a: ns["FNN"](*s, activation=a),
            lambda s=s, a=a: reference.FNN(*s, activation=a),
            torch.randn(8, s[0]),
        )
        for s in FNN_SETTINGS
        for a in ACTIVATIONS
    )


HIDDEN_SIZES = ((), (16,), (8, 6, 4), (5, 5, 5, 5))


def deep_fnn_shapes(ns, env) -> bool:
    for sizes in HIDDEN_SIZES:
        model = ns["DeepFNN"](30, list(sizes), 4)
        if model(torch.randn(3, 30)).shape != (3, 4):
            return False
        if _count(model) != _count(reference.DeepFNN(30, sizes, 4)):
            return False
    return True


def deep_fnn_behaviour(ns, env) -> bool:
    return all(
        _same_behaviour(
            lambda s=s, a=a: ns["DeepFNN"](30, list(s), 4, activation=a),
            lambda s=s, a=a: reference.DeepFNN(30, s, 4, activation=a),
            torch.randn(8, 30),
        )
        for s in HIDDEN_SIZES
        for a in ACTIVATIONS
    )


def init_weights(ns, env) -> bool:
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5),
        nn.Sequential(nn.Linear(5, 4), nn.ReLU()),
        nn.Linear(4, 2),
    )
    layers = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    before = [p.detach().clone() for m in layers for p in m.parameters()]
    ns["init_weights"](net)
    after = [p.detach() for m in layers for p in m.parameters()]
    return all(
        not torch.equal(a, b) and torch.isfinite(b).all()
        for a, b in zip(before, after, strict=True)
    )


def flatten_transform(ns, env) -> bool:
    out = ns["flatten"](torch.arange(784.0).reshape(1, 28, 28))
    return tuple(out.shape) == (784,) and torch.equal(out, torch.arange(784.0))


def normalisation_stats(ns, env) -> bool:
    images = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8)

    class WithData:
        data = images

    pixels = images.double() / 255
    want = (pixels.mean().item(), pixels.std(unbiased=False).item())
    pairs = [(img.unsqueeze(0).float() / 255, 0) for img in images]
    for got in (ns["mean_std"](WithData()), ns["mean_std"](pairs)):
        if not all(isinstance(v, float) for v in got) or got != pytest.approx(want, abs=1e-5):
            return False
    # make_loaders: the test images standardised with the training part's statistics. Judged
    # on per-image sums of values and squares, which do not depend on the flattening order.
    root = env["small_root"]
    _, _, test = ns["make_loaders"](root, batch_size=50, validation_size=100, seed=3)
    x, _ = next(iter(test))
    plain = datasets.MNIST(root, train=True).data.double() / 255
    order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(3))
    train_pixels = plain[order[100:]]
    mean, std = train_pixels.mean(), train_pixels.std(unbiased=False)
    expected = (datasets.MNIST(root, train=False).data[:50].double() / 255 - mean) / std
    expected = expected.reshape(50, -1)
    x = x.double().reshape(50, -1)
    return torch.allclose(x.sum(1), expected.sum(1), atol=1e-2) and torch.allclose(
        (x**2).sum(1), (expected**2).sum(1), atol=1e-2
    )


def sum_correct_preds(ns, env) -> bool:
    scores = torch.tensor([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0], [-5.0, -4.0]])
    got = ns["sum_correct_preds"](scores, torch.tensor([1, 0, 0, 0]))
    everything = ns["sum_correct_preds"](scores, scores.argmax(1))
    return type(got) is int and got == 2 and everything == 4


def _known_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model[0].bias.copy_(torch.tensor([3.0, -1.0]))
        model[1].weight.copy_(torch.tensor([2.0, 1.0]))
        model[1].bias.copy_(torch.tensor([0.0, -0.5]))
    return model


def regularization_values(ns, env) -> bool:
    values = torch.cat([p.detach().flatten() for p in _known_model().parameters()])
    model = _known_model()
    cases = (
        (ns["l2_regularization"](model, 0.1), 0.1 * values.pow(2).sum()),
        (ns["l1_regularization"](model, 0.1), 0.1 * values.abs().sum()),
        (ns["l2_regularization"](model), 1e-3 * values.pow(2).sum()),
        (ns["l1_regularization"](model), 1e-3 * values.abs().sum()),
    )
    return all(
        isinstance(got, torch.Tensor) and got.requires_grad and abs(got.item() - want) < 1e-6
        for got, want in cases
    )


def regularized_step(ns, env) -> bool:
    lr, lam = 0.1, 0.05
    model = nn.Linear(2, 2)
    start = [p.detach().clone() for p in model.parameters()]
    trainer = _trainer(
        ns,
        model,
        _data(n=4, features=2),
        lr=lr,
        criterion=lambda outputs, targets: (outputs * 0.0).sum(),  # only the penalty pulls
        regularization=lambda m: lam * sum(p.pow(2).sum() for p in m.parameters()),
    )
    trainer.train_epoch()
    moved = all(
        torch.allclose(p.detach(), s * (1 - 2 * lr * lam), atol=1e-6)
        for p, s in zip(model.parameters(), start, strict=True)
    )
    # The penalty counts in the training loss, never in the validation loss (one batch).
    data, model = _data(n=4), nn.Linear(6, 3)
    plain = _per_sample_loss(model, data)
    trainer = _trainer(ns, model, data, regularization=lambda m: torch.tensor(5.0))
    train_loss = trainer.train_epoch()
    val_loss = trainer.validate()[0]
    return moved and abs(train_loss - plain - 5.0) < 1e-5 and abs(val_loss - plain) < 1e-5


def trainer_train_mode(ns, env) -> bool:
    model = nn.Linear(6, 3).eval()
    modes = []
    model.register_forward_pre_hook(lambda m, inputs: modes.append(m.training))
    trainer = _trainer(ns, model, _data())
    trainer.validate()
    modes.clear()
    trainer.train_epoch()
    return modes == [True, True, True]


def trainer_eval_mode(ns, env) -> bool:
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    seen = []
    model.register_forward_pre_hook(
        lambda m, inputs: seen.append((m.training, torch.is_grad_enabled()))
    )
    trainer = _trainer(ns, model, _data(), lr=0.5)
    trainer.train_epoch()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    seen.clear()
    trainer.validate()
    unchanged = all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    return bool(seen) and all(s == (False, False) for s in seen) and unchanged


def trainer_zero_grad(ns, env) -> bool:
    torch.manual_seed(0)
    data, model = _data(), nn.Linear(6, 3)
    optimizer = _GradientRecorder(model.parameters())
    loader = DataLoader(data, batch_size=4)
    trainer = ns["NetworkTrainer"](model, loader, loader, nn.CrossEntropyLoss(), optimizer, "cpu")
    trainer.train_epoch()
    x, y = data.tensors
    if len(optimizer.grads) != 3:
        return False
    for i, recorded in zip((0, 4, 8), optimizer.grads, strict=True):
        loss = F.cross_entropy(model(x[i : i + 4]), y[i : i + 4])
        want = torch.autograd.grad(loss, [model.weight, model.bias])
        if not all(torch.allclose(g, w, atol=1e-6) for g, w in zip(recorded, want, strict=True)):
            return False
    return True


def trainer_loss(ns, env) -> bool:
    torch.manual_seed(0)
    data, model = _data(), nn.Linear(6, 3)
    per_sample = _per_sample_loss(model, data)
    trainer = _trainer(ns, model, data)  # batches of 4, 4 and 2; lr 0
    train_loss = trainer.train_epoch()
    val_loss = trainer.validate()[0]
    return abs(train_loss - per_sample) < 1e-5 and abs(val_loss - per_sample) < 1e-5


def trainer_accuracy(ns, env) -> bool:
    data = _data()
    for count, want in ((lambda out, t: len(t), 1.0), (lambda out, t: 0, 0.0)):
        history = _trainer(ns, nn.Linear(6, 3), data, sum_correct_preds=count).train_network(1)
        if history["train_accuracy"] != [want] or history["val_accuracy"] != [want]:
            return False
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    x, y = data.tensors
    with torch.no_grad():
        want = (model(x).argmax(1) == y).float().mean().item()
    return abs(_trainer(ns, model, data).validate()[1] - want) < 1e-6


def trainer_device(ns, env) -> bool:
    for run in ("train_epoch", "validate"):
        model = nn.Linear(6, 3)
        seen = []

        def hook(module, inputs, seen=seen):
            seen.append((inputs[0].device.type, module.weight.device.type))
            raise _Stop

        model.register_forward_pre_hook(hook)
        data = _data()
        trainer = ns["NetworkTrainer"](
            model,
            DataLoader(data, batch_size=4),
            DataLoader(data, batch_size=4),
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            torch.device("meta"),
        )
        try:
            getattr(trainer, run)()
        except _Stop:
            pass
        if seen != [("meta", "meta")]:
            return False
    return True


def save_load_roundtrip(ns, env) -> bool:
    torch.manual_seed(0)
    model = ns["FNN"](20, 7, 3, batch_norm=True)
    with torch.no_grad():  # batch norm statistics away from their start
        model.train()(torch.randn(32, 20) * 3 + 1)
    user = ns["NetworkUser"](model)
    inputs = torch.randn(16, 20)
    labels = user.predict(inputs)
    path = env["tmp"] / "roundtrip.pt"
    user.save(path)
    if not isinstance(torch.load(path, weights_only=True), dict):
        return False
    fresh = ns["NetworkUser"](ns["FNN"](20, 7, 3, batch_norm=True))
    fresh.load(path)
    return labels.dtype == torch.int64 and torch.equal(fresh.predict(inputs), labels)


def answers(ns, env) -> bool:
    return ns["answers"]() == reference.answers()


def _accuracy(ns, env, key: str) -> bool:
    spec = MANIFEST.model(key)
    mode = env["variant"].weights_for(key) if env["variant"] else "reference"
    if mode == "none":
        return False
    model = spec.build(ns)
    if mode == "reference":
        stored = torch.load(WEIGHTS_DIR / ASSIGNMENT / spec.weights, weights_only=True)
        model.load_state_dict(
            remap_state(env["variant"] or Variant("r", "", {}), key, stored, model)
        )
    images, labels = env["test_split"]
    with torch.no_grad():
        accuracy = (model.eval()(images).argmax(1) == labels).float().mean().item()
    return accuracy >= load_expected(ASSIGNMENT)["accuracy"][key]["threshold"]


CHECKS: dict[str, Callable] = {
    "dense_layer_shapes": dense_layer_shapes,
    "dense_layer_batchnorm": dense_layer_batchnorm,
    "dense_layer_last_activation": dense_layer_last_activation,
    "fnn_output": fnn_output,
    "fnn_parameters": fnn_parameters,
    "fnn_behaviour": fnn_behaviour,
    "deep_fnn_shapes": deep_fnn_shapes,
    "deep_fnn_behaviour": deep_fnn_behaviour,
    "init_weights": init_weights,
    "flatten_transform": flatten_transform,
    "normalisation_stats": normalisation_stats,
    "sum_correct_preds": sum_correct_preds,
    "regularization_values": regularization_values,
    "regularized_step": regularized_step,
    "trainer_train_mode": trainer_train_mode,
    "trainer_eval_mode": trainer_eval_mode,
    "trainer_zero_grad": trainer_zero_grad,
    "trainer_loss": trainer_loss,
    "trainer_accuracy": trainer_accuracy,
    "trainer_device": trainer_device,
    "save_load_roundtrip": save_load_roundtrip,
    "answers": answers,
    "fnn_accuracy": lambda ns, env: _accuracy(ns, env, "fnn"),
    "fnn_bn_accuracy": lambda ns, env: _accuracy(ns, env, "fnn_bn"),
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    return write_mnist_like(tmp_path_factory.mktemp("small"), "mnist", n_train=600, n_test=200)


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    """The test split of `python -m solutions data --fixtures` (the committed weights' data),
    as the grader feeds it: normalised with the manifest's statistics, flattened."""
    root = tmp_path_factory.mktemp("course")
    n_train, n_test = FIXTURE_SIZES["mnist"]
    write_mnist_like(root, "mnist", n_train=n_train, n_test=n_test, seed=0)
    images, labels = load_split("mnist", False, root=root)
    return normalize(images, MANIFEST.mean, MANIFEST.std).flatten(1), labels


def _failed(variant, small_root, test_split, tmp_path) -> set[str]:
    torch.manual_seed(0)
    ns = _namespace(variant)
    env = {
        "small_root": small_root,
        "test_split": test_split,
        "tmp": tmp_path,
        "variant": variant,
    }
    failed = set()
    for name, check in CHECKS.items():
        try:
            ok = check(ns, env)
        except Exception:  # noqa: BLE001 - a crash is a failed check
            ok = False
        if not ok:
            failed.add(name)
    return failed


# ---------------------------------------------------------------- tests


def test_does_every_manifest_check_have_a_model_here():
    assert list(CHECKS) == [c.name for c in MANIFEST.checks]


def test_does_the_reference_pass_every_check_model(small_root, test_split, tmp_path):
    assert _failed(None, small_root, test_split, tmp_path) == set()


@pytest.mark.parametrize("variant", CORRECT, ids=_ids(CORRECT))
def test_does_a_correct_variant_pass_every_check_model(variant, small_root, test_split, tmp_path):
    assert variant.weights == "reference"
    assert _failed(variant, small_root, test_split, tmp_path) == set(), variant.description


@pytest.mark.parametrize("variant", BUGGY, ids=_ids(BUGGY))
def test_does_a_buggy_variant_fail_exactly_its_catches(variant, small_root, test_split, tmp_path):
    excused = {
        f"{m.key}_accuracy" for m in MANIFEST.models if variant.weights_for(m.key) != "reference"
    }
    failed = _failed(variant, small_root, test_split, tmp_path)
    assert set(variant.catches) <= failed, f"not caught: {set(variant.catches) - failed}"
    assert failed - excused <= set(variant.catches), f"also failed: {failed - set(variant.catches)}"


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids(VARIANTS))
def test_do_a_variant_s_cells_define_the_reference_names_with_torch_nn_and_f_only(variant):
    """The cells run in the namespace `tests.fixtures.variants.model_namespace` gives them."""
    names = set(_namespace(None)) - set(_setup_namespace())
    ns = {"torch": torch, "nn": nn, "F": F}
    for cell, code in _cells(variant).items():
        exec(compile(code, f"<{cell}>", "exec"), ns)  # noqa: S102 - trusted fixture code
    assert names <= set(ns)


def test_are_the_variants_many_named_once_and_catching_every_check():
    names = [v.name for v in VARIANTS]
    assert len(names) == len(set(names))
    assert len(BUGGY) >= 10 and len(CORRECT) >= 3
    known = {c.name for c in MANIFEST.checks}
    assert all(set(v.catches) <= known for v in BUGGY)
    assert known == {name for v in BUGGY for name in v.catches}


def test_does_the_shared_model_namespace_build_the_submitted_models():
    """What `tests.fixtures.variants` does to write weights, given the manifest's kwargs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    for cell, code in REFERENCE_CELLS.items():
        node = nbformat.v4.new_code_cell(code)
        node.metadata["nbgrader"] = {"solution": True, "grade_id": cell}
        nb.cells.append(node)
    ns = model_namespace(nb)
    for spec in MANIFEST.models:
        model = spec.build(ns)
        stored = torch.load(WEIGHTS_DIR / ASSIGNMENT / spec.weights, weights_only=True)
        model.load_state_dict(remap_state(Variant("reference", "", {}), spec.key, stored, model))
