"""fnn_mnist's own checks on code whose mistake shows only as a side effect (blind round 18):
a mean_std that standardises the caller's images in place, an FNN whose F.dropout stays on in
evaluation mode. In-process, with the Harness of tests/grader/families/conftest.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grader.checks.families import behaviour
from tests.fixtures.variants.mutations import reference_cells
from tests.grader.families.conftest import Harness

ID = "fnn_mnist"


@pytest.fixture(scope="module")
def fnn() -> Harness:
    return Harness.of(ID, seed=3)


IN_PLACE = """
def mean_std(dataset):
    if hasattr(dataset, "data") or isinstance(dataset, Subset):
        return _mean_std(dataset)
    total = count = 0
    for image, _ in dataset:
        total, count = total + image.double().sum().item(), count + image.numel()
    squares = 0.0
    for image, _ in dataset:
        image.sub_(total / count)  # centred in place: the caller's images change
        squares += image.double().pow(2).sum().item()
    return total / count, (squares / count) ** 0.5
"""


def test_is_a_mean_std_that_changes_the_callers_images_told_so(fnn):
    """s10: mean_std centred a list's images in place (`image.sub_(mean)`); its (mean, std) were
    right, so normalisation_stats gave 2/2. A second call on the same images shows it."""
    cells = reference_cells(ID)
    own = cells["data_tools"].replace("def mean_std(dataset):", "def _mean_std(dataset):")
    ns = fnn.namespace(own, IN_PLACE, cells["loaders"])
    result = fnn.grade(ns, ["data_statistics"])["normalisation_stats"]
    assert 1 < result.points < result.max_points, result
    assert "a list of (image, label) pairs" in result.message
    assert "changed the caller's images" in result.message, result.message
    right = fnn.grade(fnn.namespace(cells["data_tools"], cells["loaders"]), ["data_statistics"])
    assert right["normalisation_stats"].status == "pass", right


def test_is_an_fnn_whose_dropout_stays_on_in_evaluation_mode_told_so(fnn):
    """s06: forward called F.dropout(layer(x), 0.2) without training=self.training; fnn_behaviour
    said only "it computes other outputs (check the order of the layers ...)"."""
    fnn_code = reference_cells(ID)["fnn"]
    old = "return self.layers(torch.flatten(x, start_dim=1))"
    assert fnn_code.count(old) == 1
    new = (
        "x = torch.flatten(x, start_dim=1)\n"
        "        for layer in self.layers[:-1]:\n"
        "            x = F.dropout(layer(x), 0.2)\n"
        "        return self.layers[-1](x)"
    )
    results = fnn.grade(fnn.namespace(fnn_code.replace(old, new)), ["fnn_structure"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"fnn_behaviour"}
    message = results["fnn_behaviour"].message
    assert "in evaluation mode its outputs change from call to call" in message, message
    assert "training=self.training" in message


class _Sliced(nn.Module):
    def __init__(self, fresh: bool):
        super().__init__()
        self.layers, self.fresh = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)), fresh

    def forward(self, x):
        if self.fresh:  # new weights on every call
            return nn.Linear(6, 3)(x)
        return self.layers[-1](self.layers[:-1](x))  # a slice: a new Sequential, the same layers


def test_is_a_slice_of_the_models_layers_no_layer_built_in_forward():
    """The Sequential that `self.layers[:-1]` makes on every call holds the model's own layers:
    behaviour.outputs counted it as a layer with weights built in forward, and s06's message
    blamed "forward builds a new Sequential on every call" for its F.dropout left on."""
    x = torch.randn(5, 6)
    assert behaviour.outputs(_Sliced(False), x, 0)["built_in_forward"] == []
    assert behaviour.outputs(_Sliced(True), x, 0)["built_in_forward"] == ["Linear"]
