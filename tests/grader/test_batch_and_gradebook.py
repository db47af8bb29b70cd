"""Does a whole class grade into nbgrader's gradebook, idempotently, and resume after a kill?"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grader.uids import orphaned
from tests.conftest import REPO, run_cli
from tests.fixtures.course import make_class, scores

ID = "res_dense_nets"


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, reference_submission):
    root = make_class(
        tmp_path_factory.mktemp("class"),
        reference_submission,
        {"ada": "reference", "ben": "no_weights", "cy": "broken"},
    )
    result = run_cli(
        "grader",
        "grade",
        str(root / "submitted"),
        "--assignment",
        ID,
        "--jobs",
        "2",
        "--csv",
        str(root / "grades.csv"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_does_each_student_get_a_report_and_a_gradebook_entry(graded_class, manifest):
    url = f"sqlite:///{graded_class / 'gradebook.db'}"
    got = scores(url)
    assert got["ada"] == manifest.max_score
    assert got["ben"] == manifest.max_score - manifest.check("densenet_accuracy").points
    assert got["cy"] == 0
    for student in ("ada", "ben", "cy"):
        report = json.loads(
            (graded_class / "autograded" / student / ID / "report.json").read_text()
        )
        assert report["student"] == student and report["score"] == got[student]
    rows = (graded_class / "grades.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[1].startswith(f"ada,res_dense_nets,{manifest.max_score:g}")


def test_is_a_new_gradebook_what_nbgrader_would_have_made(graded_class, tmp_path, monkeypatch):
    """The grader creates a course's gradebook itself (nbgrader's `Gradebook` would run the
    `alembic heads` command for it): the same tables and columns, stamped with the revision
    that command prints, so that nbgrader's migrations and tools take it as their own."""
    from sqlalchemy import create_engine, inspect, text

    def shape(url: str) -> tuple[dict, list]:
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                found = inspect(connection)
                tables = {
                    t: sorted(c["name"] for c in found.get_columns(t))
                    for t in found.get_table_names()
                }
                stamp = connection.execute(text("SELECT version_num FROM alembic_version"))
                return tables, [row[0] for row in stamp]
        finally:
            engine.dispose()

    nbgraders = f"sqlite:///{tmp_path / 'nbgrader.db'}"
    # nbgrader runs `alembic` from PATH
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    Gradebook(nbgraders).close()
    assert shape(f"sqlite:///{graded_class / 'gradebook.db'}") == shape(nbgraders)


def test_does_nbgrader_generate_feedback_work_on_the_result(graded_class):
    shutil.copy(REPO / "nbgrader_config.py", graded_class)
    shutil.copytree(REPO / "source", graded_class / "source", dirs_exist_ok=True)
    result = run_cli("nbgrader", "generate_feedback", ID, "--force", cwd=graded_class)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (graded_class / "feedback" / "ben" / ID / f"{ID}.html").read_text()
    assert "densenet_accuracy" in html and "densenet.pt was not submitted" in html


def test_does_grading_again_change_nothing(graded_class):
    url = f"sqlite:///{graded_class / 'gradebook.db'}"
    before = scores(url)
    reports = {p: p.read_text() for p in graded_class.glob("autograded/*/*/report.json")}
    started = time.monotonic()
    result = run_cli("grader", "grade", str(graded_class), "--assignment", ID, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 60  # nothing regraded: start-up and bookkeeping only
    assert scores(url) == before
    assert {p: p.read_text() for p in reports} == reports
    with Gradebook(url) as gb:
        assert len(gb.find_assignment(ID).submissions) == 3


def test_does_an_interrupted_run_resume_without_regrading(tmp_path, reference_submission, manifest):
    root = make_class(tmp_path, reference_submission, {f"s{i}": "reference" for i in range(4)})
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grader",
            "grade",
            str(root / "submitted"),
            "--assignment",
            ID,
            "--quiet",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(root.glob("autograded/*/*/report.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # the hardest stop: no clean-up at all
    proc.wait()
    done = {p: p.read_text() for p in root.glob("autograded/*/*/report.json")}
    assert 1 <= len(done) < 4
    result = run_cli("grader", "grade", str(root / "submitted"), "--assignment", ID, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: p.read_text() for p in done} == done  # the finished ones were not regraded
    assert scores(f"sqlite:///{root / 'gradebook.db'}") == {
        f"s{i}": manifest.max_score for i in range(4)
    }
    assert orphaned() == {}  # the killed run's sandboxes died with it


def _report_times(root: Path) -> dict[str, int]:
    return {
        p.parent.parent.name: p.stat().st_mtime_ns
        for p in root.glob(f"autograded/*/{ID}/report.json")
    }


def test_does_ctrl_c_in_a_force_run_suggest_what_finishes_it(tmp_path, reference_submission):
    """A `--force` run stopped by Ctrl-C: running the same command again would start over,
    and a plain re-run would reuse the reports not regraded yet. The advice names exactly
    the students left, without --force; following it regrades each of them once."""
    root = make_class(tmp_path, reference_submission, {f"s{i}": "reference" for i in range(3)})
    submitted = str(root / "submitted")
    assert run_cli("grader", "grade", submitted, "--jobs", "2", "--quiet").returncode == 0
    before = _report_times(root)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", submitted, "--force", "--quiet"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's default action even where this suite runs in the background, which starts
        # it with SIGINT ignored (and Python then never raises KeyboardInterrupt).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while _report_times(root) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2 and stderr.count("\n") == 1, stderr
    stopped = _report_times(root)
    left = sorted(s for s in before if stopped[s] == before[s])
    assert 1 <= len(left) < 3, stderr
    command = shlex.split(stderr.split("run: ", 1)[1])
    assert "--force" not in command and command[command.index("--student") + 1 :] == left
    assert command[:3] == ["python", "-m", "grader"], command
    result = run_cli(*command[2:])
    assert result.returncode == 0, result.stderr[-3000:]
    after = _report_times(root)
    assert all(after[s] != before[s] for s in before)  # everyone regraded...
    assert all(after[s] == stopped[s] for s in before if s not in left)  # ...once


def test_does_a_postgresql_gradebook_receive_the_grades(
    postgres, tmp_path, reference_submission, manifest
):
    root = make_class(
        tmp_path / "course", reference_submission, {"dee": "reference", "eve": "no_weights"}
    )
    result = run_cli(
        "grader",
        "grade",
        str(root / "submitted"),
        "--assignment",
        ID,
        "--gradebook",
        postgres,
        "--jobs",
        "2",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert scores(postgres) == {
        "dee": manifest.max_score,
        "eve": manifest.max_score - manifest.check("densenet_accuracy").points,
    }
