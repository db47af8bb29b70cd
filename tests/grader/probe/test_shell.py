"""Do the magics of a Colab notebook run as on Colab while graded? In-process: the shell is
plain IPython, the sandbox adds nothing to it."""

from __future__ import annotations

from grader.probe.shell import GradingShell, run_cell


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
