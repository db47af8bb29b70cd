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
