"""Hostile and broken submissions, graded end to end with the real command line.

Every fixture of `tests/fixtures/hostile.py` is the reference submission with something hostile
or broken added. They are graded in two CLI calls (`--jobs 2`): everything else, then the fork
bomb with plain reference copies started with it, while it runs and as it ends. Each
test then asks one question of one report: the checks the fixture attacks score 0 with a clear
reason, every other check is graded as usual, nothing got out of the sandbox (files,
connections, processes).

Nothing here hard-codes a score or an accuracy: points and the total come from the manifest,
thresholds from the expected-answers file, accuracies of weights without any attack from a
control fixture graded in the same batch.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader.judge import load_expected
from grader.sandbox import bubblewrap_works
from solutions.data import DataNotFoundError, resolve_root
from solutions.manifest import load_manifest
from tests.conftest import grade, points
from tests.fixtures.hostile import ASSIGNMENT, HUGE_WEIGHTS_BYTES, SECRETS, Targets, build

MANIFEST = load_manifest(ASSIGNMENT)
ACCURACY_CHECKS = tuple(f"{m.key}_accuracy" for m in MANIFEST.models)
# Short limits keep the module fast; the cell limit leaves room for the set-up cell's imports
# (several seconds on a loaded 2-core machine) so that only hostile cells ever hit it.
CELL_TIMEOUT_S = 10
SUBMISSION_TIMEOUT_S = 120
CLI_OPTIONS = ("--jobs", "2", "--cell-timeout", str(CELL_TIMEOUT_S))
CLI_OPTIONS += ("--timeout", str(SUBMISSION_TIMEOUT_S))

# In grading order, two at a time: slow fixtures first, so that both workers end together.
MAIN_BATCH = [
    "infinite_loop",
    "sigint_ignoring_loop",
    "ten_thousand_cells",
    "background_processes",
    "os_exit",
    "sigkill_self",
    "memory_bomb",
    "control_anti_trained",
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
]
# Graded after the main batch, two at a time: the fork bomb and a reference copy start together;
# the next copy starts when that one is done, while the bomb runs; the last one when the bomb's
# grading ends, while its processes are being killed.
BYSTANDERS = ["reference_beside_bomb", "reference_during_bomb", "reference_after_bomb"]
FORK_BOMB_BATCH = ["fork_bomb", *BYSTANDERS]
BATCH = MAIN_BATCH + FORK_BOMB_BATCH


@dataclass
class Graded:
    root: Path  # submissions are root/<name>/res_dense_nets/
    targets: Targets
    reports: dict[str, dict] = field(default_factory=dict)  # student -> report
    order: list[str] = field(default_factory=list)  # students, in the order reported
    seconds: list[float] = field(default_factory=list)  # the CLI calls' wall-clock times
    leftovers: dict[str, list[str]] = field(default_factory=dict)  # what -> `pgrep -a` lines
    connections: int = 0  # connections the test's listener accepted
    before: dict[Path, bytes | None] = field(default_factory=dict)
    after: dict[Path, bytes | None] = field(default_factory=dict)

    def report(self, name: str) -> dict:
        return self.reports[name]

    def text(self, name: str) -> str:
        return json.dumps(self.reports[name])

    def folder(self, name: str) -> Path:
        return self.root / name / ASSIGNMENT


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _pgrep(*args: str) -> list[str]:
    found = subprocess.run(["pgrep", "-a", *args], capture_output=True, text=True)
    return found.stdout.splitlines()


def _leftovers(targets: Targets) -> dict[str, list[str]]:
    """Processes the process-hostile fixtures started, if any still exist."""
    return {
        "fork bomb": _pgrep("-u", "65534", targets.process_name("fork_bomb")),
        "daemon": _pgrep("-u", "65534", targets.process_name("background")),
        "sleep": _pgrep("-f", f"sleep {targets.sleep_seconds}"),
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
    result = Graded(base / "submissions", targets)
    folders = {n: build(n, result.root, targets, reference_submission) for n in BATCH}
    protected = targets.protected_files()
    result.before = {p: _content(p) for p in protected}
    try:
        for names in (MAIN_BATCH, FORK_BOMB_BATCH):
            started = time.monotonic()
            reports = grade(*(folders[n] for n in names), extra=CLI_OPTIONS, tmp=targets.json_dir)
            result.seconds.append(time.monotonic() - started)
            result.order += [r["student"] for r in reports]
            result.reports.update({r["student"]: r for r in reports})
        result.leftovers = _leftovers(targets)
        while True:
            try:
                listener.accept()[0].close()
                result.connections += 1
            except BlockingIOError:
                break
        result.after = {p: _content(p) for p in protected}
        yield result
    finally:
        listener.close()
        # A sandbox that let a marker through must not leave it in the repository.
        for marker in targets.all_markers(BATCH, result.root):
            marker.unlink(missing_ok=True)
        targets.gradebook_journal.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ helpers


def assert_graded(
    report: dict,
    zero: dict[str, str | None] | None = None,
    *,
    ignore: tuple[str, ...] = (),
) -> None:
    """Checks in `zero` scored 0 with the phrase in their message; all others but `ignore` full."""
    zero = zero or {}
    assert report["max_score"] == MANIFEST.max_score
    assert [c["name"] for c in report["checks"]] == [c.name for c in MANIFEST.checks]
    wrong = {}
    for name, (got, most, message) in points(report).items():
        assert most == MANIFEST.check(name).points, name
        if name in zero:
            phrase = zero[name]
            if got != 0 or (phrase and phrase.lower() not in message.lower()):
                wrong[name] = f"{got}/{most}: {message} (expected 0 and {phrase!r})"
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


def assert_accuracy_as_control(graded: Graded, name: str) -> None:
    """The accuracy checks score and read exactly as for the same weights without any attack."""
    control = points(graded.report("control_anti_trained"))
    got = points(graded.report(name))
    for check in ACCURACY_CHECKS:
        assert got[check] == control[check], check


def measured_accuracy(message: str) -> float:
    found = re.search(r"test accuracy (\d+\.\d+)", message)
    assert found, message
    return float(found.group(1))


# ----------------------------------------------------------------------- the batch as a whole


def test_does_the_batch_go_on_after_every_hostile_submission(graded):
    assert graded.order == BATCH
    for name, report in graded.reports.items():
        assert report["assignment"] == ASSIGNMENT
        assert name == "invalid_json" or "bubblewrap" in report["sandbox"], name
        assert report["duration_s"] < SUBMISSION_TIMEOUT_S + 30, name


def test_was_nothing_written_outside_the_scratch_folders(graded):
    found = [p for p in graded.targets.all_markers(BATCH, graded.root) if p.exists()]
    assert found == []
    left = [p for n in BATCH for p in graded.folder(n).rglob("*")]
    assert [p for p in left if "leaked" in p.name or "was-here" in p.name] == []


def test_were_the_course_gradebook_and_earlier_reports_left_unchanged(graded):
    changed = [p for p in graded.before if graded.before[p] != graded.after[p]]
    assert changed == []
    assert not (graded.targets.json_dir / "forged-report.json").exists()


def test_does_the_control_with_anti_trained_weights_fail_only_the_accuracy(graded):
    """The reference for the monkeypatch fixtures: their weights, without any attack."""
    report = graded.report("control_anti_trained")
    assert_graded(report, {"resmlp_accuracy": "below the threshold"}, ignore=ACCURACY_CHECKS)
    assert measured_accuracy(points(report)["resmlp_accuracy"][2]) < 0.05


# ------------------------------------------------------------------ tampering with the kernel


def test_does_a_neutered_assert_transformer_change_nothing(graded):
    """Asserts turned into comments in the student's kernel; the summing DenseBlock still fails
    the DenseBlock checks on channels and concatenation, and what is built from it (DenseNet,
    shape answers) fails too. Its layers are BN -> ReLU -> conv, so the layer order scores."""
    dense_dependent = {
        c.name: None
        for c in MANIFEST.checks
        if c.name.startswith("densenet") or c.name == "shape_answers"
    }
    assert_graded(
        graded.report("neutered_asserts"),
        {
            "denseblock_channels": "expected",
            "denseblock_layer_inputs": "3x3 convolutions see",
            "denseblock_concatenates": "concatenated",
            **dense_dependent,
        },
    )


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
    evaluate that never calls eval() fails, and train_epoch (which calls train()) passes."""
    assert_graded(
        graded.report("patched_module_eval"),
        {"evaluate_mode": "training mode", "batchnorm_statistics": "evaluate changed"},
        ignore=(*ACCURACY_CHECKS, "evaluate_accuracy"),  # dropout makes evaluate's result random
    )
    assert_accuracy_as_control(graded, "patched_module_eval")


def test_does_a_patched_module_call_not_rescue_a_buggy_evaluate(graded):
    """nn.Module.__call__ (a dunder the library snapshot holds) replaced to switch a model to
    eval mode under no_grad: the evaluate that never calls eval() must still fail."""
    assert_graded(
        graded.report("patched_module_call"),
        {"evaluate_mode": "training mode", "batchnorm_statistics": "evaluate changed"},
        ignore=("evaluate_accuracy",),  # dropout makes evaluate's result random
    )


def test_does_a_fake_cuda_leave_the_device_checks_working(graded):
    assert_graded(graded.report("patched_cuda"), ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "patched_cuda")


def test_does_a_blocking_import_hook_leave_grading_unchanged(graded):
    assert_graded(graded.report("patched_import"), ignore=ACCURACY_CHECKS)
    assert_accuracy_as_control(graded, "patched_import")


def test_do_redefined_grader_helpers_change_no_points(graded):
    """grade_cell, Verdict and judge redefined in the probe: the ResBlock without skip still
    loses exactly its skip check (and `solutions` cannot be imported in the sandbox)."""
    # The reference weights do not fit a block without skip: resmlp_accuracy is that bug's too.
    assert_graded(
        graded.report("redefined_grader_helpers"),
        {"resblock_skip": "skip connection"},
        ignore=("resmlp_accuracy",),
    )


def test_can_a_submission_not_forge_the_grader_observations(graded):
    """The resblock observer, and the checks module's F.relu, replaced after the model cells to
    report a working skip connection for a ResBlock without one."""
    assert_graded(
        graded.report("forged_observations"),
        {"resblock_skip": "skip connection"},
        ignore=("resmlp_accuracy",),
    )


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
    report = graded.report("sigkill_self")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "SIGKILL", "graded without it")


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


# ------------------------------------------------------------------ notebook format and cells


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


def test_do_replayed_test_labels_score_at_chance(graded):
    """Labels replayed in the test files' order meet the grader's shuffled split: chance level,
    and 0 points whenever the expected threshold is above chance."""
    report = graded.report("replayed_test_labels")
    assert_graded(report, ignore=("resmlp_accuracy",))
    got, _, message = points(report)["resmlp_accuracy"]
    accuracy = measured_accuracy(message)
    assert accuracy < 0.13, message
    threshold = load_expected(ASSIGNMENT)["accuracy"]["resmlp"]["threshold"]
    assert (got == 0) == (accuracy < threshold), message


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
    assert_graded(report, {"resmlp_accuracy": "resmlp.pt"})
    message = points(report)["resmlp_accuracy"][2].lower()
    assert re.search(r"weights.only|unsafe|unsupported global", message), message


def test_is_a_two_gigabyte_weights_file_refused_quickly(graded):
    report = graded.report("huge_weights_file")
    size = f"{HUGE_WEIGHTS_BYTES / 1024**2:,.0f} MB"
    assert_graded(report, {"densenet_accuracy": size})
    assert report["duration_s"] < 2 * graded.report("control_anti_trained")["duration_s"] + 30
