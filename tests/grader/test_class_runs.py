"""Grading a class the way instructors run it: regrades that stay right, layouts reported,
a class summary with charts, feedback in step, operator mistakes in one line.

Most questions run the real CLI on a small nbgrader course; the retry policy of the batch is
asked in-process with the grading step replaced, since an outside kill cannot be timed.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from grader import slots
from grader.batch import Submission, find_submissions, grade_many
from grader.grade import GradeConfig, run_fingerprint
from grader.judge import load_expected
from grader.report import Report
from grader.settings_key import settings_seed
from grader.supervise import TimeLimits
from tests.conftest import REPO, run_cli
from tests.fixtures.course import ID, make_class, scores


def _reports(root: Path) -> dict[str, dict]:
    return {
        p.parent.parent.name: json.loads(p.read_text())
        for p in sorted(root.glob(f"autograded/*/{ID}/report.json"))
    }


def _grade(*args: str) -> str:
    result = run_cli("grader", "grade", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def course(tmp_path_factory, reference_submission):
    """A class of three graded once: two full, one missing a weights file."""
    root = make_class(
        tmp_path_factory.mktemp("course"),
        reference_submission,
        {"ann": "reference", "bob": "reference", "cat": "no_weights"},
    )
    stdout = _grade(str(root / "submitted"), "--jobs", "2")
    return root, stdout


def test_does_a_class_run_print_one_summary_and_write_the_charts(course, manifest):
    root, stdout = course
    assert "total" not in stdout.splitlines()[0]  # no per-student tables by default
    assert "3" in stdout and "densenet_accuracy" in stdout  # the worst check is listed
    csv = root / f"dlgrade-{ID}.csv"
    assert csv.is_file() and len(csv.read_text().splitlines()) == 4
    charts = sorted(p.name for p in root.glob("*.png"))
    assert charts == [f"{ID}-checks.png", f"{ID}-scores.png"]
    assert all((root / c).stat().st_size > 10_000 for c in charts)


def test_is_the_assignment_guessed_and_nbgrader_s_timestamp_written(course):
    root, _ = course
    for student in ("ann", "bob", "cat"):
        assert (root / "autograded" / student / ID / "timestamp.txt").read_text().endswith("UTC")


def test_does_grading_one_student_s_folder_update_that_student_in_the_course(course, manifest):
    root, _ = course
    before = _reports(root)
    (root / "submitted" / "cat" / ID / "densenet.pt").write_bytes(
        (root / "submitted" / "ann" / ID / "densenet.pt").read_bytes()
    )
    _grade(str(root / "submitted" / "cat"), "--quiet")
    after = _reports(root)
    assert after["cat"]["score"] == manifest.max_score > before["cat"]["score"]
    assert after["ann"] == before["ann"] and after["bob"] == before["bob"]
    assert scores(f"sqlite:///{root / 'gradebook.db'}")["cat"] == manifest.max_score
    # The course's CSV keeps the whole class (an instructor found it cut to cat's row).
    rows = list(csv.DictReader(io.StringIO((root / f"dlgrade-{ID}.csv").read_text())))
    assert {r["student"]: float(r["score"]) for r in rows} == {
        s: report["score"] for s, report in after.items()
    }


def _stamps(root: Path) -> dict[str, int]:
    return {
        s: (root / "autograded" / s / ID / "report.json").stat().st_mtime_ns
        for s in ("ann", "bob", "cat")
    }


def test_does_student_regrade_only_those_named_and_force_everyone(course):
    root, _ = course
    first = _stamps(root)
    _grade(str(root / "submitted"), "--student", "bob", "--quiet")
    second = _stamps(root)
    assert second["bob"] > first["bob"]
    assert second["ann"] == first["ann"] and second["cat"] == first["cat"]
    _grade(str(root / "submitted"), "--force", "--quiet")
    third = _stamps(root)
    assert all(third[s] > second[s] for s in third)


def test_does_student_narrow_force_to_those_named(course):
    root, _ = course
    first = _stamps(root)
    _grade(str(root / "submitted"), "--force", "--student", "ann", "cat", "--quiet")
    second = _stamps(root)
    assert second["ann"] > first["ann"] and second["cat"] > first["cat"]
    assert second["bob"] == first["bob"]


def test_does_a_tighter_time_limit_not_stick_to_the_cache(tmp_path, reference_submission, manifest):
    root = make_class(tmp_path, reference_submission, {"dan": "reference"})
    _grade(str(root / "submitted"), "--timeout", "3", "--quiet")
    limited = _reports(root)["dan"]
    _grade(str(root / "submitted"), "--quiet")
    again = _reports(root)["dan"]
    assert again["fingerprint"] != limited["fingerprint"]
    assert again["score"] == manifest.max_score


def test_does_a_regrade_give_every_student_the_same_grade(tmp_path, reference_submission):
    """The probe settings come from the course's key, not from each run: a `--force` regrade
    gives a buggy student the very same points (a summing DenseBlock passes any drawn setting
    with one dense layer, so fresh draws moved its total), and two students with the same
    mistake get the same points."""
    same = "variant:summed_features"
    root = make_class(tmp_path, reference_submission, {"gus": same, "hal": same})
    _grade(str(root / "submitted"), "--jobs", "2", "--quiet")
    first = _reports(root)
    _grade(str(root / "submitted"), "--jobs", "2", "--force", "--quiet")
    second = _reports(root)
    points = lambda r: [(c["name"], c["points"]) for c in r["checks"]]  # noqa: E731
    assert points(second["gus"]) == points(first["gus"]) == points(first["hal"])
    assert points(second["hal"]) == points(first["hal"])
    assert first["gus"]["score"] < first["gus"]["max_score"]
    # A new key means new settings, so a plain re-run regrades everyone rather than reuse.
    settings_seed(root, ID).path.unlink()
    _grade(str(root / "submitted"), "--jobs", "2", "--quiet")
    third = _reports(root)
    assert all(third[s]["fingerprint"] != second[s]["fingerprint"] for s in ("gus", "hal"))


def test_does_the_fingerprint_cover_what_a_grade_depends_on(manifest):
    expected = load_expected(ID)
    base = run_fingerprint(manifest, expected, GradeConfig())
    assert base == run_fingerprint(manifest, expected, GradeConfig())
    first = manifest.checks[0].model_copy(update={"points": 9})
    changed_points = manifest.model_copy(update={"checks": (first, *manifest.checks[1:])})
    assert run_fingerprint(changed_points, expected, GradeConfig()) != base
    assert run_fingerprint(manifest, {**expected, "x": 1}, GradeConfig()) != base
    shorter = GradeConfig(time=TimeLimits(total=3))
    assert run_fingerprint(manifest, expected, shorter) != base
    other_data = run_fingerprint(manifest, expected, GradeConfig(), data_id="another split")
    assert other_data != base  # the test split graded on (its hash, or "missing")


def test_are_layout_problems_said_in_the_report(tmp_path, reference_submission):
    root = tmp_path / "course"
    flat = root / "submitted" / "eve"
    shutil.copytree(reference_submission, flat)  # no <id>/ folder
    two = root / "submitted" / "fay" / ID
    shutil.copytree(reference_submission, two)
    shutil.copy(two / f"{ID}.ipynb", two / "draft.ipynb")
    renamed = root / "submitted" / "gus" / ID
    shutil.copytree(reference_submission, renamed)
    (renamed / f"{ID}.ipynb").rename(renamed / f"Copy of {ID}.ipynb")
    _grade(str(root / "submitted"), "--assignment", ID, "--quiet")
    reports = _reports(root)
    assert "not in submitted/eve/res_dense_nets/" in " ".join(reports["eve"]["notes"])
    assert "also in the folder, not graded: draft.ipynb" in " ".join(reports["fay"]["notes"])
    assert f"graded Copy of {ID}.ipynb" in " ".join(reports["gus"]["notes"])
    assert {r["score"] for r in reports.values()} == {reports["eve"]["max_score"]}


def test_does_nbgrader_generate_feedback_follow_a_regrade(tmp_path, reference_submission):
    root = make_class(tmp_path, reference_submission, {"hal": "no_weights"})
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "source", root / "source")
    _grade(str(root / "submitted"), "--quiet")
    assert run_cli("nbgrader", "generate_feedback", ID, cwd=root).returncode == 0
    feedback = next((root / "feedback" / "hal" / ID).glob("*.html")).read_text()
    (root / "submitted" / "hal" / ID / "densenet.pt").write_bytes(
        (reference_submission / "densenet.pt").read_bytes()
    )
    _grade(str(root / "submitted"), "--quiet")
    assert run_cli("nbgrader", "generate_feedback", ID, cwd=root).returncode == 0
    updated = next((root / "feedback" / "hal" / ID).glob("*.html")).read_text()
    assert updated != feedback  # regenerated with the new grade, without --force


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--jobs", "0"], "must be at least 1"),
        (["--csv", "/no/such/folder/x.csv"], "does not exist"),
        (["--student", "nobody"], "no submission of nobody"),
    ],
)
def test_are_operator_mistakes_one_line_and_status_2(args, phrase, reference_submission):
    result = run_cli("grader", "grade", str(reference_submission), "--assignment", ID, *args)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and phrase in result.stderr, result.stderr


def test_does_show_print_a_student_s_report_in_full(course):
    root, _ = course
    result = run_cli("grader", "show", "cat", "--assignment", ID, "--course", str(root))
    assert result.returncode == 0 and "densenet_accuracy" in result.stdout


# ---------------------------------------------------------------- the retry policy, in-process


class _Run:
    """The parts of a GradingRun that grade_many reads."""

    def __init__(self, manifest):
        self.manifest = manifest
        self.config = GradeConfig()
        self.fingerprint = "run"


def _fake(monkeypatch, manifest, troubles: list[list[str]]):
    """grade_submission replaced: each call returns full marks with the next trouble list."""
    from grader.judge import all_failed

    calls = []

    def grade_submission(path, run, host, student, staged):
        calls.append(student)
        report = Report(manifest.id, student, all_failed(manifest, "pass", "")[:0])
        report.machine_trouble = list(troubles.pop(0))
        return report

    monkeypatch.setattr(slots, "grade_submission", grade_submission)
    monkeypatch.setattr(slots, "open_host", lambda run, uid: object())
    monkeypatch.setattr(slots, "close_host", lambda host, config: None)
    monkeypatch.setattr(slots.Sandbox, "root_drops_privileges", staticmethod(lambda: False))
    return calls


def test_is_a_machine_failure_graded_again_and_then_sent_for_review(
    monkeypatch, manifest, reference_submission
):
    sub = Submission("ivy", reference_submission)
    calls = _fake(monkeypatch, manifest, [["killed by SIGKILL"], []])
    (report,) = grade_many([sub], _Run(manifest), progress=False)
    assert calls == ["ivy", "ivy"] and report.status == "graded"
    assert any("graded again after" in n for n in report.notes)
    calls = _fake(monkeypatch, manifest, [["killed by SIGKILL"], ["killed by SIGKILL"]])
    (report,) = grade_many([sub], _Run(manifest), progress=False)
    assert report.status == "review" and report.fingerprint == ""


def test_are_submitted_folders_found_as_the_course_lays_them_out(tmp_path, manifest):
    root = tmp_path / "course" / "submitted"
    (root / "jo" / ID).mkdir(parents=True)
    (root / "jo" / ID / f"{ID}.ipynb").write_text("{}")
    (root / "kim").mkdir()
    (root / "kim" / f"{ID}.ipynb").write_text("{}")
    for path in (root.parent, root):
        found = {s.student: s for s in find_submissions(path, manifest)}
        assert set(found) == {"jo", "kim"}
        assert all(s.course_root == root.parent for s in found.values())
        assert found["kim"].layout_note and not found["jo"].layout_note
    (only,) = find_submissions(root / "jo", manifest)
    assert only.student == "jo" and only.course_root == root.parent
    (only,) = find_submissions(root / "jo" / ID, manifest)
    assert only.student == "jo" and only.course_root == root.parent


def test_is_a_folder_outside_a_course_named_after_its_owner(tmp_path, manifest):
    """`grade downloads/ana/` holding only `<id>/<id>.ipynb` (an archive unpacked with the
    assignment's folder) grades ana, not a student called after the assignment."""
    (tmp_path / "ana" / ID).mkdir(parents=True)
    (tmp_path / "ana" / ID / f"{ID}.ipynb").write_text("{}")
    (only,) = find_submissions(tmp_path / "ana", manifest)
    assert only.student == "ana" and only.path == tmp_path / "ana" / ID
