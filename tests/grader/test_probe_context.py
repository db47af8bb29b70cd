"""Does a check's "X is not defined" lead the student to the cell that failed, and why?"""

from __future__ import annotations

import pytest

from grader.manifest import load_manifest
from grader.probe.context import CellOutcome, MissingDefinition, ProbeContext


def _context(*cells: tuple[str, str, str], ns: dict | None = None) -> ProbeContext:
    outcomes = tuple(
        CellOutcome(i, source, status, message, number=2 * i + 3)
        for i, (source, status, message) in enumerate(cells)
    )
    return ProbeContext(ns=ns or {}, manifest=load_manifest("mlp_tuning"), cells=outcomes)


def test_does_a_missing_name_lead_back_to_the_failed_cell_it_came_from():
    """A data cell that could not load its data set: the statistics cell after it failed with a
    NameError, and the check that needs mean_image (bound in a tuple) says both."""
    ctx = _context(
        (
            'train_set = datasets.FashionMNIST("/content/drive/data")',
            "error",
            "RuntimeError: Dataset not found",
        ),
        (
            "mean_image, std_image = statistics(train_set)",
            "error",
            "NameError: name 'train_set' is not defined",
        ),
    )
    with pytest.raises(MissingDefinition) as caught:
        ctx.get("mean_image")
    assert str(caught.value) == (
        "mean_image is not defined (cell 5, which defines it, error: NameError: name 'train_set'"
        " is not defined; train_set is not defined (cell 3, which defines it, error: "
        "RuntimeError: Dataset not found))"
    )


def test_does_a_name_no_cell_defines_say_so():
    ctx = _context(("x = 1", "ok", ""), ("mean_images == 2", "error", "NameError: x"))
    with pytest.raises(MissingDefinition, match=r"no code cell of the notebook defines it"):
        ctx.get("mean_image")


def test_does_a_name_an_imports_cell_binds_lead_to_its_failure():
    """`from torchinfo import summary` (on Colab after a !pip install, not here) stopped the
    imports cell before `from torch import nn`: the class cell's NameError leads there."""
    ctx = _context(
        (
            "import torch\nfrom torchinfo import summary\nfrom torch import nn",
            "error",
            "ModuleNotFoundError: No module named 'torchinfo'",
        ),
        ("class FNN(nn.Module):\n    pass", "error", "NameError: name 'nn' is not defined"),
    )
    with pytest.raises(MissingDefinition) as caught:
        ctx.get("FNN")
    assert str(caught.value).endswith(
        "nn is not defined (cell 3, which defines it, error: ModuleNotFoundError: No module "
        "named 'torchinfo'))"
    )


def test_does_a_part_imported_from_a_module_nobody_has_name_the_module():
    """Blind round 11b (res_dense_nets): `from dense_layers import DenseBlock`, dense_layers.py
    left on the student's Drive: the checks said only "it gave a Absent, not an nn.Module"."""
    from grader.probe.packages import MissingPackage

    ctx = _context(ns={"DenseBlock": MissingPackage("dense_layers").DenseBlock, "x": 1})
    with pytest.raises(MissingDefinition) as caught:
        ctx.get("DenseBlock")
    assert str(caught.value).startswith(
        "DenseBlock is not defined: it is imported from dense_layers, which the grading machine"
        " could not load (not installed there nor handed in as dense_layers.py"
    )
    assert ctx.get("x") == 1
