"""Do the magics of a Colab notebook run as on Colab while graded? In-process: the shell is
plain IPython, the sandbox adds nothing to it."""

from __future__ import annotations

import sys

import pytest
import torch

from grader.checks.common import describe_error, jsonable
from grader.checks.families.loop_results import same_result
from grader.probe import packages
from grader.probe.shell import GradingShell, import_from_working_folder, run_cell


@pytest.fixture
def shell(monkeypatch):
    """A shell with the stand-in finders installed; they leave sys.meta_path with the test."""
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    packages.install()
    return GradingShell()


@pytest.fixture
def in_working_folder(monkeypatch, tmp_path):
    """The test's folder as the probe's working folder, on sys.path as the probe puts it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    import_from_working_folder()
    return tmp_path


def test_does_load_ext_of_a_missing_extension_fail_nothing(capsys):
    """`%load_ext tensorboard` (on Colab, not here) at the top of the imports cell failed the
    cell, and every cell after it; an extension that is there still loads."""
    shell = GradingShell()  # not the process's singleton: another test may hold IPython's
    cell = "%load_ext dlgrade_no_such_extension\n%load_ext autoreload\nx = 1\n"
    assert run_cell(shell, cell).status == "ok"
    assert shell.user_ns["x"] == 1
    assert "IPython.extensions.autoreload" in shell.extension_manager.loaded
    out = capsys.readouterr().out
    assert "%load_ext dlgrade_no_such_extension does nothing while grading" in out
    assert "%load_ext autoreload does nothing" not in out


def test_does_a_package_the_grader_lacks_cost_only_its_own_names(shell, monkeypatch, capsys):
    """`from torchinfo import summary` (Colab, after `!pip install`) stopped the imports cell
    before `from torch import nn` (17/40); libraries' own imports still fail as they should."""
    cell = (
        "from dlgrade_not_here import summary\nimport dlgrade_not_here.sub\nfrom torch import nn\n"
    )
    assert run_cell(shell, cell + "x = summary(nn.Linear(2, 2), (1, 2))\n").status == "ok"
    assert "nn" in shell.user_ns and "not installed" in repr(shell.user_ns["x"])
    assert "dlgrade_not_here is not installed on the grading machine" in capsys.readouterr().out
    library = run_cell(shell, "import importlib\nimportlib.import_module('dlgrade_nor_here')")
    assert library.status == "error" and "ModuleNotFoundError" in library.message
    monkeypatch.setattr(packages, "HIDDEN", frozenset({"dlgrade_hidden"}))  # as `solutions`
    for hidden in ("import dlgrade_hidden", "import torch.dlgrade_not_here"):
        assert "ModuleNotFoundError" in run_cell(shell, hidden).message, hidden


def test_does_a_missing_package_s_value_cost_only_what_reads_it(shell):
    """Blind round 10: validate's `correct += torchmetrics...accuracy(...).item() * n` raised
    TypeError, and its loss (trainer_loss, regularized_step, trainer_eval_mode) was lost with
    the accuracy (33/40 for one accuracy)."""
    cell = (
        "import dlgrade_metrics_not_here as tm\nloss, correct = 0.0, 0\nfor n in (4, 2):\n"
        "    loss += 0.5 * n\n    correct += tm.accuracy([n]).item() * n\n"
        "result = (loss / 6, correct / 6)\nline = f'{result[1]:.4f} {-correct}'\n"
    )
    assert run_cell(shell, cell).status == "ok"
    loss, accuracy = shell.user_ns["result"]
    assert loss == 0.5 and "not installed" in repr(accuracy)
    assert "not installed" in shell.user_ns["line"]
    seen = jsonable(shell.user_ns["result"])  # the checks' form of it, named
    assert seen[0] == 0.5 and "dlgrade_metrics_not_here" in seen[1] and "not installed" in seen[1]
    assert same_result(seen, jsonable(shell.user_ns["result"]))  # alike in the mode check


def test_does_a_module_that_needs_a_missing_package_cost_only_its_own_names(
    shell, monkeypatch, tmp_path, capsys
):
    """Blind round 11 (cifar_cnn_svm): `from torch.utils.tensorboard import SummaryWriter` at
    the top of the loops cell (Colab has tensorboard) failed there: the import of tensorboard is
    torch's own, so no stand-in, and train_epoch was never defined (31/40). A module a cell
    imports that fails for want of a package nobody has is now a stand-in; one that fails for
    anything else still fails."""
    package = tmp_path / "dlgrade_has_board"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "board.py").write_text("import dlgrade_board_not_here\nclass Writer: pass\n")
    (package / "broken.py").write_text("import dlgrade_has_board.nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cell = (
        "from dlgrade_has_board.board import Writer\nwriter = Writer('runs')\n"
        "writer.add_scalar('loss', 0.5, 1)\ndef train_epoch():\n    return 1.0\n"
    )
    assert run_cell(shell, cell).status == "ok"
    assert shell.user_ns["train_epoch"]() == 1.0
    assert "not installed" in repr(shell.user_ns["writer"])
    out = capsys.readouterr().out
    assert "dlgrade_has_board.board needs dlgrade_board_not_here" in out
    assert "ModuleNotFoundError" in run_cell(shell, "import dlgrade_has_board.broken").message
    library = run_cell(shell, "import importlib\nimportlib.import_module('dlgrade_board_not_here')")
    assert library.status == "error" and "ModuleNotFoundError" in library.message


def test_does_a_module_the_notebook_writes_import(in_working_folder, shell):
    """Blind round 11 (cifar_cnn_svm): `%%writefile cifar_helpers.py`, then `from cifar_helpers
    import to_device` in the loops cell: a kernel imports from its working folder, the probe
    did not, and the helpers became a missing package's stand-in (25/40)."""
    cell = "%%writefile dlgrade_helpers_written.py\ndef to_device(x):\n    return x + 1\n"
    assert run_cell(shell, cell).status == "ok"
    cell = "from dlgrade_helpers_written import to_device\nx = to_device(2)\n"
    assert run_cell(shell, cell).status == "ok" and shell.user_ns["x"] == 3
    assert sys.path[-1] == str(in_working_folder)  # last: nothing written there shadows a library


def test_does_an_error_from_a_stand_in_name_the_missing_module(shell):
    """Blind round 11 (cifar_cnn_svm): `from my_utils import to_device`, my_utils.py left on
    the student's Drive: the loop checks said only "cannot unpack non-iterable Absent object"."""
    cell = (
        "from dlgrade_my_utils_not_here import to_device\ndef step(x):\n    a, b = to_device(x)\n"
    )
    assert run_cell(shell, cell).status == "ok"
    try:
        shell.user_ns["step"](1)
    except TypeError as err:
        told = describe_error(err)
    assert "Absent" in told and "dlgrade_my_utils_not_here" in told, told
    assert "not installed on the grading machine nor handed in" in told, told
    # Round 11b (fnn_mnist): a number answers() took from it said "not installed" alone.
    value = repr(shell.user_ns["to_device"](1))
    assert "dlgrade_my_utils_not_here.to_device(): not installed on" in value, value
    assert value.endswith("nor handed in>"), value


def test_does_a_module_the_notebook_writes_that_needs_a_missing_package_keep_its_names(
    in_working_folder, shell
):
    """Blind round 11b (res_dense_nets): `%%writefile my_layers.py` with `import wandb` at its
    top (installed on Colab), then `from my_layers import ResBlock`: the import of wandb was the
    module's, not a cell's, so the whole module became a stand-in and its correct ResBlock and
    Transition were lost (21/50). The student's own module's imports get stand-ins as a cell's
    do; a library's still fail (the previous test)."""
    cell = (
        "%%writefile dlgrade_layers_written.py\nimport dlgrade_logger_not_here\n\n"
        "def block(x):\n    return x + 1\n"
    )
    assert run_cell(shell, cell).status == "ok"
    cell = "from dlgrade_layers_written import block\nx = block(2)\n"
    assert run_cell(shell, cell).status == "ok" and shell.user_ns["x"] == 3


def test_does_not_implemented_name_the_function_left_undone(shell):
    """Blind round 15 (res_dense_nets): a finished DenseNet over a DenseBlock left as released,
    and a finished shape_answers over its undone helper, were told "the cell still raises
    NotImplementedError", a cell that was done: the report names the function that raised."""
    blocks = "class Block:\n    def __init__(self):\n        raise NotImplementedError()\n"
    net = "class Net:\n    def __init__(self):\n        self.block = Block()\n"
    answers = "def _hw(s):\n    raise NotImplementedError()\ndef answers():\n    return _hw(1)\n"
    for cell in (blocks, net, answers):
        assert run_cell(shell, cell).status == "ok"
    for name, where in (("Net", "Block.__init__"), ("answers", "_hw")):
        try:
            shell.user_ns[name]()
        except NotImplementedError as err:
            told = describe_error(err)
        assert told == f"not implemented yet ({where} still raises NotImplementedError)", told
    typo = (
        "from torch import nn\nclass Odd(nn.Module):\n    def foward(self, x):\n        return x\n"
    )
    assert run_cell(shell, typo).status == "ok"
    try:  # torch's own raise, for a forward misspelt: torch's words say it, as before
        shell.user_ns["Odd"]()(1)
    except NotImplementedError as err:
        told = describe_error(err)
    cell_words = "not implemented yet (the cell still raises NotImplementedError)"
    assert told.startswith(cell_words + ": "), told
    assert 'Module [Odd] is missing the required "forward" function' in told, told
    # The student's forward calling nn.Module's (blind 15b, fnn v17: "the cell still raises")
    deep = "class Deep(nn.Module):\n    def forward(self, x):\n        return super().forward(x)\n"
    assert run_cell(shell, deep).status == "ok"
    try:
        shell.user_ns["Deep"]()(1)
    except NotImplementedError as err:
        told = describe_error(err)
    # a mistake, not work left undone: torch's words, with the student's call that met them
    said = "nn.Module's forward, which Deep.forward calls (super().forward), raised"
    assert told.startswith(f"{said} NotImplementedError: Module [Deep]"), told
    top = run_cell(shell, "raise NotImplementedError()\n")  # a cell's own top level: as before
    assert top.message == cell_words, top


def test_is_a_not_implemented_error_with_words_of_its_own_not_called_undone(shell):
    """Blind round 15b (mlp_tuning v04): a finished train_epoch that raises
    NotImplementedError(f"device {device} is not supported") on purpose was told "not implemented
    yet (train_epoch still raises NotImplementedError)": a raise with the student's own words
    names the function and its words; the release's bare raise still reads as undone."""
    cell = (
        "def train_epoch(device):\n    if device != 'cpu':\n"
        "        raise NotImplementedError(f'device {device} is not supported')\n    return 1.0\n"
    )
    assert run_cell(shell, cell).status == "ok"
    try:
        shell.user_ns["train_epoch"]("meta")
    except NotImplementedError as err:
        told = describe_error(err)
    assert told == "train_epoch raised NotImplementedError: device meta is not supported", told


def test_is_a_backward_without_gradients_told_why(shell):
    """Blind round 18 (fnn_mnist s11): train_epoch copied validate's @torch.no_grad(); every
    trainer check said only torch's "element 0 of tensors does not require grad and does not
    have a grad_fn", which names no cause."""
    code = (
        "import torch\n\n@torch.no_grad()\ndef step(w):\n"
        "    loss = (w * 2).sum()\n    loss.backward()\n"
    )
    assert run_cell(shell, code).status == "ok"
    try:
        shell.user_ns["step"](torch.ones(2, requires_grad=True))
    except RuntimeError as err:
        told = describe_error(err, 500)
    assert told.startswith("RuntimeError: element 0 of tensors does not require grad"), told
    assert "@torch.no_grad() on the training function" in told, told
