"""Guards of a course run: the course belongs to this checkout, its release is current, and
only one run grades it at a time.

* **This checkout's course.** A course's reports, CSV and gradebook hold grades of one
  checkout's manifests and checks. When the course has its own `release/<id>/<id>.ipynb` it must
  be this checkout's; and `<course>/.dlgrade/checkout` records the checkout of its first run, so
  a run from another checkout (another directory, an old clone) is refused instead of quietly
  overwriting grades with another version's.
* **A current release.** The points of the release (and source) notebook's grade cells must be
  the manifest's: after a change of points, nbgrader's gradebook, the autograded notebooks and
  formgrader would otherwise disagree with the reports.
* **One run at a time.** `<course>/.dlgrade/lock` is locked (flock) for the run's life; the
  file names the holder, so a second run says who it waits for and stops.

Each refusal is a `CourseError` with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from grader.judge import published_thresholds
from grader.manifest import Manifest
from solutions.paths import ASSIGNMENTS_DIR, RELEASE_DIR, REPO_ROOT, SOURCE_DIR

STATE_DIR = ".dlgrade"
CHECKOUT_FILE = "checkout"
LOCK_FILE = "lock"


class CourseError(RuntimeError):
    """The course cannot be graded by this run; the message is the one line to show."""


def state_dir(course: Path) -> Path:
    folder = course / STATE_DIR
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as err:
        raise CourseError(f"cannot keep the course's state in {folder}: {err}") from None
    return folder


@contextlib.contextmanager
def course_lock(course: Path, command: str) -> Iterator[None]:
    """Hold the course's lock while the block runs; CourseError when another run holds it."""
    path = state_dir(course) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise CourseError(f"cannot open the course's lock {path}: {err}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1000, 0).decode("utf-8", "replace").strip() or "unknown"
            raise CourseError(
                f"another run is grading {course} ({holder}): wait for it to finish, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()}, since {started}: {command}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_checkout(course: Path, manifest: Manifest) -> None:
    """Refuse a course released from, or graded by, another checkout; record this checkout
    on the course's first run."""
    ours = RELEASE_DIR / manifest.id / manifest.notebook
    theirs = course / "release" / manifest.id / manifest.notebook
    if theirs.is_file() and theirs.resolve() != ours.resolve() and _sha256(theirs) != _sha256(ours):
        raise CourseError(
            f"{theirs} differs from this checkout's {ours}: grade {course} with the checkout "
            "it was released from (run python -m grader in that checkout)"
        )
    record = state_dir(course) / CHECKOUT_FILE
    here = str(REPO_ROOT)
    if record.is_file():
        graded_by = record.read_text().strip()
        if graded_by != here:
            raise CourseError(
                f"{course} is graded by the checkout {graded_by}, not by this one ({here}): run "
                f"python -m grader there, or delete {record} to grade it with this checkout"
            )
        return
    try:
        record.write_text(here + "\n")
    except OSError as err:
        raise CourseError(f"cannot record this checkout in {record}: {err}") from None


def _grade_cell_points(notebook: Path) -> dict[str, float]:
    cells = json.loads(notebook.read_text()).get("cells", [])
    points = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points[meta.get("grade_id")] = round(float(meta.get("points", 0)), 4)
    return points


def check_release(manifest: Manifest) -> None:
    """Refuse to grade when the source or release notebook's grade cells are not worth what
    the manifest says, or it lists other accuracy thresholds than the grader applies (a change
    of points or thresholds without `make release`)."""
    want = {
        cell: round(sum(c.points for c in checks), 4) for cell, checks in manifest.cells().items()
    }
    thresholds = published_thresholds(manifest)
    for folder in (RELEASE_DIR, SOURCE_DIR):
        path = folder / manifest.id / manifest.notebook
        got = _grade_cell_points(path) if path.is_file() else {}
        text = path.read_text() if path.is_file() else ""
        if got != want:
            cell = next(c for c in sorted({*want, *got}) if got.get(c) != want.get(c))
            stale = f"{cell}: {got.get(cell, 'no cell')} points there, {want.get(cell, 'no cell')}"
        elif missing := [
            k for k, t in thresholds.items() if f"accuracy at least {t:.2f}" not in text
        ]:
            stale = f"{missing[0]}'s accuracy threshold is not the {thresholds[missing[0]]:.2f}"
        else:
            continue
        raise CourseError(
            f"{path.relative_to(REPO_ROOT)} is older than "
            f"{(ASSIGNMENTS_DIR / f'{manifest.id}.toml').relative_to(REPO_ROOT)} ({stale} "
            f"in the manifest): run python -m solutions notebook {manifest.id} && nbgrader "
            f"generate_assignment {manifest.id} --force (make release: every assignment)"
        )
