"""Is the committed source notebook what the builder makes, is the committed release what
nbgrader makes from it, does the release leak nothing, and does nbgrader agree with the grader?"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from grader.judge import load_expected
from grader.manifest import load_manifest
from solutions import notebook_builder
from solutions.notebook_builder import student_chunks
from solutions.res_dense_nets import notebook as content
from solutions.res_dense_nets import student as reference_code
from tests.conftest import REPO, run_cli

ID = "res_dense_nets"
SOURCE = REPO / "source" / ID
RELEASE = REPO / "release" / ID


@pytest.fixture(scope="module")
def course(tmp_path_factory, reference_submission) -> Path:
    """A throw-away nbgrader course: the source, a fresh release, one submitted student."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(SOURCE, root / "source" / ID)
    result = run_cli("nbgrader", "generate_assignment", ID, "--force", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    shutil.copytree(reference_submission, root / "submitted" / "alice" / ID)
    return root


def _code_and_markdown(path: Path) -> list[tuple[str, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source) for c in nb.cells]


def test_is_the_source_notebook_what_the_builder_makes(manifest):
    built = notebook_builder.build(content.cells(manifest))
    committed = nbformat.read(SOURCE / f"{ID}.ipynb", as_version=4)
    assert nbformat.writes(built) == nbformat.writes(committed), (
        "run `python -m solutions notebook res_dense_nets`"
    )
    precheck = notebook_builder.precheck_script(manifest, content.cells(manifest))
    assert (SOURCE / "precheck.py").read_text() == precheck


def test_are_the_solution_cells_the_reference_code():
    nb = nbformat.read(SOURCE / f"{ID}.ipynb", as_version=4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    for cell_id, code in student_chunks(REPO / "solutions" / ID / "student.py").items():
        assert by_id[cell_id] == code


def test_do_grade_cells_carry_the_manifest_points(manifest):
    nb = nbformat.read(SOURCE / f"{ID}.ipynb", as_version=4)
    cells = {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert cells == {
        name: sum(c.points for c in checks) for name, checks in manifest.cells().items()
    }
    assert sum(cells.values()) == manifest.max_score


def test_does_every_visible_check_have_a_visible_test_cell(manifest):
    nb = nbformat.read(RELEASE / f"{ID}.ipynb", as_version=4)
    visible = " ".join(
        c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("visible_")
    )
    for check in manifest.checks:
        if not check.hidden:
            subject = check.name.split("_")[0]
            assert {
                "resblock": "ResBlock(",
                "resmlp": "ResMLP(",
                "denseblock": "DenseBlock(",
                "transition": "Transition(",
                "densenet": "DenseNet(",
            }[subject] in visible


def test_is_the_committed_release_what_nbgrader_generates(course):
    assert _code_and_markdown(course / "release" / ID / f"{ID}.ipynb") == _code_and_markdown(
        RELEASE / f"{ID}.ipynb"
    )
    assert (course / "release" / ID / "precheck.py").read_text() == (
        RELEASE / "precheck.py"
    ).read_text()


def test_does_the_release_leak_no_solution_hidden_test_or_expected_value():
    text = (RELEASE / f"{ID}.ipynb").read_text() + (RELEASE / "precheck.py").read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "grade_cell(" not in text
    assert "BEGIN SOLUTION" not in text
    for code in student_chunks(REPO / "solutions" / ID / "student.py").values():
        inside = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", code, re.S)
        for region in inside:
            for line in region.splitlines():
                if len(line.strip()) > 25:  # short lines (`return x`) may occur anywhere
                    assert json.dumps(line.strip())[1:-1] not in text, line
    expected = load_expected(ID)
    for acc in expected["accuracy"].values():
        assert f"{acc['test_accuracy']}" not in text and f"{acc['threshold']}" not in text
    # The parameter counts the grader compares with, computed from the reference code itself.
    for spec in load_manifest(ID).models:
        model = spec.build(reference_code)
        assert str(sum(p.numel() for p in model.parameters())) not in text
    assert '"block1_out_channels": 40' not in text


def test_does_nbgrader_autograde_give_the_grader_s_total(course, reference_report):
    result = run_cli("nbgrader", "autograde", ID, "--create", "--force", cwd=course)
    assert result.returncode == 0, result.stderr[-3000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ID, "alice")
        assert (submission.score, submission.max_score) == (
            reference_report["score"],
            reference_report["max_score"],
        )
