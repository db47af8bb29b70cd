"""Test labels inside the sandbox, forged and padded results, reading and writing."""

from __future__ import annotations

import pytest

from grader.judge import load_expected
from grader.report import MAX_MESSAGE_CHARS
from tests.conftest import points
from tests.fixtures.hostile import (
    ASSIGNMENT,
    NOTEBOOK,
    SECRETS,
)
from tests.grader.hostile.run import (
    ACCURACY_CHECKS,
    accuracy,
    assert_accuracy_as_control,
    assert_as_honest,
    assert_full_marks,
    assert_graded,
    assert_no_more_than_honest,
    measured_accuracy,
)

# Run alone (Makefile's `test`): the hostile batch: 10 s cell limits.
pytestmark = pytest.mark.serial

# --------------------------------------------------- issue 7: test labels inside the sandbox


def test_are_the_test_labels_nowhere_in_the_sandbox(graded):
    """A notebook that hunts the real test labels (Debian's package, caches, data roots,
    compressed copies) finds none (its ResBlock cell raises otherwise) and its look-up models
    score what the weights score."""
    report = graded.report("test_label_lookup")
    assert_graded(report, ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "test_label_lookup")


def test_were_the_carried_labels_models_evaluated(graded):
    """Precondition of the next test: the look-up models ran and were measured."""
    report = graded.report("carried_public_labels")
    assert_graded(report, ignore=ACCURACY_CHECKS)
    for check in ACCURACY_CHECKS:
        accuracy(report, check)


@pytest.mark.xfail(
    strict=True,
    reason="still possible: Fashion-MNIST's test split is public, so a notebook (or a weights "
    "file, as a buffer) can carry its labels keyed by image; no sandbox can stop it, only a "
    "private test split (or one the grader perturbs) could",
)
def test_does_a_notebook_carrying_the_public_labels_score_no_more_than_its_weights(graded):
    assert_accuracy_as_control(graded, "carried_public_labels")


def test_do_replayed_test_labels_score_at_chance(graded):
    """Labels replayed in the test files' order meet the grader's shuffled split: chance level,
    and 0 points whenever the expected threshold is above chance."""
    report = graded.report("replayed_test_labels")
    assert_graded(report, ignore=("resmlp_accuracy",))
    got, _, message = points(report)["resmlp_accuracy"]
    measured = measured_accuracy(message)
    assert measured < 0.13, message
    threshold = load_expected(ASSIGNMENT)["accuracy"]["resmlp"]["threshold"]
    assert (got == 0) == (measured < threshold), message


# ------------------------------------------------------- issue 7: forged and padded results


def test_do_result_files_written_before_the_observers_count_for_nothing(graded):
    """Result files and the progress of a finished run written by a cell, which then exits: the
    files answer no challenge, so nothing is earned (the run counts as finished: every result
    is refused and says why)."""
    assert_no_more_than_honest(graded, "forged_files_then_exit")


def test_does_padding_the_results_dilute_no_failure(graded):
    """Every list of every result padded with passing-looking entries: partial credit counts
    the settings the grader asked about, not the entries the student's data holds."""
    report = graded.report("padded_observations")
    assert "no usable result" not in points(report)["resblock_skip"][2]  # the judge saw them
    assert_as_honest(graded, "padded_observations")


@pytest.mark.parametrize("name", ["rewritten_results", "answers_the_challenge_itself"])
def test_were_the_forged_skip_results_read(graded, name):
    """Precondition of the next two tests: the grader read the forged skip results (they were
    well formed) and graded everything else as for the honest variant."""
    assert "no usable result" not in points(graded.report(name))["resblock_skip"][2]
    assert_as_honest(graded, name, ignore=("resblock_skip", "resblock_behaviour"))


@pytest.mark.xfail(
    strict=True,
    reason="still possible: student code shares the probe's process, so after the challenge "
    "it can rewrite what an observer records (an audit hook, a thread, frames on the stack); "
    "checks whose expected value can be computed from the settings alone (the zeroed-block "
    "skip test, shapes, booleans, device names) can be passed without a correct implementation",
)
def test_does_rewriting_a_result_in_the_probe_earn_nothing(graded):
    assert_no_more_than_honest(graded, "rewritten_results")


@pytest.mark.xfail(
    strict=True,
    reason="still possible: a cell can announce `cells_done` itself, read the challenge (nonce "
    "and settings) that this makes the supervisor publish, and answer it with the grader's own "
    "observers and forged values; the nonce proves freshness, not who computed the answer",
)
def test_does_answering_the_challenge_from_a_cell_earn_nothing(graded):
    assert_no_more_than_honest(graded, "answers_the_challenge_itself")


def test_are_bombs_in_the_results_refused_without_hurting_the_parent(graded):
    """Tensors aliasing one 8 MiB blob 400 times, a zlib bomb, JSON nested 100,000 deep: each
    result is refused (its checks score 0 with the reason), nothing else is lost, and the
    grader's own process neither inflates them nor fails on them."""
    refused = "no usable result"
    lose = {
        name: refused
        for name in (
            "denseblock_layer_inputs",
            "denseblock_concatenates",
            "denseblock_layer_order",
            "densenet_block_inputs",
            "densenet_fc_input",
            "densenet_parameters",
            "shape_answers",
        )
    }
    report = graded.report("observation_bombs")
    assert_graded(report, lose, zero=True)
    assert report["machine_trouble"] == [] and report["status"] == "graded"


def test_does_a_flood_of_progress_lines_change_nothing(graded):
    """64 MB of repeated and unknown events and an over-long line in the progress file: the
    supervisor keeps what it needs (memory: see test_untrusted_files) and grades as usual."""
    assert_full_marks(graded.report("progress_flood"))


# ---------------------------------------------------------------------- reading and writing


def test_are_hidden_tests_expected_answers_and_solutions_unreadable(graded):
    """The cell raises (and costs the ResBlock checks) if any read works; nothing leaks."""
    assert_full_marks(graded.report("reads_secrets"))
    text = graded.text("reads_secrets")
    clean = graded.text("silenced_tracebacks")  # lines any report holds are no leak
    for path in SECRETS.values():
        lines = [line.strip() for line in path.read_text().splitlines() if len(line.strip()) > 25]
        snippets = [line for line in lines if line not in clean][:30]
        assert snippets and not [s for s in snippets if s in text], path
    assert "### BEGIN HIDDEN TESTS" not in text and "### BEGIN SOLUTION" not in text


def test_are_the_gradebook_and_reports_safe_from_a_submission(graded):
    assert_full_marks(graded.report("writes_gradebook"))
    targets = graded.targets
    for path in (targets.course / "gradebook.db", targets.json_dir / "previous-report.json"):
        assert graded.after[path] == graded.before[path], path
    assert not (targets.json_dir / "forged-report.json").exists()
    assert not targets.gradebook_journal.exists()


def test_is_the_network_unreachable_from_a_submission(graded):
    assert_full_marks(graded.report("opens_network"))
    assert graded.connections == 0


def test_are_oversized_echoes_cut_short(graded):
    """Every result replaced by an 8 MB error text, and an 8 MB nbformat value: every check
    scores 0 and says so, and the report and autograded notebook echo each text cut short
    (they were 240 MB, the error copied into every check of its observer)."""
    report = graded.report("oversized_echoes")
    assert report["score"] == 0 and report["status"] == "graded"
    for check in report["checks"]:
        assert check["message"].startswith("EEEE"), check["name"]
        assert len(check["message"]) <= MAX_MESSAGE_CHARS + 100, check["name"]
    assert all(len(n) < 500 for n in report["notes"]), [n[:100] for n in report["notes"]]
    assert any("more characters" in n for n in report["notes"])
    folder = graded.autograded("oversized_echoes")
    for name in ("report.json", NOTEBOOK):
        assert (folder / name).stat().st_size < 1024**2, name
