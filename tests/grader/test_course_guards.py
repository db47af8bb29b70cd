"""Does a course run refuse what would write wrong grades: another checkout's code, a second
run at the same time, a release older than the manifest; and does a class whose sandbox never
started get no grade at all?

The grader runs from a second checkout (a copy of this one) where a question needs other code.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from tests.conftest import REPO, run_cli
from tests.fixtures.course import ID, copy_checkout, make_class

NOTEBOOK = f"{ID}.ipynb"


def _grade(root: Path, *extra: str, cwd: Path | None = None):
    kw = {"cwd": cwd} if cwd else {}
    return run_cli("grader", "grade", str(root / "submitted"), *extra, **kw)


def _one_line_refusal(result, phrase: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.count("\n") == 1 and phrase in result.stderr, result.stderr


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return copy_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def graded_here(tmp_path_factory, reference_submission) -> Path:
    """A course of one graded by this checkout."""
    root = make_class(tmp_path_factory.mktemp("ours"), reference_submission, {"ann": "reference"})
    result = _grade(root, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_is_a_course_graded_by_another_checkout_refused(graded_here, checkout):
    report = graded_here / "autograded" / "ann" / ID / "report.json"
    before = report.read_text()
    result = _grade(graded_here, cwd=checkout)
    _one_line_refusal(result, f"is graded by the checkout {REPO}")
    assert str(checkout) in result.stderr and report.read_text() == before


def test_is_a_course_released_from_another_checkout_refused(
    tmp_path, reference_submission, checkout
):
    root = make_class(tmp_path, reference_submission, {"bea": "reference"})
    release = root / "release" / ID
    release.mkdir(parents=True)
    nb = json.loads((checkout / "release" / ID / NOTEBOOK).read_text())
    nb["cells"][0]["source"] = "# another version of the assignment\n"
    (release / NOTEBOOK).write_text(json.dumps(nb))
    _one_line_refusal(_grade(root), f"{release / NOTEBOOK} differs from this checkout's")
    assert not (root / "autograded").exists()


def test_does_a_second_run_on_a_course_say_who_holds_it_and_stop(graded_here):
    from grader.course import course_lock  # the lock a run takes, taken here by the test

    with course_lock(graded_here, "python -m grader grade (the first run)"):
        result = _grade(graded_here)
    _one_line_refusal(result, "another run is grading")
    assert "the first run" in result.stderr


def _set_points(notebook: Path, grade_id: str, points: float) -> None:
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade_id") == grade_id:
            meta["points"] = points
    notebook.write_text(json.dumps(nb, indent=1))


def test_is_a_release_older_than_the_manifest_refused_and_the_gradebook_kept_in_step(
    tmp_path, reference_submission, checkout, manifest
):
    """A check's points changed in the manifest: grading refuses until the notebooks are
    rebuilt; once they are, the gradebook's grade cell takes the new maximum."""
    root = make_class(tmp_path, reference_submission, {"cal": "reference"})
    assert _grade(root, "--quiet", cwd=checkout).returncode == 0
    toml = checkout / "assignments" / f"{ID}.toml"
    text = toml.read_text()
    old = "shape_answers = { points = 3 }"
    assert old in text
    toml.write_text(text.replace(old, old.replace("points = 3", "points = 5")))
    try:
        result = _grade(root, cwd=checkout)
        _one_line_refusal(result, f"release/{ID}/{NOTEBOOK} is older than")
        assert "test_answers: 3.0 points there, 5.0 in the manifest" in result.stderr
        assert f"python -m solutions notebook {ID} && nbgrader generate_assignment" in result.stderr
        for folder in ("source", "release"):  # what `make release` does to the grade cell
            _set_points(checkout / folder / ID / NOTEBOOK, "test_answers", 5)
        result = _grade(root, "--quiet", cwd=checkout)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        toml.write_text(text)
        for folder in ("source", "release"):
            shutil.copy(REPO / folder / ID / NOTEBOOK, checkout / folder / ID / NOTEBOOK)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gb.find_grade_cell("test_answers", ID, ID).max_score == 5
        assert gb.find_assignment(ID).max_score == manifest.max_score + 2
    (row,) = csv.DictReader(io.StringIO((root / f"dlgrade-{ID}.csv").read_text()))
    assert row["max_score"] == f"{manifest.max_score + 2:g}" == row["score"]


def test_does_a_class_whose_sandbox_never_started_get_no_grade(
    tmp_path, reference_submission, checkout
):
    """Every report is "review", nothing reaches the gradebook, the CSV has no score."""
    broken = tmp_path / "broken-checkout"
    shutil.copytree(checkout, broken)
    (broken / "grader" / "probe" / "zygote.py").write_text(
        'raise SystemExit("this grading machine cannot start its sandbox")\n'
    )
    root = make_class(
        tmp_path / "course", reference_submission, {"dan": "reference", "eva": "reference"}
    )
    result = _grade(root, cwd=broken)
    assert result.returncode == 0, result.stderr[-3000:]
    for student in ("dan", "eva"):
        report = json.loads((root / "autograded" / student / ID / "report.json").read_text())
        assert report["status"] == "review" and "sandbox" in report["reason"], report["reason"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gb.find_assignment(ID).submissions == []
    rows = list(csv.DictReader(io.StringIO((root / f"dlgrade-{ID}.csv").read_text())))
    assert [(r["status"], r["score"]) for r in rows] == [("review", ""), ("review", "")]
    assert "totals: none" in result.stdout and "left out" not in result.stdout
