"""Does the grader give the reference full marks, through the real CLI, and report per contract?"""

from __future__ import annotations

import json

from grader.judge import load_expected
from tests.conftest import points, run_cli

REPORT_KEYS = {"assignment", "student", "score", "max_score", "checks", "duration_s"}
CHECK_KEYS = {"name", "points", "max_points", "status", "message"}


def test_does_the_reference_submission_score_full_marks(reference_report, manifest):
    failed = {n: m for n, (p, mx, m) in points(reference_report).items() if p < mx}
    assert failed == {}
    assert reference_report["score"] == reference_report["max_score"] == manifest.max_score


def test_does_the_report_follow_the_design_contract(reference_report, manifest):
    assert REPORT_KEYS <= set(reference_report)
    assert reference_report["assignment"] == "res_dense_nets"
    assert [c["name"] for c in reference_report["checks"]] == [c.name for c in manifest.checks]
    for check in reference_report["checks"]:
        # The contract's keys, and `value` for checks that measure a number (accuracy).
        assert CHECK_KEYS <= set(check) <= CHECK_KEYS | {"value"}
        assert check["status"] in {"pass", "fail", "error", "skipped"}
    assert "bubblewrap" in reference_report["sandbox"]


def test_is_the_reference_accuracy_the_one_in_the_expected_file(reference_report):
    expected = load_expected("res_dense_nets")["accuracy"]
    for key in ("resmlp", "densenet"):
        message = points(reference_report)[f"{key}_accuracy"][2]
        measured = float(message.split("test accuracy ")[1].split()[0])
        assert abs(measured - expected[key]["test_accuracy"]) < 2e-4, message


def test_does_the_cli_print_a_score_table(reference_submission):
    result = run_cli("grader", "grade", str(reference_submission), "--assignment", "res_dense_nets")
    assert result.returncode == 0
    assert "resblock_skip" in result.stdout and "total" in result.stdout


def test_does_the_cli_guess_the_assignment_and_write_csv(reference_submission, tmp_path, manifest):
    csv = tmp_path / "scores.csv"
    result = run_cli(
        "grader",
        "grade",
        str(reference_submission / "res_dense_nets.ipynb"),
        "--csv",
        str(csv),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    header, row = csv.read_text().splitlines()[:2]
    assert header.startswith("student,assignment,score,max_score")
    assert f",res_dense_nets,{manifest.max_score:g}," in row


def test_are_operator_errors_reported_with_a_non_zero_exit(tmp_path):
    missing = run_cli("grader", "grade", str(tmp_path / "nope"), "--assignment", "res_dense_nets")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unknown = run_cli("grader", "grade", str(tmp_path), "--assignment", "no_such_assignment")
    assert unknown.returncode == 2 and "unknown assignment" in unknown.stderr
    empty = run_cli("grader", "grade", str(tmp_path), "--assignment", "res_dense_nets")
    assert empty.returncode == 2 and "no res_dense_nets submission" in empty.stderr


def test_is_an_unreadable_notebook_scored_zero_with_its_reason(tmp_path):
    folder = tmp_path / "bob" / "res_dense_nets"
    folder.mkdir(parents=True)
    (folder / "res_dense_nets.ipynb").write_text("{ this is not json")
    out = tmp_path / "r.json"
    result = run_cli(
        "grader", "grade", str(folder), "--assignment", "res_dense_nets", "--json", str(out)
    )
    assert result.returncode == 0
    report = json.loads(out.read_text())
    assert report["student"] == "bob" and report["score"] == 0
    assert all("invalid JSON" in c["message"] for c in report["checks"])
