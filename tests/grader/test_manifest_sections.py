"""Does loading a manifest refuse malformed model thresholds and family sections, naming what
is wrong? Each case edits the toy manifest (tests/fixtures/toy)."""

from __future__ import annotations

import math

import pytest

from grader.manifest import ManifestError
from tests.fixtures import toy

MODEL = '[[models]]\nkey = "net"\nclass_name = "Net"\nweights = "net.pt"\nmax_weights_mb = 5\n'


def _edited(folder, old: str, new: str):
    """The toy manifest with `old` (found once) replaced by `new`, loaded from `folder`."""
    text = toy.MANIFEST.read_text()
    assert text.count(old) == 1, old
    (folder / toy.MANIFEST.name).write_text(text.replace(old, new))
    return toy.manifest(folder)


def _with_model(folder, lines: str):
    return _edited(folder, "[loops]", MODEL + lines + "\n[loops]")


@pytest.mark.parametrize(
    ("lines", "message"),
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
def test_is_a_model_without_a_well_sourced_threshold_refused(tmp_path, lines, message):
    with pytest.raises(ManifestError, match=message):
        _with_model(tmp_path, lines)


def test_does_a_measurement_win_over_the_manifest_threshold(tmp_path):
    lines = 'threshold_margin = 0.03\nthreshold = 0.95\nthreshold_source = "me"\n'
    spec = _with_model(tmp_path, lines).model("net")
    assert spec.threshold_entry(0.9812) == {
        "threshold": math.floor((0.9812 - 0.03) * 100) / 100,
        "threshold_rule": "floor((test_accuracy - 0.03) * 100) / 100",
    }
    assert spec.threshold_entry(None) == {"threshold": 0.95, "threshold_source": "me"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('class_name = "Block"', 'class_name = "Block"\nfunction = "block"', "either"),
        ('["tanh", "relu"]', '["nn.Tanh", "nn.Sigmoyd"]', "'nn.Sigmoyd' is not a class"),
        ('loss = "logits"', 'loss = "logits"\nloss_mean = "per_batch"', "loss_mean: Input should"),
        (
            'convention = "epoch_functions"',
            'convention = "network_trainer"',
            "must be 'Class.method'",
        ),
        (
            'loss = "logits"',
            'loss = "logits"\ncounter_keyword = "count"',
            "counter_keyword needs the network_trainer",
        ),
        ("padding = 2", "padding = 9", "padding: Input should be less than or equal to 4"),
        (
            '"transforms.train_augments"',
            '"transforms.train"',
            r"write it as transforms.<kind> \(kinds: train_augments, test_deterministic\)",
        ),
    ],
)
def test_is_a_malformed_family_section_refused(tmp_path, old, new, message):
    with pytest.raises(ManifestError, match=message):
        _edited(tmp_path, old, new)
