"""Which modules does a probe load before it forks? The release's unconditional imports only."""

from __future__ import annotations

import nbformat

from grader.notebook_io import release_imports


def test_are_only_the_release_s_unconditional_top_level_imports_preloaded(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("import markdown_is_not_code"),
        nbformat.v4.new_code_cell("%matplotlib inline\n!pip list\nimport os\nfrom torch import nn"),
        nbformat.v4.new_code_cell("import numpy as np, json\nfrom . import relative\nimport os"),
        nbformat.v4.new_code_cell("if False:\n    import wandb\n\ndef f():\n    import optuna"),
        nbformat.v4.new_code_cell("def broken(:\n    import never"),
    ]
    path = tmp_path / "release.ipynb"
    nbformat.write(notebook, path)
    assert release_imports(path) == ("os", "torch", "numpy", "json")
    assert release_imports(tmp_path / "missing.ipynb") == ()


def test_is_the_student_cell_holding_the_last_part_found():
    """The closing experiments start after it (grader/probe/run.py: Kept): fnn_mnist's last
    part is the batch-norm training cell; a copy of it in an experiment moves the start down."""
    from grader.notebook_io import StudentNotebook, cells_to_run, last_part
    from solutions.paths import RELEASE_DIR

    release = RELEASE_DIR / "fnn_mnist" / "fnn_mnist.ipynb"
    last = "fnn_bn = FNN(784, HIDDEN_SIZE, 10, batch_norm=True).to(device)\ntrain()\n"
    code = ["import torch\n", last, "def dense_layer():\n    pass\n", "x = 1\n"]
    run = cells_to_run(StudentNotebook(release, code, [1, 2, 3, 4]), release)
    assert last_part(run, release) == 1
    assert last_part(run + [(5, "# again\n" + last, False)], release) == 4
    assert last_part(run[:1], release) is None
    assert last_part(run, tmp := release.with_name("absent.ipynb")) is None and not tmp.exists()
