"""Hostile and broken submissions, graded end to end with the real command line.

Every fixture of `tests/fixtures/hostile.py` is the reference submission, or a buggy variant,
with something hostile or broken added. They are laid out as an nbgrader course
(`submitted/<name>/res_dense_nets/`) and graded in two CLI calls (`--jobs 2`, the venv's Python
called directly without its `bin` on PATH, as an operator's cron job would): everything else,
then the fork bomb with plain reference copies started with it, while it runs and as it ends,
while a second, independent grading run of reference copies goes on at the same time. Each test
then asks one question: the checks the fixture attacks lose points with a clear reason, every
other check is graded as usual, an attack on a buggy variant never earns more than that variant
graded honestly in the same batch, nothing got out of the sandbox (files, links, connections,
processes), and every student's results are written (report, autograded notebook, gradebook,
CSV, JSON).

Nothing here hard-codes a score or an accuracy: points and the total come from the manifest,
thresholds from the expected-answers file, what a mistake costs from its honest variant, and
accuracies of weights without any attack from a control fixture graded in the same batch.

Tests marked xfail (strict) are attacks that still work, with the reason; they turn into
failures the day the grader stops them, so that the marker goes.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader.judge import load_expected
from grader.manifest import load_manifest
from grader.sandbox import bubblewrap_works
from solutions.data import DataNotFoundError, resolve_root
from tests.conftest import points
from tests.fixtures.grading import (
    leftovers,
    orphans,
    remove_tree,
    start_grading,
    tree_state,
    walk_bounded,
)
from tests.fixtures.hostile import (
    ASSIGNMENT,
    BASES,
    CLASSMATE,
    DEEP_LEVELS,
    HUGE_WEIGHTS_BYTES,
    NOTEBOOK,
    SECRETS,
    Targets,
    build,
    honest_of,
)

MANIFEST = load_manifest(ASSIGNMENT)
ACCURACY_CHECKS = tuple(f"{m.key}_accuracy" for m in MANIFEST.models)
# Short limits keep the module fast; the cell limit leaves room for the set-up cell's imports
# (several seconds on a loaded 2-core machine) so that only hostile cells ever hit it.
CELL_TIMEOUT_S = 10
SUBMISSION_TIMEOUT_S = 120
CLI_OPTIONS = ("--jobs", "2", "--cell-timeout", str(CELL_TIMEOUT_S))
CLI_OPTIONS += ("--timeout", str(SUBMISSION_TIMEOUT_S))

# In grading order, two at a time: slow fixtures first, so that both workers end together. The
# malformed metadata and the deep tree a probe leaves come early: many students follow them.
MAIN_BATCH = [
    "infinite_loop",
    "sigint_ignoring_loop",
    "odd_nbgrader_metadata",
    "deep_tree_left_behind",
    "ten_thousand_cells",
    "background_processes",
    "zygote_requests",
    "links_for_the_host",
    "test_label_lookup",
    "os_exit",
    "sigkill_self",
    "memory_bomb",
    "control_anti_trained",
    "honest_no_skip",
    "honest_summed_features",
    "honest_eval_never_called",
    "forged_files_then_exit",
    "padded_observations",
    "rewritten_results",
    "answers_the_challenge_itself",
    "observation_bombs",
    "progress_flood",
    "carried_public_labels",
    "neutered_asserts",
    "silenced_tracebacks",
    "patched_tensor_eq",
    "patched_tensor_sum",
    "patched_module_eval",
    "patched_module_call",
    "patched_cuda",
    "patched_import",
    "redefined_grader_helpers",
    "forged_observations",
    "sys_exit",
    "exit_builtin",
    "huge_output_line",
    "stderr_warnings",
    "reads_secrets",
    "writes_gradebook",
    "opens_network",
    "mangled_grade_cells",
    "inflated_points",
    "grade_cell_as_markdown",
    "prefilled_outputs",
    "replayed_test_labels",
    "invalid_json",
    "non_utf8_markdown",
    "schema_invalid",
    "malicious_pickle_weights",
    "huge_weights_file",
    "notebook_links_source",
    CLASSMATE,
    "notebook_links_classmate",
    "folder_links_classmate",
    "huge_timestamp",
    "deep_submission_folder",
]
# Graded after the main batch, two at a time: the fork bomb and a reference copy start together;
# the next copy starts when that one is done, while the bomb runs; the last one when the bomb's
# grading ends, while its processes are being killed.
BYSTANDERS = ["reference_beside_bomb", "reference_during_bomb", "reference_after_bomb"]
FORK_BOMB_BATCH = ["fork_bomb", *BYSTANDERS]
BATCH = MAIN_BATCH + FORK_BOMB_BATCH
# A second grading run of its own (another instructor, say), at the same time as the fork bomb's.
CONCURRENT = [f"concurrent_{i}" for i in range(4)]
# Refused before any probe runs: their report says so, without a sandbox.
NOT_PROBED = (
    "invalid_json",
    "notebook_links_source",
    "notebook_links_classmate",
    "folder_links_classmate",
)


@dataclass
class Graded:
    course: Path  # an nbgrader course: submissions are course/submitted/<name>/res_dense_nets/
    targets: Targets
    reports: dict[str, dict] = field(default_factory=dict)  # student -> report
    order: list[str] = field(default_factory=list)  # students, in the order reported
    concurrent: dict[str, dict] = field(default_factory=dict)  # the other run's reports
    seconds: list[float] = field(default_factory=list)  # the CLI calls' wall-clock times
    leftovers: dict[str, list[str]] = field(default_factory=dict)  # what -> process lines
    connections: int = 0  # connections the test's listener accepted
    before: dict[Path, bytes | None] = field(default_factory=dict)
    after: dict[Path, bytes | None] = field(default_factory=dict)
    victims_before: dict = field(default_factory=dict)
    victims_after: dict = field(default_factory=dict)
    submitted_before: dict = field(default_factory=dict)  # the handed-in files, as handed in
    submitted_after: dict = field(default_factory=dict)
    csv_rows: list[str] = field(default_factory=list)  # the main batch's CSV, as written
    scratch_left: list[str] = field(default_factory=list)  # what the runs left in TMPDIR

    def report(self, name: str) -> dict:
        return self.reports[name]

    def text(self, name: str) -> str:
        return json.dumps(self.reports[name])

    def folder(self, name: str) -> Path:
        return self.course / "submitted" / name / ASSIGNMENT

    def autograded(self, name: str) -> Path:
        return self.course / "autograded" / name / ASSIGNMENT


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _pgrep(*args: str) -> list[str]:
    found = subprocess.run(["pgrep", "-a", *args], capture_output=True, text=True)
    return found.stdout.splitlines()


def _leftovers(targets: Targets, scratch: Path) -> dict[str, list[str]]:
    """Processes the process-hostile fixtures started, and anything of the runs, if any."""
    return {
        "fork bomb": _pgrep(targets.process_name("fork_bomb")),
        "daemon": _pgrep(targets.process_name("background")),
        "sleep": _pgrep("-f", f"sleep {targets.sleep_seconds}"),
        "sandboxes": leftovers(scratch),
        "probe uids": orphans(),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory, reference_submission) -> Graded:
    """Build every fixture, grade them with the CLI, and record what happened around that."""
    try:
        resolve_root(MANIFEST.dataset, online=False)
    except DataNotFoundError as err:
        pytest.skip(f"the real test split is needed: {err}")
    if not bubblewrap_works():
        pytest.skip("the hostile fixtures need the bubblewrap sandbox")
    base = tmp_path_factory.mktemp("hostile")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    targets = Targets.create(base / "targets", port=listener.getsockname()[1])
    result = Graded(base / "course", targets)
    submitted = result.course / "submitted"
    folders = {n: build(n, submitted, targets, reference_submission) for n in BATCH}
    others = base / "other-run"
    for name in CONCURRENT:
        shutil.copytree(reference_submission, others / name / ASSIGNMENT)
    protected = targets.protected_files()
    result.before = {p: _content(p) for p in protected}
    result.victims_before = targets.victim_state()
    result.submitted_before = tree_state(submitted)
    scratch = base / "scratch"
    try:
        main = start_grading(
            [folders[n] for n in MAIN_BATCH], base / "main.json", scratch, *CLI_OPTIONS
        )
        reports = main.finish()
        result.seconds.append(main.seconds)
        result.csv_rows = (result.course / f"dlgrade-{ASSIGNMENT}.csv").read_text().splitlines()
        # The fork bomb's batch, and another run of its own at the same time.
        bomb = start_grading(
            [folders[n] for n in FORK_BOMB_BATCH], base / "bomb.json", scratch, *CLI_OPTIONS
        )
        other = start_grading(
            [others / n / ASSIGNMENT for n in CONCURRENT],
            base / "other.json",
            scratch,
            *CLI_OPTIONS,
        )
        reports += bomb.finish()
        result.concurrent = {r["student"]: r for r in other.finish()}
        result.seconds += [bomb.seconds, other.seconds]
        result.order = [r["student"] for r in reports]
        result.reports = {r["student"]: r for r in reports}
        result.leftovers = _leftovers(targets, scratch)
        # Only the grader's own folders (libraries may leave caches of theirs in TMPDIR).
        result.scratch_left = sorted(p.name for p in scratch.glob("dlgrade-*"))
        while True:
            try:
                listener.accept()[0].close()
                result.connections += 1
            except BlockingIOError:
                break
        result.after = {p: _content(p) for p in protected}
        result.victims_after = targets.victim_state()
        result.submitted_after = tree_state(submitted)
        yield result
    finally:
        listener.close()
        # A sandbox that let a marker through must not leave it in the repository.
        for marker in targets.all_markers(BATCH, submitted):
            marker.unlink(missing_ok=True)
        targets.gradebook_journal.unlink(missing_ok=True)
        # Deeper than pytest's own (recursive) clean-up of old temporary folders goes.
        remove_tree(folders["deep_submission_folder"])
        remove_tree(scratch)


# ------------------------------------------------------------------------------------ helpers


def assert_graded(
    report: dict,
    lose: dict[str, str | None] | None = None,
    *,
    ignore: tuple[str, ...] = (),
    zero: bool = False,
) -> None:
    """Checks in `lose` lost points (0 of them with `zero`), with the phrase in their message;
    every other check but `ignore` got full points."""
    lose = lose or {}
    names = [c.name for c in MANIFEST.checks]
    assert set(lose) <= set(names) and set(ignore) <= set(names), "not checks of the manifest"
    assert report["max_score"] == MANIFEST.max_score
    assert [c["name"] for c in report["checks"]] == names
    wrong = {}
    for name, (got, most, message) in points(report).items():
        assert most == MANIFEST.check(name).points, name
        if name in lose:
            phrase = lose[name]
            kept = got > 0 if zero else got >= most
            if kept or (phrase and phrase.lower() not in message.lower()):
                wrong[name] = f"{got}/{most}: {message} (expected a loss and {phrase!r})"
        elif name not in ignore and got != most:
            wrong[name] = f"{got}/{most}: {message}"
    assert wrong == {}, f"notes: {report['notes']}"


def assert_full_marks(report: dict) -> None:
    assert_graded(report)
    assert report["score"] == MANIFEST.max_score


def assert_note(report: dict, *phrases: str) -> None:
    notes = " | ".join(report["notes"])
    for phrase in phrases:
        assert phrase.lower() in notes.lower(), notes


def assert_no_more_than_honest(graded: Graded, name: str) -> None:
    """The attack earned no check more than the same mistake graded honestly."""
    honest = points(graded.report(honest_of(name)))
    got = points(graded.report(name))
    gained = {
        check: f"{got[check][0]:g} > {honest[check][0]:g}: {got[check][2]}"
        for check in honest
        if got[check][0] > honest[check][0]
    }
    assert gained == {}, f"notes: {graded.report(name)['notes']}"
    assert graded.report(name)["score"] <= graded.report(honest_of(name))["score"]


def assert_as_honest(graded: Graded, name: str, ignore: tuple[str, ...] = ()) -> None:
    """Every check scored exactly as the same mistake graded without the attack."""
    honest = points(graded.report(honest_of(name)))
    got = points(graded.report(name))
    differ = {
        check: f"{got[check][0]:g} (honest {honest[check][0]:g}): {got[check][2]}"
        for check in honest
        if check not in ignore and got[check][0] != honest[check][0]
    }
    assert differ == {}, f"notes: {graded.report(name)['notes']}"


def accuracy(report: dict, check: str) -> float:
    value = next(c for c in report["checks"] if c["name"] == check).get("value")
    assert value is not None, points(report)[check]
    return value


def assert_accuracy_as_control(graded: Graded, name: str) -> None:
    """The accuracy checks score and measure exactly as the same weights without any attack."""
    control, got = graded.report("control_anti_trained"), graded.report(name)
    for check in ACCURACY_CHECKS:
        assert points(got)[check][0] == points(control)[check][0], check
        assert accuracy(got, check) == pytest.approx(accuracy(control, check), abs=1e-6), check


def measured_accuracy(message: str) -> float:
    found = re.search(r"test accuracy (\d+\.\d+)", message)
    assert found, message
    return float(found.group(1))


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


# -------------------------------------------------------------- exits, crashes, hangs, limits


@pytest.mark.parametrize("name", ["sys_exit", "exit_builtin"])
def test_is_exiting_between_model_cells_harmless(graded, name):
    """IPython turns these into an error of that cell; the rest of the notebook runs."""
    assert_full_marks(graded.report(name))


def test_is_os_exit_between_model_cells_skipped_and_the_rest_graded(graded):
    report = graded.report("os_exit")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "exited early", "graded without it")


def test_is_a_self_sigkill_between_model_cells_skipped_and_the_rest_graded(graded):
    """Graded twice (a SIGKILL may be the OOM killer's), full marks both times, and marked for
    review: a student can make the instructor look, not change a grade."""
    report = graded.report("sigkill_self")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "SIGKILL", "graded without it", "graded twice")


@pytest.mark.parametrize("name", ["infinite_loop", "sigint_ignoring_loop"])
def test_is_an_endless_cell_skipped_after_the_cell_timeout(graded, name):
    report = graded.report(name)
    assert_full_marks(report)
    assert_note(report, "stopped the probe", f"longer than {CELL_TIMEOUT_S} s", "graded without it")


def test_is_a_memory_bomb_contained(graded):
    assert_full_marks(graded.report("memory_bomb"))


def test_is_a_fork_bomb_contained_and_cleaned_up(graded):
    """The process limit stops the bomb, the cell timeout stops its cell, the grading goes on
    without that cell (full marks), and none of its processes is left."""
    assert graded.leftovers["fork bomb"] == []
    assert_full_marks(graded.report("fork_bomb"))


@pytest.mark.parametrize("name", BYSTANDERS)
def test_are_the_submissions_graded_beside_a_fork_bomb_unharmed(graded, name):
    """One student's fork bomb must not cost another student points, whenever their grading
    starts: with the bomb's, while it runs, or while its processes are being killed."""
    assert_full_marks(graded.report(name))


@pytest.mark.parametrize("name", CONCURRENT)
def test_does_a_second_grading_run_at_the_same_time_get_full_marks(graded, name):
    """Two runs on one machine (the fork bomb's, and one of reference copies): disjoint probe
    uids, so neither kills the other's probes while reaping its own."""
    assert sorted(graded.concurrent) == CONCURRENT
    assert_full_marks(graded.concurrent[name])


def test_do_background_processes_die_with_the_grading(graded):
    assert_full_marks(graded.report("background_processes"))
    assert graded.leftovers["daemon"] == [] and graded.leftovers["sleep"] == []
    markers = graded.targets.markers_for(
        "background_processes", graded.folder("background_processes")
    )
    time.sleep(1)  # a surviving daemon writes its markers every second
    assert [p for p in markers if p.exists()] == []


def test_is_a_fifty_megabyte_output_line_harmless(graded):
    assert_full_marks(graded.report("huge_output_line"))


def test_do_stderr_warnings_cost_no_points(graded):
    assert_full_marks(graded.report("stderr_warnings"))


# ---------------------------------------------- issue 7: privileges, links, the zygote's pipe


def test_can_a_probe_reach_neither_the_zygote_nor_root(graded):
    """Requests written to every other process's descriptors, links and FIFOs aimed at the
    zygote's request pipe where the host and the next attempt look: the next attempt still runs
    unprivileged (the ResBlock cell raises otherwise), and the rest is graded."""
    report = graded.report("zygote_requests")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "graded without it")


def test_does_the_host_follow_no_link_a_probe_plants_before_a_retry(graded):
    """Links to a root-only file and tree planted in the probe's folders, which it then made
    0777 before dying: the host starts the retry in fresh folders and changes nothing."""
    report = graded.report("links_for_the_host")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "graded without it")
    assert graded.victims_after == graded.victims_before


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
    assert_note(report, "nested too deep")
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
