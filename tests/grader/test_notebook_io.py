"""Which modules does a probe load before it forks? The release's unconditional imports only."""

from __future__ import annotations

import json

import nbformat

from grader.notebook_io import (
    StudentNotebook,
    cells_to_run,
    last_part,
    parse_notebook,
    patched_parts,
    redefined_parts,
    release_imports,
    star_imports,
    stopped_cells,
)
from grader.probe.kept import Kept
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


def test_is_the_student_cell_holding_the_last_part_found():
    """The closing experiments start after it (grader/probe/kept.py): fnn_mnist's last
    part is the batch-norm training cell; a copy of it in an experiment moves the start down."""
    release = RELEASE_DIR / "fnn_mnist" / "fnn_mnist.ipynb"
    last = "fnn_bn = FNN(784, HIDDEN_SIZE, 10, batch_norm=True).to(device)\ntrain()\n"
    code = ["import torch\n", last, "def dense_layer():\n    pass\n", "x = 1\n"]
    run = cells_to_run(StudentNotebook(release, code, [1, 2, 3, 4]), release)
    assert last_part(run, release) == 1
    assert last_part(run + [(5, "# again\n" + last, False)], release) == 4
    assert last_part(run[:1], release) is None
    assert last_part(run, tmp := release.with_name("absent.ipynb")) is None and not tmp.exists()


def test_is_the_last_part_found_by_its_code_not_by_nbgrader_s_placeholder_comment(tmp_path):
    """Students keep "# YOUR CODE HERE" in any part: found by it, the last part would be the
    last cell that kept the comment, and every part after it an experiment."""
    release = nbformat.v4.new_notebook()
    part = nbformat.v4.new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()")
    last = nbformat.v4.new_code_cell("# YOUR CODE HERE\nresult = fit(model)")
    for cell in (part, last):
        cell.metadata["nbgrader"] = {"solution": True, "grade_id": str(id(cell))}
    release.cells = [part, last]
    nbformat.write(release, path := tmp_path / "release.ipynb")
    cells = [(1, "# YOUR CODE HERE\nx = 1", False), (2, "result = fit(model)", False)]
    assert last_part(cells + [(3, "# YOUR CODE HERE\ny = 2", False)], path) == 1


def test_is_the_last_part_found_when_its_first_line_was_edited():
    """Blind round 11b (fnn_mnist): `fnn_bn = FNN(...)` and `.to(device)` on two lines, and a B1
    variant of dense_layer (batch norm after the activation) at the end: no last part was found,
    the variant was graded and cost dense_layer_batchnorm and fnn_bn_accuracy. The cell's own
    loading line finds it; a line the release has elsewhere (`if GRADING:`) does not."""
    release = RELEASE_DIR / "fnn_mnist" / "fnn_mnist.ipynb"
    edited = (
        "fnn_bn = FNN(784, HIDDEN_SIZE, 10, batch_norm=True)\nfnn_bn = fnn_bn.to(device)\n"
        "if GRADING:\n"
        '    fnn_bn.load_state_dict(torch.load("fnn_bn.pt", map_location=device, '
        "weights_only=True))\n"
    )
    code = ["if GRADING:\n    fnn = 1\n", edited, "def dense_layer():\n    pass\n"]
    assert last_part(cells_to_run(StudentNotebook(release, code, [1, 2, 3]), release), release) == 1
    assert last_part([(1, code[0], False), (3, code[2], False)], release) is None


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
    release = RELEASE_DIR / "mlp_tuning" / "mlp_tuning.ipynb"
    # The probe reports which cell's definition the checks met (grader/probe/kept.py).
    notes = redefined_parts(parsed, release, {"MLP": 3, "helper": 4})
    assert len(notes) == 1 and notes[0].startswith("MLP is defined in cells 2 and 3"), notes
    assert "the last one, cell 3, is graded" in notes[0]
    # Cell 3 a closing experiment that Kept put back: cell 2's is graded, and the note says so.
    (note,) = redefined_parts(parsed, release, {"MLP": 2})
    assert "cell 2's is graded" in note and "experiments after" in note, note
    # A probe that stopped before its cells were done reported nothing: the note still lists.
    assert redefined_parts(parsed, release, {}) == ["MLP is defined in cells 2 and 3: keep one"]


def test_is_a_last_part_that_defines_functions_found_by_its_names_and_first_cell():
    """Blind round 11b (cnn_techniques, last part `def confusion`): `device=device` in its
    signature hid it (no closing experiments: an exploring `class Net` at the end was graded),
    and an exploring `def confusion` at the end became the last part itself, graded in place of
    the student's."""
    release = RELEASE_DIR / "cnn_techniques" / "cnn_techniques.ipynb"
    cells = json.loads(release.read_text())["cells"]
    (show,) = [
        "".join(c["source"]) for c in cells if "_matrix = confusion(" in "".join(c["source"])
    ]
    code = [
        "class Net:\n    pass\n",
        "def confusion(model, loader, device=device):\n    return 1\n",
        show,  # the given cell that shows the matrix
        "def confusion(m, l, d):  # normalised, to explore\n    return 2\n",
        "class Net:  # wider, to explore\n    pass\n",
    ]
    run = cells_to_run(StudentNotebook(release, code, [1, 2, 3, 4, 5]), release)
    assert [given for _, _, given in run] == [False, False, True, False, False]
    assert last_part(run, release) == 1


def test_does_a_method_set_outside_its_class_get_a_note_naming_the_cell():
    """Blind round 12b (res_dense_nets): an ablation cell after A4 set `ResBlock.forward` to a
    forward without the skip and never put it back; resblock_skip then said the skip connection
    is missing of a class whose own cell has it, with no word of the patch. The probe reports
    which patches the checks meet (Kept.patched); only solution classes' methods are noted."""
    release = RELEASE_DIR / "res_dense_nets" / "res_dense_nets.ipynb"
    patched = {"ResBlock.forward": 12, "Helper.run": 3, "DenseNet.x; rm": 4}
    (note,) = patched_parts(release, patched)
    assert note.startswith("ResBlock.forward is set in cell 12, outside the class"), note
    assert "a new name (a subclass of ResBlock)" in note


def test_is_a_cell_that_stops_the_notebook_noted():
    # Blind round 13 (cifar_cnn_svm): `raise SystemExit("stopping after part 1")` left after part
    # 1 stopped the student's Run all there; the grader ran part 2 anyway (full marks, rightly:
    # every part is checked on its own) and said nothing of it.
    from grader.probe.context import CellOutcome

    cells = [
        CellOutcome(0, "x = 1", "ok", "", 3),
        CellOutcome(1, "raise SystemExit('stop')", "error", "SystemExit: stop", 44),
        CellOutcome(2, "1 / 0", "error", "ZeroDivisionError: division by zero", 45),
    ]
    (note,) = stopped_cells(cells)
    assert note.startswith("cell 44 stops the notebook (SystemExit: stop)")
    assert "did not run in your notebook" in note
    assert stopped_cells(cells[::2]) == []
    # Blind 16: a written answer typed into a code cell, said nowhere (it costs no points).
    prose = CellOutcome(3, "The loss falls.", "error", "SyntaxError: invalid syntax (x, 1)", 46)
    (note,) = stopped_cells([prose])
    assert note.startswith("cell 46 is not Python (SyntaxError") and "Markdown cell" in note


def _kept_and_noted(code: list[str], assignment: str) -> tuple[Kept, dict, list[str]]:
    """Run `code` cell by cell under Kept, as the probe does: (the Kept, the namespace, the notes
    `redefined_parts` gives for what Kept says the checks meet)."""
    keep, ns = Kept(set()), {"__name__": "__main__"}
    for index, source in enumerate(code):
        before = dict(ns)
        exec(source, ns)  # noqa: S102 - test code
        keep.after(index, before, ns)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in code]
    parsed = parse_notebook(f"{assignment}.ipynb", nbformat.writes(notebook).encode())
    release = RELEASE_DIR / assignment / f"{assignment}.ipynb"
    graded = keep.graded(ns, list(range(1, len(code) + 1)))
    return keep, ns, redefined_parts(parsed, release, graded)


def test_is_a_part_a_later_cell_binds_a_value_to_noted():
    """Blind round 15 (cifar_cnn_svm v05): a cell after smallest_width's tried it as
    `smallest_width = smallest_width({...})`; the check said only "'int' object is not
    callable". The probe reports the cell that bound the value (Kept), and the note names it."""
    code = [
        "def smallest_width(accuracies, target=0.99):\n    return 4\n",
        "smallest_width = smallest_width({4: 1.0})\n",
    ]
    keep, ns, (note,) = _kept_and_noted(code, "cifar_cnn_svm")
    assert keep.graded(ns, [1, 2]) == {"smallest_width": 2}
    assert note.startswith("smallest_width is defined in cell 1, but cell 2 then binds"), note
    # Defined again after the value: that definition is what the checks meet.
    exec(code[0], before := dict(ns))  # noqa: S102 - test code
    keep.after(2, ns, before)
    assert keep.graded(before, [1, 2, 3]) == {"smallest_width": 3}


def test_is_a_part_a_later_cell_binds_to_another_function_noted_as_that_function():
    """Blind round 15b (mlp_tuning v05): a later cell wrote `evaluate = evaluate_fixed`, a fixed
    version; the checks met evaluate_fixed and passed, but the note said the cell "binds the name
    to a value: the checks meet that value ...; give it another name"."""
    code = [
        "def evaluate(model, loader, device):\n    return 0\n",
        "def evaluate_fixed(model, loader, device):\n    return 1\n\n\nevaluate = evaluate_fixed\n",
    ]
    keep, ns, (note,) = _kept_and_noted(code, "mlp_tuning")
    assert keep.graded(ns, [1, 2]) == {"evaluate": 2}
    assert "binds the name to evaluate_fixed: the checks meet evaluate_fixed" in note, note
    assert "value" not in note and "another name" not in note, note


def test_is_a_code_cell_turned_into_a_raw_or_markdown_cell_noted():
    """Blind round 16 (cnn_techniques): the `confusion` cell made raw lost confusion_rows with
    "no cell of the notebook defines it", though the raw cell holds `def confusion`."""
    solution = {"nbgrader": {"grade_id": "confusion", "solution": True, "cell_type": "code"}}
    answer = {"nbgrader": {"grade_id": "answer", "solution": True, "cell_type": "markdown"}}
    cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_raw_cell(
            "def confusion(model, loader, device):\n    pass", metadata=solution
        ),
        nbformat.v4.new_markdown_cell("*Your answer here.*", metadata=answer),
        nbformat.v4.new_code_cell("code = 2", metadata=solution),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    parsed = parse_notebook("n.ipynb", nbformat.writes(notebook).encode())
    assert parsed.warnings == [
        "cell 2 (confusion) is a raw cell, so it did not run and defined nothing: turn it back "
        "into a code cell"
    ]


def test_is_a_star_import_that_takes_over_built_ins_noted():
    # Blind round 18 (res s06): after `from torch import *` DenseBlock's range(num_layers) was
    # torch.range: every DenseBlock check said 'range() missing 1 required positional
    # arguments: "end"', and nothing said why.
    cells = [
        "import torch",
        "from torch import *",
        "from torch.nn import *",
        "from no_such import *",
    ]
    notebook = StudentNotebook(path=None, code_cells=cells, numbers=[3, 5, 7, 9])
    (note,) = star_imports(notebook)
    assert note.startswith("cell 5: `from torch import *` replaces Python's built-ins"), note
    assert " range, round, sum with torch's" in note and "import torch)" in note, note


def test_is_a_placeholder_answered_after_the_last_part_graded_on_the_answer():
    """Blind round 18 (res z20): every part written in one cell after the notebook's last, the
    given cells left raising NotImplementedError, scored 0 of 50: a definition rebound after
    the last part is an experiment, and the checks met what the given cells had met, the
    placeholders. A placeholder is no answer: the later definition stands; a real one stays."""
    stub = "class Block:\n    def __init__(self):\n        super().__init__()\n"
    stub += "        raise NotImplementedError()\n"
    real = "class Block:\n    def __init__(self):\n        self.ok = True\n"
    for first, kept_first in ((stub, False), (real.replace("True", "False"), True)):
        cells = [first, "try:\n    Block()\nexcept NotImplementedError:\n    pass\n", "x = 1", real]
        keep, ns = Kept({1}, closing_after=2), {"__name__": "__main__"}
        for index, source in enumerate(cells):
            before = dict(ns)
            exec(source, ns)  # noqa: S102 - test code
            keep.after(index, before, ns, {"Block"} if index == 1 else set())
        assert ("Block" in keep.clobbered()) is kept_first, (first, keep.clobbered())
