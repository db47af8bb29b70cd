"""`python -m grader similarity` on untrusted files and names, and on operator mistakes.

Submissions are read as the grader reads them: a notebook that is huge, binary or a link (or a
student folder that is a link) is left out with a note, and the rest of the class is compared.
Student names and code are data: nothing of them acts in the terminal, the CSV or the HTML.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from html.parser import HTMLParser

import nbformat
import pytest

from grader.manifest import load_manifest
from tests.conftest import REPO, run_cli
from tests.fixtures.disguise import class_of, release_with, write_class

ASSIGNMENT = "res_dense_nets"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
ESCAPE_NAME = "mallory\x1b]0;owned\x07"  # an OSC sequence: would retitle the terminal
FORMULA_NAME = '=HYPERLINK("example.invalid";"x")'  # no slash: it is a folder name
MARKUP = "</pre><script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A class with hostile entries beside honest ones; the CLI's result, CSV and report."""
    root = tmp_path_factory.mktemp("similarity-hostile")
    students = class_of(load_manifest(ASSIGNMENT))
    # Copies whose names are hostile, and whose code carries markup, so that they are flagged
    # and shown in the report.
    marked = nbformat.from_dict(students["copy_disguised"])
    cell = next(
        c for c in marked.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "resblock"
    )
    cell.source = cell.source.replace(
        "super().__init__()", f"super().__init__()  # {MARKUP}\n        note = {MARKUP!r}", 1
    )
    submitted = write_class(
        root,
        ASSIGNMENT,
        {
            "alice": students["reference"],
            ESCAPE_NAME: marked,
            FORMULA_NAME: students["copy_renamed"],
        },
    )
    huge = submitted / "huge" / ASSIGNMENT
    huge.mkdir(parents=True)
    with (huge / NOTEBOOK).open("wb") as file:
        file.truncate(60 * 1024**2)  # sparse: over the 50 MB limit without filling the disk
    binary = submitted / "binary" / ASSIGNMENT
    binary.mkdir(parents=True)
    (binary / NOTEBOOK).write_bytes(os.urandom(4096))
    linked = submitted / "linked" / ASSIGNMENT
    linked.mkdir(parents=True)
    (linked / NOTEBOOK).symlink_to(submitted / "alice" / ASSIGNMENT / NOTEBOOK)
    (submitted / "linkfolder").symlink_to(submitted / "alice")
    result = run_cli(
        "grader",
        "similarity",
        str(submitted),
        "--csv",
        str(root / "pairs.csv"),
        "--html",
        str(root / "report.html"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with (root / "pairs.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    return result, rows, (root / "report.html").read_text()


@pytest.mark.parametrize(
    "student, reason",
    [
        ("huge", "over the size limit (60 MB, limit 50 MB)"),
        ("binary", "not a notebook"),
        ("linked", "symbolic link"),
        ("linkfolder", "symbolic link"),
    ],
)
def test_is_a_hostile_file_left_out_with_a_note(hostile, student, reason):
    result, rows, page = hostile
    notes = [line for line in result.stderr.splitlines() if line.startswith(f"left out {student}:")]
    assert len(notes) == 1 and reason in notes[0], result.stderr
    assert not [r for r in rows if student in (r["student_a"], r["student_b"])]
    assert f"<li>{student}: " in page  # the report says who was left out, and why


def test_are_the_others_still_compared(hostile):
    result, rows, _ = hostile
    assert "3 students compared" in result.stdout
    assert len(rows) == 3 and all(float(r["a_in_b_percent"]) > 90 for r in rows)


def test_does_no_student_text_act_in_the_terminal_the_csv_or_the_report(hostile):
    result, rows, page = hostile
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    assert "mallory\\x1b]0;owned\\x07" in result.stdout  # shown, as an escape
    names = {r["student_a"] for r in rows} | {r["student_b"] for r in rows}
    assert f"'{FORMULA_NAME}" in names and FORMULA_NAME not in names  # not a formula
    assert not any("\x1b" in name for name in names)
    elements = _Elements()
    elements.feed(page)
    assert "script" not in elements.tags and not any(
        a.startswith("on") for a in elements.attributes
    )
    assert elements.images == ["data:image/png;base64"]  # the histogram, and no other
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the code, as text
    assert "\x1b" not in page


class _Elements(HTMLParser):
    """Every element and attribute of a page, and where its images come from."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.images = set(), set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        if tag == "img":
            self.images.append(dict(attrs).get("src", "").split(",")[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent/submitted"], "is not a folder"),
        (["{one}"], "similarity needs two or more"),
        (["{one}", "--threshold", "0"], "--threshold"),
        (["{one}", "--assignment", "no_such_thing"], "no_such_thing"),
        (["{one}", "--html", "/nonexistent/dir/report.html"], "does not exist"),
    ],
)
def test_is_an_operator_mistake_one_line_and_status_2(tmp_path, args, message):
    write_class(tmp_path, ASSIGNMENT, {"alice": release_with(load_manifest(ASSIGNMENT))})
    result = run_cli("grader", "similarity", *(a.format(one=tmp_path) for a in args))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_does_the_command_line_parser_import_nothing_heavy():
    """`python -m grader --help` builds this command's parser: it must not load numpy, the
    fingerprinting or torch."""
    probe = (
        "import sys; import grader.similarity.cli; "
        "print(sorted(m for m in ('numpy', 'torch', 'grader.similarity.run') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]"
