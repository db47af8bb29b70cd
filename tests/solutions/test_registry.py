"""Does every manifest have its assignment record, declared by its own package, and does
`python -m solutions` find an assignment's parts there?"""

from __future__ import annotations

import nbformat
import pytest

from grader.manifest import UnknownAssignmentError, assignment_ids, load_manifest
from solutions.cli import main
from solutions.registry import ASSIGNMENTS, assignment, selected
from tests.conftest import run_cli
from tests.fixtures.variants import reference_cells


def test_does_every_manifest_have_exactly_one_record():
    assert [a.id for a in ASSIGNMENTS] == assignment_ids()
    assert [a.id for a in selected("all")] == assignment_ids()


@pytest.mark.parametrize("found", ASSIGNMENTS, ids=lambda a: a.id)
def test_is_each_record_declared_by_its_own_package(found):
    assert found.student.__name__ == f"solutions.{found.id}.student"
    assert found.student_file.is_file() and found.student_file.parent.name == found.id
    assert found.train.__module__.startswith(f"solutions.{found.id}.")
    assert found.notebook.__module__.startswith(f"solutions.{found.id}.")
    # An alternatives file exactly when the manifest accepts alternatives.
    manifest = load_manifest(found.id)
    assert (found.alternatives is not None) == bool(manifest.alternatives)
    if found.alternatives is not None:
        assert found.alternatives.is_file() and found.alternatives.parent.name == found.id


@pytest.mark.parametrize("found", ASSIGNMENTS, ids=lambda a: a.id)
def test_does_the_submission_command_write_the_reference_notebook_and_files(found, tmp_path):
    manifest, out = load_manifest(found.id), tmp_path / "submission"
    result = run_cli("solutions", "submission", found.id, str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest.submit_files)
    notebook = nbformat.read(out / manifest.notebook, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "raise NotImplementedError" not in code and "HIDDEN TESTS" not in code
    lines = set(code.splitlines())  # every line of the reference's solution cells
    assert all(set(cell.splitlines()) <= lines for cell in reference_cells(found.id).values())


def test_does_an_unknown_id_name_the_known_ones(capsys):
    with pytest.raises(UnknownAssignmentError, match=ASSIGNMENTS[0].id):
        assignment("no_such_assignment")
    assert main(["notebook", "no_such_assignment"]) == 2
    assert "unknown assignment 'no_such_assignment'" in capsys.readouterr().err


def test_does_search_say_which_assignment_has_none():
    without = next(a for a in ASSIGNMENTS if a.search is None)
    with pytest.raises(SystemExit, match=f"{without.id} has no hyper-parameter search"):
        main(["search", without.id])
