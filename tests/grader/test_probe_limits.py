"""Is a probe held as a whole, and does nothing of it outlive it?

One grading run of a small nbgrader course, one job slot (`--jobs 1`) and a whole-probe memory
limit of `LIMIT_GIB`, grades in this order: shared memory that outlives its process, then a
reference copy; forked children that fill more memory together than the limit allows, then a
reference copy; filled tmpfs mounts, then a reference copy; a submission that reads what an
earlier attempt left. The run's Python is reached through a checkout whose `.venv` is a
symbolic link to the real environment (shared environments, CI caches). While it runs, a thread
samples the machine's shared and available memory (/proc/meminfo) and notes when each
student's report is written, so that the test can tell what the machine held while the next
student of the slot was being graded.

Without control groups (not root, or neither cgroup layout) there is nothing to measure: the
module is skipped, and the report says its limits are per process (tested in test_sandbox).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader.cgroups import PREFIX, find_layout
from grader.sandbox import bubblewrap_works
from tests.fixtures.grading import start_grading
from tests.fixtures.hostile import ASSIGNMENT, Targets, build
from tests.fixtures.hostile_limits import CHILD_BYTES, CHILDREN, SAW, SHM_BYTES

# Run alone (Makefile's `test`): memory limits filled on purpose, short cell limits.
pytestmark = pytest.mark.serial

GiB = 1024**3
LIMIT_GIB = 2
# In grading order (the folders sort so): each hostile student is followed by a reference copy.
ORDER = {
    "a1": "shm_outlives_probe",
    "a2": None,
    "b1": "forked_allocators",
    "b2": None,
    "c1": "tmpfs_filler",
    "c2": None,
    "d1": "reads_earlier_attempt",
}


def _meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) * 1024
    return values


@dataclass
class Watch:
    """(time, Shmem, MemAvailable) samples, and when each student's report appeared."""

    course: Path
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    written: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            info = _meminfo()
            now = time.monotonic()
            self.samples.append((now, info["Shmem"], info["MemAvailable"]))
            for student in ORDER:
                report = self.course / "autograded" / student / ASSIGNMENT / "report.json"
                if student not in self.written and report.is_file():
                    self.written[student] = now
            time.sleep(0.05)

    def between(self, first: str, last: str) -> list[tuple[float, int, int]]:
        """Samples after `first`'s report and before `last`'s: while `last` was graded."""
        return [s for s in self.samples if self.written[first] < s[0] < self.written[last]]


@dataclass
class Run:
    reports: dict[str, dict]
    watch: Watch
    baseline_shmem: int
    scratch: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory, reference_submission) -> Run:
    if not bubblewrap_works() or find_layout() is None:
        pytest.skip("needs the bubblewrap sandbox run as root on a machine with control groups")
    root = tmp_path_factory.mktemp("limits")
    targets = Targets.create(root / "targets", port=9)
    course = root / "course"
    built = root / "built"
    for student, fixture in ORDER.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.parent.mkdir(parents=True)
        if fixture:
            build(fixture, built, targets, reference_submission).rename(folder)
        else:
            shutil.copytree(reference_submission, folder)
    linked = root / "checkout" / ".venv"  # a checkout whose environment lives elsewhere
    linked.parent.mkdir()
    linked.symlink_to(Path(sys.executable).parent.parent.resolve(), target_is_directory=True)
    watch = Watch(course)
    baseline = _meminfo()["Shmem"]
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    grading = start_grading(
        [course / "submitted"],
        root / "reports.json",
        root / "scratch",
        "--jobs",
        "1",
        "--memory",
        str(LIMIT_GIB),
        "--no-gradebook",
        "--cell-timeout",
        "20",
        python=str(linked / "bin" / Path(sys.executable).name),
    )
    try:
        reports = grading.finish(timeout=900)
    finally:
        watch.stop.set()
        thread.join()
    return Run({r["student"]: r for r in reports}, watch, baseline, root / "scratch")


def _full_marks(report: dict) -> bool:
    return report["score"] == report["max_score"] and report["status"] == "graded"


def test_does_every_report_say_the_probe_is_held_as_a_whole(run):
    shares = find_layout().cpu  # a fair share of the cores per slot, where `cpu` is offered
    for report in run.reports.values():
        assert "whole-probe limits (cgroup v" in report["sandbox"], report["sandbox"]
        assert ("fair share of the cores" in report["sandbox"]) == shares, report["sandbox"]
        assert f"{LIMIT_GIB:g} GiB of memory" in report["sandbox"], report["sandbox"]


def test_does_shared_memory_die_with_the_probe_that_made_it(run):
    """While the next student of the slot is graded, the segment is gone from the machine."""
    samples = run.watch.between("a1", "a2")
    assert samples, "no sample was taken while a2 was graded"
    worst = max(shmem for _, shmem, _ in samples)
    assert worst < run.baseline_shmem + SHM_BYTES // 4, (
        f"shared memory {worst / GiB:.2f} GiB while the next student was graded "
        f"(before the run {run.baseline_shmem / GiB:.2f} GiB)"
    )
    assert _full_marks(run.reports["a1"]), run.reports["a1"]["notes"]


def test_is_a_probe_that_forks_held_to_its_memory_as_a_whole(run):
    """Four children of 1 GiB each: together over the 2 GiB limit, so some are killed, and the
    machine never lends the probe more than its limit (plus what the parent and zygote hold)."""
    wanted = CHILDREN * CHILD_BYTES
    assert wanted > LIMIT_GIB * GiB  # the fixture asks for more than the limit
    before = run.watch.between("a1", "a2")
    during = run.watch.between("a2", "b1")
    available_before = min(avail for _, _, avail in before)
    lowest = min(avail for _, _, avail in during)
    drop = available_before - lowest
    assert drop < (LIMIT_GIB + 1) * GiB, f"the machine lent the probe {drop / GiB:.2f} GiB"
    notes = " ".join(run.reports["b1"]["notes"])
    assert "ran out of memory" in notes and f"{LIMIT_GIB:g} GiB" in notes, notes
    assert run.reports["b1"]["status"] == "graded", run.reports["b1"]["machine_trouble"]


def test_does_tmpfs_memory_return_when_the_probe_ends(run):
    samples = run.watch.between("c1", "c2")
    worst = max(shmem for _, shmem, _ in samples)
    assert worst < run.baseline_shmem + 256 * 1024**2, f"{worst / GiB:.2f} GiB of tmpfs left"


@pytest.mark.parametrize("student", ["a2", "b2", "c2"])
def test_does_the_next_student_of_the_slot_grade_normally(run, student):
    """Reference copies, graded with a Python whose `.venv` is a link: full marks."""
    report = run.reports[student]
    assert _full_marks(report), (report["score"], report["notes"], report["machine_trouble"])


def test_can_a_later_attempt_see_nothing_of_an_earlier_one(run):
    report = run.reports["d1"]
    messages = [c["message"] for c in report["checks"] if SAW in c["message"]]
    assert messages, "the second attempt's cells did not report what they saw"
    seen = json.loads(messages[0].split(SAW, 1)[1].split("]", 1)[0] + "]")
    assert "/job/job-2.json" in seen, seen  # the listing is of the second attempt
    earlier = [p for p in seen if p.endswith(("-1.json", "/a1")) or "challenge" in p]
    assert not earlier, f"the second attempt's cells saw {earlier}"


def test_are_the_control_groups_removed_after_the_run(run):
    """No group of a finished run is left (`dlgrade-<pid>-<uid>` whose grader is gone); a run
    still going beside this one (another test, another operator) keeps its own."""
    layout = find_layout()
    groups = [p for parent in layout.parents.values() for p in parent.glob(f"{PREFIX}*")]
    left = [str(p) for p in groups if not Path(f"/proc/{p.name.split('-')[1]}").exists()]
    assert not left, left
