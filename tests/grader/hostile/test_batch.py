"""The hostile batch as a whole, and attempts to tamper with the kernel."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.conftest import points
from tests.fixtures.grading import (
    walk_bounded,
)
from tests.fixtures.hostile import (
    ASSIGNMENT,
    BASES,
    NOTEBOOK,
)
from tests.grader.hostile.run import (
    ACCURACY_CHECKS,
    BATCH,
    MAIN_BATCH,
    MANIFEST,
    NOT_PROBED,
    SUBMISSION_TIMEOUT_S,
    assert_accuracy_as_control,
    assert_as_honest,
    assert_full_marks,
    assert_graded,
    measured_accuracy,
)

# Run alone (Makefile's `test`): 10 s cell limits an honest cell must stay under.
pytestmark = pytest.mark.serial

# ----------------------------------------------------------------------- the batch as a whole


def test_does_the_batch_go_on_after_every_hostile_submission(graded):
    print(f"CLI calls took {[round(s) for s in graded.seconds]} s (main, bomb, concurrent)")
    assert graded.order == BATCH
    for name, report in graded.reports.items():
        assert report["assignment"] == ASSIGNMENT
        assert name in NOT_PROBED or "bubblewrap" in report["sandbox"], name
        assert report["duration_s"] < SUBMISSION_TIMEOUT_S + 30, name
        # A signal nobody sent may be the machine's doing (the OOM killer): graded twice, then
        # left for the instructor to look at. Nothing else here may need a look.
        review = name == "sigkill_self"
        assert (report["status"] == "review") == review, (name, report["machine_trouble"])


def test_is_every_student_of_the_course_written(graded):
    """Report and autograded notebook for each, a gradebook row with the report's score for
    each final report (none for one in review), and one CSV row per student: whatever an
    earlier student's notebook held."""
    with Gradebook(f"sqlite:///{graded.course / 'gradebook.db'}") as gradebook:
        scores = {s.student.id: s.score for s in gradebook.find_assignment(ASSIGNMENT).submissions}
    for name in BATCH:
        folder = graded.autograded(name)
        saved = json.loads((folder / "report.json").read_text())
        assert saved["score"] == graded.report(name)["score"], name
        if saved["status"] == "review":
            assert name not in scores, name
        else:
            assert scores[name] == pytest.approx(saved["score"]), name
        nbformat.validate(nbformat.read(folder / NOTEBOOK, as_version=4))
        # As nbgrader's autograde: the submission's timestamp.txt, and none handed in one that
        # can be read (huge_timestamp's is 16 GiB).
        assert not (folder / "timestamp.txt").exists(), name
    header, *rows = graded.csv_rows
    assert header.startswith("student,assignment,score,max_score")
    assert sorted(r.split(",")[0] for r in rows) == sorted(MAIN_BATCH)


def test_was_nothing_written_outside_the_scratch_folders(graded):
    submitted = graded.course / "submitted"
    found = [p for p in graded.targets.all_markers(BATCH, submitted) if p.exists()]
    assert found == []
    left = [p for p in walk_bounded(submitted) if "leaked" in p.name or "was-here" in p.name]
    assert left == []


def test_are_the_submitted_files_left_as_handed_in(graded):
    assert graded.submitted_after == graded.submitted_before


def test_were_the_course_gradebook_and_earlier_reports_left_unchanged(graded):
    changed = [p for p in graded.before if graded.before[p] != graded.after[p]]
    assert changed == []
    assert not (graded.targets.json_dir / "forged-report.json").exists()


def test_is_nothing_of_the_runs_left_running_or_lying_around(graded):
    """No sandbox, zygote or probe process outlives its run, and the runs' scratch folders
    (slots, inputs) are gone, even the tree a probe nested 3,000 folders deep."""
    assert graded.leftovers["sandboxes"] == []
    assert graded.leftovers["probe uids"] == []
    assert graded.scratch_left == []


def test_does_the_control_with_anti_trained_weights_fail_only_the_accuracy(graded):
    """The reference for the monkeypatch fixtures: their weights, without any attack."""
    report = graded.report("control_anti_trained")
    assert_graded(report, {"resmlp_accuracy": "below the threshold"}, ignore=ACCURACY_CHECKS)
    assert measured_accuracy(points(report)["resmlp_accuracy"][2]) < 0.05


@pytest.mark.parametrize("name", sorted({f"honest_{b}" for b in BASES.values()}))
def test_do_the_honest_variants_lose_what_their_mistake_costs(graded, name):
    """The yardsticks of the attacks built on them: each loses points (its own variant test
    says on which checks)."""
    assert graded.report(name)["score"] < MANIFEST.max_score


# ------------------------------------------------------------------ tampering with the kernel


def test_does_a_neutered_assert_transformer_change_nothing(graded):
    """Asserts turned into comments in the student's kernel: the summing DenseBlock scores as
    it does without the transformer."""
    assert_as_honest(graded, "neutered_asserts")


def test_does_a_silenced_traceback_hide_nothing(graded):
    assert_full_marks(graded.report("silenced_tracebacks"))


def test_does_patching_tensor_eq_leave_grading_unchanged(graded):
    """`==` always True must not reach the observers: evaluate() still returns the real accuracy
    and the submitted weights score what they score without the patch."""
    assert_graded(graded.report("patched_tensor_eq"), ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "patched_tensor_eq")


def test_does_patching_tensor_sum_leave_grading_unchanged(graded):
    assert_graded(graded.report("patched_tensor_sum"), ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "patched_tensor_sum")


def test_does_a_no_op_module_eval_not_rescue_a_buggy_evaluate(graded):
    """eval() a no-op and train() stuck in eval mode: the grader must see the real modes, so the
    evaluate that never calls eval() fails as it does without the patch."""
    report = graded.report("patched_module_eval")
    assert_graded(report, {"evaluate_mode": "training mode"})
    assert_as_honest(graded, "patched_module_eval")


def test_does_a_patched_module_call_not_rescue_a_buggy_evaluate(graded):
    """nn.Module.__call__ (a dunder the library snapshot holds) replaced to switch a model to
    eval mode under no_grad: the evaluate that never calls eval() must still fail."""
    assert_graded(graded.report("patched_module_call"), {"evaluate_mode": "training mode"})
    assert_as_honest(graded, "patched_module_call")


def test_does_a_fake_cuda_leave_the_device_checks_working(graded):
    assert_graded(graded.report("patched_cuda"), ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "patched_cuda")


def test_does_a_blocking_import_hook_leave_grading_unchanged(graded):
    assert_graded(graded.report("patched_import"), ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "patched_import")


def test_do_redefined_grader_helpers_change_no_points(graded):
    """grade_cell, Verdict and judge redefined in the probe: the ResBlock without skip scores
    as it does honestly (and `solutions` cannot be imported in the sandbox)."""
    assert_graded(
        graded.report("redefined_grader_helpers"),
        {"resblock_skip": "skip connection"},
        ignore=("resmlp_accuracy",),  # weights trained for a block with a skip do not fit
    )
    assert_as_honest(graded, "redefined_grader_helpers")


def test_can_a_submission_not_forge_through_the_grader_s_own_code(graded):
    """The skip observer's code rewritten in place and the checks module's helpers replaced,
    after the model cells: the grader restores them before observing."""
    assert_graded(
        graded.report("forged_observations"),
        {"resblock_skip": "skip connection"},
        ignore=("resmlp_accuracy",),
    )
    assert_as_honest(graded, "forged_observations")
