"""The hostile batch: which fixtures are graded together, how, and the helpers its tests judge
the reports with (the grading itself is the `graded` fixture of conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader.manifest import load_manifest
from tests.conftest import points
from tests.fixtures.grading import (
    leftovers,
    orphans,
)
from tests.fixtures.hostile import (
    ASSIGNMENT,
    CLASSMATE,
    Targets,
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
    "oversized_echoes",
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


def content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def pgrep(*args: str) -> list[str]:
    found = subprocess.run(["pgrep", "-a", *args], capture_output=True, text=True)
    return found.stdout.splitlines()


def leftovers_of(targets: Targets, scratch: Path) -> dict[str, list[str]]:
    """Processes the process-hostile fixtures started, and anything of the runs, if any."""
    return {
        "fork bomb": pgrep(targets.process_name("fork_bomb")),
        "daemon": pgrep(targets.process_name("background")),
        "sleep": pgrep("-f", f"sleep {targets.sleep_seconds}"),
        "sandboxes": leftovers(scratch),
        "probe uids": orphans(),
    }


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
