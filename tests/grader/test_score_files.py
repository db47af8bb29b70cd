"""Can an instructor upload the score files as they are? Only final grades become numbers, each
row says its status and lateness, and what was handed in wrong says so in one status.

One class is graded once by the real CLI and shared: on time, late (nbgrader's late penalty
"zero"), not JSON, over the size limit, no notebook, a renamed notebook, and no timestamp.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc

from grader.lateness import UNDATED
from tests.conftest import run_cli
from tests.fixtures.course import ID, SUBMITTED_AT, make_class, scores

DUE = "2026-11-21 00:00:00.000000 UTC"
TWO_DAYS_LATE = "2026-11-23 00:00:00.000000 UTC"
ZERO_PENALTY = 'c = get_config()\nc.LateSubmissionPlugin.penalty_method = "zero"\n'


def _url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def _with_due_date(root: Path) -> Path:
    """The course's gradebook with the assignment due at DUE, as instructors set it."""
    result = run_cli("nbgrader", "db", "assignment", "add", ID, f"--duedate={DUE}", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def _rows(root: Path) -> dict[str, dict[str, str]]:
    text = (root / f"dlgrade-{ID}.csv").read_text()
    return {row["student"]: row for row in csv.DictReader(io.StringIO(text))}


def _report(root: Path, student: str) -> dict:
    return json.loads((root / "autograded" / student / ID / "report.json").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory, reference_submission):
    root = make_class(
        tmp_path_factory.mktemp("score-files"),
        reference_submission,
        {
            "ann": "reference",
            "bob": "reference",
            "cy": "broken",
            "dee": "oversized",
            "eve": "no_notebook",
            "fay": "renamed",
            "gus": "reference",
        },
        stamps={"bob": TWO_DAYS_LATE, "gus": None},
    )
    (root / "nbgrader_config.py").write_text(ZERO_PENALTY)
    _with_due_date(root)
    result = run_cli("grader", "grade", str(root / "submitted"), "--jobs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result.stdout


def test_is_nothing_gradable_one_final_status_with_its_reason(graded, manifest):
    """No notebook, one over the size limit and one that is not JSON are the student's doing:
    one status, "ungradable", a final 0 with the reason, in the report, CSV and gradebook."""
    root, stdout = graded
    rows, grades = _rows(root), scores(_url(root))
    for student, why in (("cy", "invalid JSON"), ("dee", "size limit"), ("eve", "no notebook")):
        report = _report(root, student)
        assert report["status"] == "ungradable" and why in report["reason"], report
        assert rows[student]["status"] == "ungradable" and rows[student]["score"] == "0"
        assert why in rows[student]["reason"] and grades[student] == 0
        assert student in stdout.split("students to look at")[1]
    assert rows["ann"]["status"] == "graded" and rows["ann"]["score"] == f"{manifest.max_score:g}"


def test_is_an_oversized_notebook_said_to_be_over_the_size_limit(graded):
    root, _ = graded
    reason = _report(root, "dee")["reason"]
    assert "over the size limit (60 MB, limit 50 MB)" in reason, reason
    assert "no notebook" not in reason


def test_does_nbgrader_s_late_penalty_apply_and_show_in_csv_summary_and_gradebook(graded, manifest):
    root, stdout = graded
    late = _report(root, "bob")
    two_days = 2 * 86400.0  # TWO_DAYS_LATE is two days after DUE
    assert late["late"] == {"seconds": two_days, "penalty": manifest.max_score}
    assert late["score"] == 0 and sum(c["points"] for c in late["checks"]) == manifest.max_score
    rows = _rows(root)
    assert (rows["bob"]["seconds_late"], rows["bob"]["score"]) == (f"{two_days:.0f}", "0")
    assert rows["bob"]["late_penalty"] == f"{manifest.max_score:g}"
    assert rows["ann"]["seconds_late"] == "0" and rows["ann"]["late_penalty"] == "0"
    assert "late: 1" in stdout and "bob" in stdout.split("students to look at")[1]
    with Gradebook(_url(root)) as gb:
        submission = gb.find_submission(ID, "bob")
        assert submission.late_submission_penalty == manifest.max_score
        assert submission.score - submission.late_submission_penalty == 0  # nbgrader export
        assert gb.find_submission(ID, "ann").late_submission_penalty == 0


def test_is_the_submission_s_own_timestamp_written_next_to_the_graded_notebook(graded):
    """As nbgrader's autograde: the time the student handed in, not the time of grading."""
    root, _ = graded
    for student, stamp in (("ann", SUBMITTED_AT), ("bob", TWO_DAYS_LATE)):
        written = (root / "autograded" / student / ID / "timestamp.txt").read_text()
        assert parse_utc(written) == parse_utc(stamp)


def test_does_a_renamed_notebook_show_under_students_to_look_at(graded, manifest):
    root, stdout = graded
    assert _report(root, "fay")["score"] == manifest.max_score
    flagged = stdout.split("students to look at")[1]
    assert "fay" in flagged and f"Copy of {ID}.ipynb" in flagged


def test_is_a_course_s_own_late_penalty_plugin_refused_in_one_line(tmp_path, reference_submission):
    root = make_class(tmp_path, reference_submission, {"gus": "reference"})
    (root / "nbgrader_config.py").write_text(
        'c = get_config()\nc.AssignLatePenalties.plugin_class = "course.plugins.HalfOff"\n'
    )
    result = run_cli("grader", "grade", str(root / "submitted"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "course.plugins.HalfOff" in result.stderr and not (root / "autograded").exists()


def test_is_a_submission_without_timestamp_on_time_and_said_so(graded, manifest):
    """As nbgrader: no timestamp.txt means on time even with a due date; the report says so,
    and the summary lists the student to look at."""
    root, stdout = graded
    report = _report(root, "gus")
    assert report["score"] == manifest.max_score and report["late"] is None, report
    assert UNDATED in report["notes"], report["notes"]
    assert "gus" in stdout.split("students to look at")[1]
    assert UNDATED not in _report(root, "ann")["notes"]
