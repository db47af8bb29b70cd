"""Keyword arguments of the modules family (`[[modules]] kwargs`): does the manifest read and
validate them, and does the family draw them, pass them by name and judge what comes out?"""

from __future__ import annotations

import random
import textwrap

import pytest
import torch
from torch import nn

from grader.checks.families import modules
from grader.judge import JudgeContext
from grader.manifest import ManifestError, load_manifest
from grader.observations import decode, encode
from grader.probe.context import ProbeContext

MODULE = """
[[modules]]
name = "net"
class_name = "Net"
outputs = "logits"
args = [{ name = "depth", range = [1, 3] }]
kwargs = [
    { name = "width", range = [2, 9] },
    { name = "activation", choices = ["tanh", "relu"] },
    { name = "dropout", choices = [0.0, 0.5] },
]
fixed = [FIXED]
settings = 4
"""


def _write(folder, module: str = MODULE, fixed: str = '[2, 5, "relu", 0.0]') -> None:
    checks = "".join(
        f'\n[[checks]]\nname = "net_{kind}"\nsource = "modules.net.{kind}"\ncell = "test_net"\n'
        "points = 1\nhidden = true\n"
        for kind in ("output", "parameters", "behaviour")
    )
    text = textwrap.dedent("""
        id = "toy"
        title = "toy"
        sheet = "999"
        dataset = "fashion_mnist"
        notebook = "toy.ipynb"

        [normalize]
        mean = [0.5]
        std = [0.5]
    """)
    (folder / "toy.toml").write_text(text + module.replace("FIXED", fixed) + checks)


class Net(nn.Module):
    """Takes its keyword arguments only by keyword, so a positional call would fail."""

    def __init__(self, depth, *, width, activation, dropout):
        super().__init__()
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        layers, features = [nn.Flatten()], 28 * 28
        for _ in range(depth):
            layers += [nn.Linear(features, width), act(), nn.Dropout(dropout)]
            features = width
        self.layers = nn.Sequential(*layers, nn.Linear(features, 10))

    def forward(self, x):
        return self.layers(x)


class NetIgnoringWidth(Net):
    def __init__(self, depth, *, width, activation, dropout):
        super().__init__(depth, width=4, activation=activation, dropout=dropout)


@pytest.fixture
def manifest(tmp_path):
    _write(tmp_path)
    return load_manifest("toy", tmp_path)


def test_does_the_manifest_read_keyword_arguments_in_order(manifest):
    spec = manifest.module("net")
    assert [a.name for a in spec.kwargs] == ["width", "activation", "dropout"]
    assert spec.kwargs[1].choices == ("tanh", "relu")
    assert spec.fixed == ((2, 5, "relu", 0.0),)
    assert manifest.model_dump(mode="json")["modules"][0]["kwargs"][0] == {
        "name": "width",
        "range": [2, 9],
        "choices": None,
    }


def test_does_a_fixed_entry_need_a_value_for_every_keyword_argument(tmp_path):
    _write(tmp_path, fixed="[2, 5]")
    with pytest.raises(ManifestError, match="args, then kwargs, then sizes"):
        load_manifest("toy", tmp_path)


def test_are_repeated_argument_names_refused(tmp_path):
    _write(tmp_path, MODULE.replace('name = "width"', 'name = "depth"'), '[2, 5, "relu", 0.0]')
    with pytest.raises(ManifestError, match="repeat"):
        load_manifest("toy", tmp_path)


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
    seen, want = _observe(manifest, student, settings), _observe(manifest, Net, settings)
    ctx = JudgeContext(manifest, {}, settings=settings)
    return {
        kind: modules._judge(spec, [kind])(seen, want, ctx).fraction
        for kind in ("output", "parameters", "behaviour")
    }


def test_does_the_family_build_by_keyword_and_accept_the_reference_itself(manifest):
    assert _verdicts(manifest, Net) == {"output": 1.0, "parameters": 1.0, "behaviour": 1.0}


def test_does_a_class_that_ignores_a_keyword_argument_lose_the_parameters(manifest):
    verdicts = _verdicts(manifest, NetIgnoringWidth)
    assert verdicts["output"] == 1.0
    assert verdicts["parameters"] < 1.0 and verdicts["behaviour"] < 1.0


def test_does_build_pass_positional_and_keyword_values_as_the_spec_says():
    spec = modules.ModuleEntry(
        name="net",
        class_name="Net",
        args=[{"name": "depth", "range": [1, 3]}],
        kwargs=[{"name": n, "choices": [0]} for n in ("width", "activation", "dropout")],
    )
    model = modules.build(spec, Net, [1, 3, "tanh", 0.5])  # Net takes width... by keyword only
    assert isinstance(model, Net)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
