"""Is a grade only as final as the data it was measured on? Without the test split no report is
final and a re-run with the data regrades; on generated stand-ins every score file says so.

A class of two fnn_mnist students (MNIST cannot be had here) is graded by the real CLI twice:
first without any MNIST, then with the stand-ins `DLGRADE_DATA` names, as the warning says.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from nbgrader.api import Gradebook

from grader.inputs import prepare_inputs
from grader.manifest import load_manifest
from solutions.data import DATA_ENV
from solutions.submission import write_submission
from tests.conftest import GRADED_TEST_IMAGES, run_cli, write_fixture

ID = "fnn_mnist"
STUDENTS = ("ana", "ben")


def _reports(root: Path) -> dict[str, dict]:
    return {
        s: json.loads((root / "autograded" / s / ID / "report.json").read_text()) for s in STUDENTS
    }


def _rows(root: Path) -> dict[str, dict[str, str]]:
    text = (root / f"dlgrade-{ID}.csv").read_text()
    return {row["student"]: row for row in csv.DictReader(io.StringIO(text))}


def _grade(root: Path, data: str):
    result = run_cli("grader", "grade", str(root / "submitted"), env={DATA_ENV: data})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(course root, the run without MNIST, its reports, the run on stand-ins, its reports)."""
    root = tmp_path_factory.mktemp("fnn-course")
    reference = tmp_path_factory.mktemp("fnn-reference") / ID
    write_submission(load_manifest(ID), reference)
    for student in STUDENTS:
        shutil.copytree(reference, root / "submitted" / student / ID)
    data = tmp_path_factory.mktemp("stand-ins")
    write_fixture(data, "mnist")
    without = _grade(root, "")  # DLGRADE_DATA empty: no MNIST anywhere on this machine
    first = _reports(root)
    rows = _rows(root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        graded_without = len(gb.find_assignment(ID).submissions)
    on_stand_ins = _grade(root, str(data))
    return root, data, without, first, rows, graded_without, on_stand_ins, _reports(root)


def test_is_a_report_without_the_test_split_not_final(runs):
    root, _, without, first, rows, graded_without, _, _ = runs
    for student in STUDENTS:
        assert first[student]["status"] == "incomplete", first[student]["status"]
        assert "no MNIST test split" in first[student]["reason"]
        assert (rows[student]["status"], rows[student]["score"]) == ("incomplete", "")
    assert graded_without == 0  # the gradebook took no grade
    flagged = without.stdout.split("students to look at")[1]
    assert all(student in flagged for student in STUDENTS)
    assert "totals: none" in without.stdout


def test_does_a_re_run_with_the_test_split_regrade_instead_of_reusing(runs):
    root, _, _, first, _, _, _, second = runs
    for student in STUDENTS:
        assert second[student]["status"] == "graded"
        assert second[student]["fingerprint"] != first[student]["fingerprint"]
        assert second[student]["score"] == second[student]["max_score"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert len(gb.find_assignment(ID).submissions) == len(STUDENTS)


def test_does_every_score_file_say_it_was_graded_on_stand_ins(runs):
    root, data, _, _, _, _, on_stand_ins, second = runs
    for student in STUDENTS:
        report = second[student]
        assert (report["data"], report["data_root"]) == ("stand-ins", str(data))
        accuracy = next(c for c in report["checks"] if c["name"] == "fnn_accuracy")
        assert "on generated stand-ins of the MNIST test split" in accuracy["message"]
        assert _rows(root)[student]["data"] == "stand-ins"
    header = on_stand_ins.stdout.split(" graded in this run")[0]  # wrapped to the terminal
    header = " ".join(line.strip() for line in header.splitlines())
    assert "graded on stand-ins, not the real test split" in header and f"({data})" in header


def test_is_a_test_split_of_another_size_graded_as_a_stand_in_and_said_so(
    tmp_path, monkeypatch, data_env
):
    """A real-format split cut short (as the batch-grading tests grade on) is not the real one:
    the accuracy messages say how many images it holds."""
    manifest = load_manifest("res_dense_nets")
    env = data_env(manifest.dataset, GRADED_TEST_IMAGES)
    if not env:
        pytest.skip("Fashion-MNIST is not on this machine")
    monkeypatch.setenv(DATA_ENV, env[DATA_ENV])
    inputs = prepare_inputs(manifest, tmp_path / "inputs", seed=0, fonts=False)
    assert inputs.stand_ins and len(inputs.labels) == GRADED_TEST_IMAGES
    images = torch.load(inputs.images_file, weights_only=True)
    assert images.shape == (GRADED_TEST_IMAGES, 1, 28, 28)
    assert inputs.split_name == (
        f"{GRADED_TEST_IMAGES:,} images in place of the 10,000 of the Fashion-MNIST test split"
    )
