"""Student text and student HTML, graded end to end with the real command line.

A course of two hostile students (tests/fixtures/hostile.py) is graded once, as an operator
grades a class (`--verbose --jobs 2`: a score table per student, then the class summary):
- `CONTROL_NAME`, whose folder name (nbgrader's student id) holds terminal control sequences,
  starts like a spreadsheet formula and holds broken mathtext; its cells raise exceptions whose
  class name and text hold OSC 52, OSC 0, cursor movement, line erasing, C1 CSI, NUL and bidi
  overrides, as a cell error and while an observer calls its code; a second notebook beside
  the graded one has such a name too;
- `html_in_notebook`, whose markdown, raw cell, outputs, attachment and cell tags carry HTML and
  JavaScript.

Asked: nothing a terminal acts on reaches the grade run's output, `show`, `leaderboard` (run in
this process: they run no student code), the CSV or report.json (a report edited by hand
included), and the escaped text still says what the student wrote; the leaderboard draws the
name as written; `nbgrader generate_feedback` renders no script, event handler or javascript:
URL the student wrote. The course is graded apart from the hostile module's batches: a student
name with control characters cannot be one of their fixture names, and the tables and the
summary need a run that is not `--quiet`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import nbformat
import pytest

from grader.cli import main
from grader.manifest import load_manifest
from grader.text import inert, inert_line
from solutions.data import DataNotFoundError, resolve_root
from tests.conftest import REPO, run_cli
from tests.fixtures.course import scores
from tests.fixtures.hostile import (
    ASSIGNMENT,
    CONTROL_NAME,
    CONTROL_NOTEBOOK,
    CONTROL_SEQUENCES,
    FORGED_ROW,
    HOSTILE_TEXT,
    HTML_MARKER,
    NOTEBOOK,
    TERMINAL_CONTROL,
    Targets,
    build,
)
from tests.fixtures.html import live_from_student

HTML_STUDENT = "html_in_notebook"


@dataclass
class Course:
    root: Path
    grade: CompletedProcess  # `python -m grader grade submitted/ --verbose`

    def report(self, student: str) -> dict:
        """The saved report.json of the student of that folder name, as JSON decodes it."""
        path = self.root / "autograded" / student / ASSIGNMENT / "report.json"
        return json.loads(path.read_text())


@pytest.fixture(scope="module")
def course(tmp_path_factory, reference_submission) -> Course:
    try:
        resolve_root(load_manifest(ASSIGNMENT).dataset, online=False)
    except DataNotFoundError as err:
        pytest.skip(f"the real test split is needed: {err}")
    base = tmp_path_factory.mktemp("text")
    targets = Targets.create(base / "targets", port=9)
    root = base / "course"
    for student, fixture in (
        (CONTROL_NAME, "control_sequences_in_errors"),
        (HTML_STUDENT, "html_in_notebook"),
    ):
        folder = root / "submitted" / student / ASSIGNMENT
        folder.parent.mkdir(parents=True)
        build(fixture, base / "built", targets, reference_submission).rename(folder)
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "source", root / "source")
    submitted = str(root / "submitted")
    grade = run_cli(
        "grader", "grade", submitted, "--assignment", ASSIGNMENT, "--verbose", "--jobs", "2"
    )
    assert grade.returncode == 0, grade.stderr[-3000:]
    return Course(root, grade)


def assert_inert(what: str, text: str) -> None:
    found = sorted(set(TERMINAL_CONTROL.findall(text)))
    assert found == [], f"{what} holds {found}"


def strings(data) -> list[str]:
    """Every string in decoded JSON, keys included."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in [k, *strings(v)]]
    if isinstance(data, list):
        return [s for v in data for s in strings(v)]
    return []


def assert_rows_not_forged(what: str, text: str) -> None:
    """The student's exception text holds a line break and then a table row of its own: it
    must not start a line of the output."""
    assert not [line for line in text.splitlines() if line.startswith(FORGED_ROW)], what


def command(capsys, *argv: str) -> str:
    """`python -m grader ARGV` in this process (it runs no student code); its stdout and
    stderr, which must hold nothing a terminal acts on."""
    assert main(list(argv)) == 0, capsys.readouterr()
    out, err = capsys.readouterr()
    assert_inert(f"{argv[0]}'s stdout", out)
    assert_inert(f"{argv[0]}'s stderr", err)
    return out


def test_does_the_grade_run_print_the_tables_and_summary_inert(course):
    out = course.grade.stdout
    assert_inert("grade's stdout", out)
    # tqdm redraws its progress bar with carriage returns: that, and only that, is allowed.
    assert_inert("grade's stderr", course.grade.stderr.replace("\r", "\n"))
    assert_rows_not_forged("grade --verbose", out)
    assert f"{ASSIGNMENT} - {inert_line(CONTROL_NAME)}" in out  # the table's title names them
    assert "students to look at" in out  # the class summary came after the tables


def test_does_show_print_the_student_s_text_inert_and_readable(course, capsys):
    out = command(
        capsys, "show", CONTROL_NAME, "--assignment", ASSIGNMENT, "--course", str(course.root)
    )
    assert_rows_not_forged("show", out)
    # What the student wrote can still be read: the exception's class name and each sequence.
    text = "".join(out.split())  # `show` wraps long lines
    for name, sequence in CONTROL_SEQUENCES.items():
        assert "".join(inert(sequence).split()) in text, name
    assert "Boom\\x1b]52;c;" in text
    assert "".join(inert_line(CONTROL_NOTEBOOK).split()) in text  # the note naming it


def test_does_a_hand_edited_report_still_show_inert(course, tmp_path, capsys):
    """A report.json written by an older grader, or edited, holds raw control characters."""
    copy = tmp_path / "course"
    shutil.copytree(course.root / "autograded", copy / "autograded")
    path = copy / "autograded" / HTML_STUDENT / ASSIGNMENT / "report.json"
    data = json.loads(path.read_text())
    data["notes"].append(f"edited {HOSTILE_TEXT}")
    data["checks"][0]["message"] = HOSTILE_TEXT
    data["sandbox"] = HOSTILE_TEXT
    path.write_text(json.dumps(data))
    out = command(capsys, "show", HTML_STUDENT, "--course", str(copy))
    assert "".join(inert(HOSTILE_TEXT).split()) in "".join(out.split())
    command(capsys, "leaderboard", ASSIGNMENT, "--course", str(copy))


def test_does_the_leaderboard_print_and_draw_the_name_as_written(course, tmp_path, capsys):
    png = tmp_path / "board.png"
    # The name's "$\frac{1}{$" is broken mathtext: read as such, the chart could not be drawn.
    out = command(
        capsys, "leaderboard", ASSIGNMENT, "--course", str(course.root), "--png", str(png)
    )
    assert inert_line(CONTROL_NAME) in out
    assert png.stat().st_size > 0


def test_are_the_csv_and_the_reports_inert(course):
    csv_text = (course.root / f"dlgrade-{ASSIGNMENT}.csv").read_text()
    assert_inert("the CSV", csv_text.replace("\r\n", "\n"))  # the CSV's own line ends
    rows = csv_text.splitlines()[1:]
    assert [row[:5] for row in rows if "eve" in row] == ["'=eve"]  # no formula, escaped
    for student in (CONTROL_NAME, HTML_STUDENT):
        assert_inert(f"{student!r}'s report.json", "\n".join(strings(course.report(student))))
    # The report shows the name inert; nbgrader's gradebook keeps the folder name as its id.
    assert course.report(CONTROL_NAME)["student"] == inert_line(CONTROL_NAME)
    assert set(scores(f"sqlite:///{course.root / 'gradebook.db'}")) == {CONTROL_NAME, HTML_STUDENT}


def test_does_generate_feedback_render_no_live_html_from_the_student(course):
    result = run_cli(
        "nbgrader", "generate_feedback", ASSIGNMENT, "--student", HTML_STUDENT, cwd=course.root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = course.root / "feedback" / HTML_STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"
    html = page.read_text()
    assert live_from_student(html) == []
    assert HTML_MARKER in html  # the payloads are there, as text
    assert "<strong>bold survives</strong>" in html and "x &lt; 3" in html
    autograded = nbformat.read(course.root / "autograded" / HTML_STUDENT / ASSIGNMENT / NOTEBOOK, 4)
    assert not [c for c in autograded.cells if c.cell_type == "raw" or c.get("attachments")]
    outputs = [o for c in autograded.cells if c.cell_type == "code" for o in c.outputs]
    assert all(HTML_MARKER not in json.dumps(o) for o in outputs)  # the grader's own results only
