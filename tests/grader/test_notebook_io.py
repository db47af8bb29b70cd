"""Which modules does a probe load before it forks? The release's unconditional imports only."""

from __future__ import annotations

import nbformat

from grader.notebook_io import parse_notebook, redefined_parts, release_imports
from solutions.paths import RELEASE_DIR


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


def test_does_a_part_defined_again_in_a_later_cell_say_which_one_is_graded():
    """Blind round 11: mlp_tuning's MLP, right in its own cell, was defined again by an
    exploration cell at the end of the notebook. The last definition is graded (as a run from
    top to bottom leaves it): it cost 12 points with messages that named only parameter counts."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("class MLP: markdown"),
        nbformat.v4.new_code_cell("class MLP:\n    pass\n\ndef evaluate(m):\n    return 1"),
        nbformat.v4.new_code_cell("!nvidia-smi\nclass MLP:  # a wider one, to explore\n    pass"),
        nbformat.v4.new_code_cell(
            "def helper():\n    def MLP():\n        pass\n\ndef helper():\n  0"
        ),
        nbformat.v4.new_code_cell("x = " + "-" * 100_000 + "1"),  # MemoryError in ast.parse
        nbformat.v4.new_code_cell("x = 1" + "+1" * 200_000),  # RecursionError: passed over
    ]
    parsed = parse_notebook("mlp_tuning.ipynb", nbformat.writes(notebook).encode())
    notes = redefined_parts(parsed, RELEASE_DIR / "mlp_tuning" / "mlp_tuning.ipynb")
    assert len(notes) == 1 and notes[0].startswith("MLP is defined in cells 2 and 3"), notes
    assert "cell 3, is graded" in notes[0]
