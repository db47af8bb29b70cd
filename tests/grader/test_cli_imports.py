"""Do the commands that grade nothing stay quick? They must not import torch (seconds, and
far more on a cold disk), nor must the course's nbgrader_config.py, which every nbgrader command
loads. Asked by the modules imported (`python -X importtime`), not by a clock."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.fixtures.reports import check, report, save_course

HEAVY = ("torch", "torchvision", "nbgrader", "matplotlib")


def _imported(stderr: str) -> set[str]:
    """Top-level packages named by `-X importtime` lines ("import time: us | us | name")."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def _python(*args: str) -> subprocess.CompletedProcess:
    """`python -X importtime ARGS` from the repository root; output as text."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_does_help_import_nothing_heavy():
    result = _python("-m", "grader", "--help")
    assert result.returncode == 0 and "grade" in result.stdout
    assert not _imported(result.stderr) & set(HEAVY), _imported(result.stderr) & set(HEAVY)


def test_does_show_import_nothing_heavy(tmp_path):
    save_course(tmp_path, [report("ann", [check("resblock_is_module")])])
    result = _python("-m", "grader", "show", "ann", "--course", str(tmp_path))
    assert result.returncode == 0 and "resblock_is_module" in result.stdout
    assert not _imported(result.stderr) & set(HEAVY), _imported(result.stderr) & set(HEAVY)


def test_does_the_course_config_import_nothing_heavy():
    """nbgrader runs the course's nbgrader_config.py for every command (generate_assignment
    took 60-83 s when it imported torch)."""
    code = (
        "import runpy; from traitlets.config import Config; "
        "runpy.run_path('nbgrader_config.py', init_globals={'get_config': Config})"
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = _imported(result.stderr)
    assert "solutions" in imported  # it did look for the data
    assert not imported & {"torch", "torchvision", "numpy"}, imported
