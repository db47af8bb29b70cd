"""Does normalise-names give Colab copies the release's name, and only those, never
overwriting anything?"""

from __future__ import annotations

import pytest

from grader.names import is_copy_of, normalise_collected_names, original_name

NB = "res_dense_nets.ipynb"
ID = "res_dense_nets"


@pytest.mark.parametrize(
    "name",
    [
        "Copy of res_dense_nets.ipynb",
        "res_dense_nets (1).ipynb",
        "res_dense_nets(2).ipynb",
        "res_dense_nets.ipynb.ipynb",
        "Copy of Copy of res_dense_nets (3).ipynb",
        "copy of res_dense_nets.ipynb",
    ],
)
def test_is_a_colab_style_copy_recognised(name):
    assert original_name(name) == NB and is_copy_of(name, NB)


@pytest.mark.parametrize("name", [NB, "res_dense_nets_v2.ipynb", "other.ipynb", "Copy of x.ipynb"])
def test_is_anything_else_not_taken_for_a_copy(name):
    assert not is_copy_of(name, NB)


def _folder(root, student, *files, assignment=ID):
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(f'{{"from": "{name}"}}')
    return folder


@pytest.fixture
def course(tmp_path):
    _folder(tmp_path, "ann", "Copy of res_dense_nets.ipynb", "resmlp.pt")
    _folder(tmp_path, "ben", "res_dense_nets (1).ipynb")
    _folder(tmp_path, "cat", NB, "resmlp.pt")
    _folder(tmp_path, "dan", "Copy of res_dense_nets.ipynb", "res_dense_nets (1).ipynb")
    _folder(tmp_path, "eve", "resmlp.pt")
    _folder(tmp_path, "joe", "Copy of res_dense_nets.ipynb", assignment=f"{ID}/joe_files")
    _folder(tmp_path, "fay", "homework.ipynb")
    (_folder(tmp_path, "gus", "Copy of res_dense_nets.ipynb") / NB).mkdir()  # not a notebook
    loose = tmp_path / "submitted" / "hal"
    loose.mkdir(parents=True)
    (loose / NB).write_text("{}")
    _folder(tmp_path, "ida", "Copy of other.ipynb", assignment="other")  # another assignment
    return tmp_path / "submitted"


def _actions(outcomes):
    return {o.student: o.action for o in outcomes}


def test_does_it_rename_copies_and_report_every_other_case(course):
    outcomes = normalise_collected_names(course, NB)
    assert _actions(outcomes) == {
        "ann": "renamed",
        "ben": "renamed",
        "cat": "ok",
        "dan": "several",
        "eve": "none",
        "fay": "other name",
        "gus": "conflict",
        "hal": "misplaced",
        "joe": "none",
    }
    assert (course / "ann" / ID / NB).read_text() == '{"from": "Copy of res_dense_nets.ipynb"}'
    assert not (course / "ann" / ID / "Copy of res_dense_nets.ipynb").exists()
    assert (course / "ann" / ID / "resmlp.pt").is_file()
    assert sorted(p.name for p in (course / "dan" / ID).iterdir()) == [
        "Copy of res_dense_nets.ipynb",
        "res_dense_nets (1).ipynb",
    ]
    assert (course / "gus" / ID / NB).is_dir()  # never overwritten
    assert {o.student for o in outcomes if o.problem} == {"dan", "eve", "fay", "gus", "hal", "joe"}
    joe = next(o for o in outcomes if o.student == "joe")
    assert "joe_files/Copy of res_dense_nets.ipynb is in a subfolder: move it up" in joe.detail


def test_does_a_dry_run_change_nothing(course):
    before = sorted(str(p) for p in course.rglob("*"))
    outcomes = normalise_collected_names(course, NB, dry_run=True)
    assert _actions(outcomes)["ann"] == "would rename"
    assert sorted(str(p) for p in course.rglob("*")) == before


def test_is_a_second_run_a_no_op(course):
    normalise_collected_names(course, NB)
    again = _actions(normalise_collected_names(course, NB))
    assert again["ann"] == again["ben"] == "ok"
