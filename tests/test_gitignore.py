"""Is course data (student work, grades, quick figures) kept out of git, and nothing we commit?"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

IGNORED = [
    "submitted/alice/res_dense_nets/res_dense_nets.ipynb",
    "autograded/alice/res_dense_nets/report.json",
    "feedback/alice/res_dense_nets/res_dense_nets.html",
    "downloaded/res_dense_nets/archive/alice.zip",
    "release/res_dense_nets.zip",
    "release/res_dense_nets/res_dense_nets.zip",
    "res_dense_nets.zip",
    "gradebook.db",
    "gradebook.db-journal",
    "grades.csv",
    "grades-2024.csv",
    "dlgrade-grades.csv",
    "dlgrade-grades-res_dense_nets.csv",
    "leaderboard-res_dense_nets.png",
    "res_dense_nets-scores.png",
    "res_dense_nets-checks.png",
    "reports/res_dense_nets/quick/learning_curves.png",
    ".dlgrade/settings.key",
    ".venv",  # also a link to another checkout's environment (a git worktree's)
]
KEPT = [
    "release/res_dense_nets/res_dense_nets.ipynb",
    "release/res_dense_nets/precheck.py",
    "reports/res_dense_nets/learning_curves.png",
    "benchmarks/grades.csv",
    "tests/fixtures/reports.py",
]

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout"
)


def _ignored(paths: list[str]) -> set[str]:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return set(result.stdout.split("\n")) - {""}


def test_is_course_data_ignored():
    assert _ignored(IGNORED) == set(IGNORED)


def test_are_the_committed_course_files_not_ignored():
    assert _ignored(KEPT) == set()
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert tracked.stdout == "", "committed files that .gitignore now hides"
