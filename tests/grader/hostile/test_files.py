"""The submission folder as data, the notebook's format and cells, weights files."""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.conftest import points
from tests.fixtures.hostile import (
    CLASSMATE,
    DEEP_LEVELS,
    HUGE_WEIGHTS_BYTES,
    NOTEBOOK,
    SECRETS,
)
from tests.grader.hostile.run import (
    MANIFEST,
    SUBMISSION_TIMEOUT_S,
    assert_full_marks,
    assert_graded,
    assert_note,
)

# Run alone (Makefile's `test`): the hostile batch: 10 s cell limits.
pytestmark = pytest.mark.serial

# ----------------------------------------------------- issue 7: the submission folder as data


@pytest.mark.parametrize(
    "name", ["notebook_links_source", "notebook_links_classmate", "folder_links_classmate"]
)
def test_is_a_notebook_that_is_a_link_refused_and_never_read(graded, name):
    """A notebook linking to the instructor's source notebook or to a classmate's, a submission
    folder linking to a classmate's: the student is graded (not left out of the class), every
    check 0 with the reason, and the autograded notebook (what feedback is made from) holds no
    solution, no hidden test and nothing of the notebook the link points at."""
    report = graded.report(name)
    assert report["score"] == 0
    assert all("symbolic link" in c["message"] for c in report["checks"]), report["checks"]
    autograded = (graded.autograded(name) / NOTEBOOK).read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in autograded, marker
    reference = (SECRETS["reference solution"]).read_text()
    code_lines = [line.strip() for line in reference.splitlines() if "self." in line]
    assert code_lines and not [line for line in code_lines if line in autograded]
    assert_full_marks(graded.report(CLASSMATE))  # the classmate is graded as usual


def test_is_a_deeply_nested_submission_folder_graded_with_a_note(graded):
    report = graded.report("deep_submission_folder")
    assert_full_marks(report)
    assert_note(report, "not read: nest/ (a folder")
    assert report["duration_s"] < 2 * graded.report(CLASSMATE)["duration_s"] + 30


def test_does_a_tree_a_probe_nests_past_path_max_harm_no_one(graded):
    """3,000 folders with long names left in the probe's work and output folders: the host
    removes them (no recursion, no path longer than PATH_MAX) and every later student of that
    job slot is graded as usual (the other tests of this module say how)."""
    assert_full_marks(graded.report("deep_tree_left_behind"))
    assert graded.scratch_left == []


def test_is_a_sixteen_gigabyte_timestamp_never_read_whole(graded):
    """nbgrader's timestamp.txt as a 16 GiB sparse file: read capped (the gradebook gets the
    submission without its time), graded and written as usual."""
    report = graded.report("huge_timestamp")
    assert_full_marks(report)
    assert report["duration_s"] < 2 * graded.report(CLASSMATE)["duration_s"] + 30


def test_is_a_sixteen_gigabyte_sparse_weights_file_refused_quickly(graded):
    report = graded.report("huge_weights_file")
    size = f"{HUGE_WEIGHTS_BYTES / 1024**2:,.0f} MB"
    assert_graded(report, {"densenet_accuracy": size}, zero=True)
    assert report["duration_s"] < 2 * graded.report("control_anti_trained")["duration_s"] + 30


# ------------------------------------------------------------------ notebook format and cells


def test_is_a_notebook_with_odd_nbgrader_metadata_graded_and_written(graded):
    """nbgrader metadata that is a string, a grade_id that is a list, an integer source, string
    points, cells that are not even objects: graded normally, and its autograded notebook is
    written and valid (the students after it too: see the course test above)."""
    assert_full_marks(graded.report("odd_nbgrader_metadata"))
    autograded = nbformat.read(graded.autograded("odd_nbgrader_metadata") / NOTEBOOK, as_version=4)
    nbformat.validate(autograded)


def test_do_deleted_duplicated_or_edited_grade_cells_change_nothing(graded):
    assert_full_marks(graded.report("mangled_grade_cells"))


def test_do_inflated_nbgrader_points_change_nothing(graded):
    report = graded.report("inflated_points")
    assert_full_marks(report)
    assert report["max_score"] == MANIFEST.max_score


def test_does_a_grade_cell_turned_into_markdown_change_nothing(graded):
    assert_full_marks(graded.report("grade_cell_as_markdown"))


def test_do_prefilled_outputs_change_nothing(graded):
    assert_full_marks(graded.report("prefilled_outputs"))


def test_is_invalid_json_scored_zero_with_its_reason(graded):
    report = graded.report("invalid_json")
    assert report["student"] == "invalid_json"
    assert report["score"] == 0 and report["max_score"] == MANIFEST.max_score
    assert all("invalid JSON" in c["message"] for c in report["checks"])


def test_are_non_utf8_bytes_in_markdown_graded_with_a_note(graded):
    report = graded.report("non_utf8_markdown")
    assert_full_marks(report)
    assert_note(report, "not valid UTF-8")


def test_is_a_schema_invalid_notebook_graded_leniently(graded):
    assert_full_marks(graded.report("schema_invalid"))


def test_are_ten_thousand_extra_cells_graded_in_time(graded):
    report = graded.report("ten_thousand_cells")
    assert_full_marks(report)
    assert report["duration_s"] < SUBMISSION_TIMEOUT_S


# ------------------------------------------------------------------------------ weights files


def test_is_a_malicious_pickle_refused_without_running(graded):
    report = graded.report("malicious_pickle_weights")
    assert_graded(report, {"resmlp_accuracy": "resmlp.pt"}, zero=True)
    message = points(report)["resmlp_accuracy"][2].lower()
    assert re.search(r"weights.only|unsafe|unsupported global", message), message


def test_does_the_deep_fixture_really_nest_that_deep(graded):
    """The fixture itself: DEEP_LEVELS folders (removed again after the module)."""
    depth, folder = 0, graded.folder("deep_submission_folder") / "nest"
    while (folder / "d").is_dir():
        folder, depth = folder / "d", depth + 1
    assert depth == DEEP_LEVELS
