"""Keyword arguments of the modules family (`[[modules]] kwargs`): does the manifest read and
validate them, and does the family draw them, pass them by name and judge what comes out?"""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from grader.checks.families import modules
from grader.judge import JudgeContext
from grader.manifest import ManifestError
from grader.observations import decode, encode
from grader.probe.context import ProbeContext
from tests.fixtures import toy

NET = toy.namespace()["Net"]  # takes its keyword arguments by keyword only
FIXED = 'fixed = [[2, 5, "relu", 0.0]]'


class NetIgnoringWidth(NET):
    def __init__(self, depth, *, width, activation, dropout):
        super().__init__(depth, width=4, activation=activation, dropout=dropout)


def _edited(folder, old: str, new: str) -> None:
    """The toy manifest in `folder`, with `old` (found once) replaced by `new`."""
    text = toy.MANIFEST.read_text()
    assert text.count(old) == 1, old
    (folder / toy.MANIFEST.name).write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def manifest():
    return toy.manifest()


def test_does_the_manifest_read_keyword_arguments_in_order(manifest):
    spec = manifest.module("net")
    assert [a.name for a in spec.kwargs] == ["width", "activation", "dropout"]
    assert spec.kwargs[1].choices == ("tanh", "relu")
    assert spec.fixed == ((2, 5, "relu", 0.0),)
    assert spec.model_dump(mode="json")["kwargs"][0] == {
        "name": "width",
        "range": [2, 9],
        "choices": None,
    }


def test_does_a_fixed_entry_need_a_value_for_every_keyword_argument(tmp_path):
    _edited(tmp_path, FIXED, "fixed = [[2, 5]]")
    with pytest.raises(ManifestError, match="args, then kwargs, then sizes"):
        toy.manifest(tmp_path)


def test_are_repeated_argument_names_refused(tmp_path):
    _edited(tmp_path, 'name = "width"', 'name = "depth"')
    with pytest.raises(ManifestError, match="repeat"):
        toy.manifest(tmp_path)


def test_does_a_drawn_setting_hold_keyword_values_from_their_ranges(manifest):
    spec = manifest.module("net")
    settings = modules.draw_settings(spec)(random.Random(3), manifest)
    assert settings["values"][0] == [2, 5, "relu", 0.0]
    assert len(settings["values"]) == 5
    for depth, width, activation, dropout in settings["values"]:
        assert 1 <= depth <= 3 and 2 <= width <= 9
        assert activation in ("tanh", "relu") and dropout in (0.0, 0.5)
    args, kwargs = modules.constructor(spec, settings["values"][0])
    assert (args, kwargs) == ([2], {"width": 5, "activation": "relu", "dropout": 0.0})
    assert modules.describe(spec, settings["values"][0], manifest) == (
        "Net(depth=2, width=5, activation='relu', dropout=0.0) on 1x28x28 inputs"
    )


def _observe(manifest, cls, settings):
    spec = manifest.module("net")
    ctx = ProbeContext(ns={"Net": cls}, manifest=manifest, settings=settings)
    return decode(*encode(modules.observe(spec, with_behaviour=True)(ctx)))


def _verdicts(manifest, student) -> dict:
    spec = manifest.module("net")
    settings = modules.draw_settings(spec)(random.Random(5), manifest)
    seen, want = _observe(manifest, student, settings), _observe(manifest, NET, settings)
    ctx = JudgeContext(manifest, {}, settings=settings)
    return {
        kind: modules._judge(spec, [kind])(seen, want, ctx).fraction
        for kind in ("output", "parameters", "behaviour")
    }


def test_does_the_family_build_by_keyword_and_accept_the_reference_itself(manifest):
    assert _verdicts(manifest, NET) == {"output": 1.0, "parameters": 1.0, "behaviour": 1.0}


def test_does_a_class_that_ignores_a_keyword_argument_lose_the_parameters(manifest):
    verdicts = _verdicts(manifest, NetIgnoringWidth)
    assert verdicts["output"] == 1.0
    assert verdicts["parameters"] < 1.0 and verdicts["behaviour"] < 1.0


def test_does_build_pass_positional_and_keyword_values_as_the_spec_says(manifest):
    spec = manifest.module("net")
    model = modules.build(spec, NET, [1, 3, "tanh", 0.5])  # Net takes width... by keyword only
    assert isinstance(model, NET)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


class _DropoutBuiltInForward(nn.Module):
    """nn.Dropout(p)(x) inside forward: a new layer on every call, which eval() never reaches."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(nn.Dropout(0.5)(torch.relu(self.fc1(x))))


def test_is_dropout_built_in_forward_told_so_not_to_use_nn_dropout():
    # Blind round 17 (cnn_techniques): `x = nn.Dropout(0.25)(x)` in Net.forward was told "an
    # nn.Dropout layer follows eval() by itself", which is what the student had written.
    from grader.checks.families import behaviour

    x = torch.randn(5, 6)
    reference = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    want = behaviour.outputs(reference, x, 3)
    problem = modules._behaviour_problem(
        None, behaviour.outputs(_DropoutBuiltInForward(), x, 3), want
    )
    assert "evaluation mode" in problem and "builds a new Dropout on every call" in problem
    assert "__init__" in problem and "follows eval() by itself" not in problem, problem


def _normed(norm: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), norm, nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


def test_is_batch_norm_s_eps_left_open_unless_it_changes_the_function():
    # Blind round 17 (cnn_techniques): BatchNormNet with nn.BatchNorm2d(32, eps=1e-3) (Keras'
    # default) lost batchnorm_behaviour, "check the order of the layers", though no
    # instructions set eps; BatchNorm2d(4, 4) read as Conv2d's (in, out) is eps=4, still caught.
    from grader.checks.families import behaviour

    x = torch.randn(5, 1, 6, 6)
    want = behaviour.outputs(_normed(nn.BatchNorm2d(4)), x, 3)
    keras = behaviour.outputs(_normed(nn.BatchNorm2d(4, eps=1e-3, momentum=0.01)), x, 3)
    assert modules._behaviour_problem(None, keras, want) is None
    assert modules._behaviour_problem(
        None, behaviour.outputs(_normed(nn.BatchNorm2d(4, 4)), x, 3), want
    )


# ---------------------------------------------------------------- how layers are built


@pytest.mark.parametrize(
    ("wrap", "check"), [("weight_norm", "cnn_shape"), ("spectral_norm", "cnn_behaviour")]
)
def test_is_a_parametrized_layer_named_where_the_network_differs(wrap, check):
    """Blind round 17: CNN's linear layer wrapped in weight_norm (cifar v02: a magnitude
    parameter besides the weight) lost cnn_shape, rightly (the sheet's layers are plain,
    question 1.5 counts them), told only "unexpected parameters of shape 10x1, 64x1";
    spectral_norm (fnn s15: the same parameters, the weight over its largest singular value)
    computes other outputs. Either way the parametrized layer is now named."""
    from tests.grader.families.conftest import Harness
    from tests.grader.families.test_loops_and_devices import REPO

    cifar = Harness.of("cifar_cnn_svm")
    code = (REPO / "solutions" / "cifar_cnn_svm" / "student.py").read_text()
    old = "self.fc1 = nn.Linear(64 * 7 * 7, 64)"
    assert code.count(old) == 1
    normed = f"nn.utils.parametrizations.{wrap}(nn.Linear(64 * 7 * 7, 64))"
    results = cifar.grade(
        cifar.namespace(code.replace(old, f"self.fc1 = {normed}")), ["module:cnn"]
    )
    failing = {n for n, r in results.items() if r.status == "fail"}
    assert check in failing, {n: r.message for n, r in results.items()}
    assert "layer fc1 carries a parametrization" in results[check].message


class _Listed(torch.nn.Module):
    def __init__(self, register: bool):
        super().__init__()
        self.between = [torch.nn.Linear(2, 2) for _ in range(2)]
        for i, layer in enumerate(self.between if register else []):
            self.register_module(f"hidden{i}", layer)


def test_are_listed_layers_that_are_registered_too_not_called_unregistered():
    """Blind round 17 (cifar v10): DeepClassifier kept its layers in a plain list and registered
    each with register_module: right, but the plain list was still named as hiding layers, a
    hint any parameter problem of that model would have carried."""
    from grader.checks.common import unregistered_modules

    assert unregistered_modules(_Listed(register=False)) == ["between"]
    assert unregistered_modules(_Listed(register=True)) == []


class _OnBatch(nn.BatchNorm2d):
    def forward(self, x):  # the batch's statistics in every mode
        b = torch.nn.functional.batch_norm
        return b(x, self.running_mean, self.running_var, self.weight, self.bias, training=True)


def test_is_a_batch_norm_on_batch_statistics_in_eval_told_so_not_the_layer_order():
    # Blind round 18 (res x13): a dense layer's batch norm by hand, F.batch_norm(...,
    # training=True), lost denseblock_behaviour, rightly, told "check the order of the layers,
    # activations, pooling and the skip or concatenation paths": all right. Training mode
    # agreed with the reference; that is said now, and what acts in evaluation mode alone.
    from grader.checks.families import behaviour

    x = torch.randn(5, 1, 6, 6)
    want = behaviour.outputs(_normed(nn.BatchNorm2d(4)), x, 3)
    problem = modules._behaviour_problem(None, behaviour.outputs(_normed(_OnBatch(4)), x, 3), want)
    assert "in training mode but not in evaluation mode" in problem, problem
    assert "order of the layers" not in problem, problem
