"""Grade a class: find the submissions, grade them side by side, keep every result.

For an nbgrader course (`<course>/submitted/<student>/<id>/`), each student's report is saved as
`<course>/autograded/<student>/<id>/report.json` with the autograded notebook and nbgrader's
`timestamp.txt` beside it, and the grades go into the gradebook. The report is written last,
so it marks a finished student: a re-run reuses a report whose fingerprint (the graded files,
the manifest, the expected answers, the grader's code and version, the limits) still matches,
which makes an interrupted run resume where it stopped and a repeated run change nothing.

Every step of one student (finding, reading, fingerprinting, probing, judging, writing) happens
inside that student's error boundary: a failure scores that student's checks 0 with the reason,
and every other student is graded and written. A result the grading machine may have caused (a
probe killed by a signal nobody sent it, the time budget of the run, a sandbox that would not
start) is graded once more; if that fails too the report says "review" and is not reused.

Only final reports (grader.report: graded, reused, ungradable) become grades: a report in
"review" or "incomplete" is saved with its reason, never reused, and withdraws whatever the
gradebook held for that student. With a gradebook, lateness comes from nbgrader's due date
(and the student's extension) and the course's late-penalty setting (`grader.lateness`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import traceback
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader.grade import GradingRun
from grader.judge import all_failed
from grader.lateness import NO_PENALTY, UNDATED, LatePolicy
from grader.manifest import Manifest
from grader.notebook_io import NotebookError
from grader.report import Report
from grader.safe_fs import remove
from grader.slots import Executor, LocalSlots
from grader.staging import Staged, stage, student_name


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path  # a notebook, or a folder holding one
    course_root: Path | None = None  # set for nbgrader `submitted/` trees
    layout_note: str = ""  # a layout problem the operator should hear about

    @property
    def folder(self) -> Path:
        """The folder the submission's files are in (never through a link: a submission that
        is a link is refused, and its `timestamp.txt` is not the student's)."""
        if self.path.is_symlink():
            return self.path.parent
        return self.path if self.path.is_dir() else self.path.parent

    def autograded(self, assignment: str) -> Path | None:
        if self.course_root is None:
            return None
        return self.course_root / "autograded" / self.student / assignment

    def report_path(self, assignment: str) -> Path | None:
        folder = self.autograded(assignment)
        return folder / "report.json" if folder else None


class LayoutError(ValueError):
    """A path that holds no submission of this assignment: an operator error."""


def _has_notebook(folder: Path) -> bool:
    return any(p.suffix == ".ipynb" for p in folder.iterdir() if not p.is_symlink())


def _student_folder(student_dir: Path, manifest: Manifest, course_root: Path) -> Submission | None:
    """The submission in `submitted/<student>/`, with a note when it is laid out wrongly.

    A student folder or submission folder that is a symbolic link is a submission all the
    same: staging refuses it with the reason (it could point at a classmate's work), so the
    student is graded 0 and told why instead of silently missing from the class.
    """
    nested = student_dir / manifest.id
    if student_dir.is_symlink():
        return Submission(student_dir.name, student_dir, course_root)
    if nested.is_symlink() or nested.is_dir():
        return Submission(student_dir.name, nested, course_root)
    if _has_notebook(student_dir):
        return Submission(
            student_dir.name,
            student_dir,
            course_root,
            f"the notebook is directly in submitted/{student_dir.name}/, not in "
            f"submitted/{student_dir.name}/{manifest.id}/ where nbgrader expects it",
        )
    return None


def find_submissions(path: Path, manifest: Manifest) -> list[Submission]:
    """A notebook, a submission folder, an nbgrader course root, its `submitted/` folder, or
    one student's folder in it (`submitted/bob` or `submitted/bob/<id>`, graded into the
    course)."""
    # Absolute and normalised, but a link in the last place stays a link (staging refuses it):
    # resolving it would grade the folder it points at under that folder's student's name.
    path = Path(os.path.abspath(path))
    if path.is_symlink() and (path.is_dir() or path.suffix == ".ipynb"):
        parent = path.parent
        if path.name == manifest.id and parent.parent.name == "submitted":
            return [Submission(parent.name, path, parent.parent.parent)]
        return [Submission(student_name(path, manifest.id), path)]
    path = path.resolve()
    if path.is_file():
        parent = path.parent
        if parent.name == manifest.id and parent.parent.parent.name == "submitted":
            return [Submission(parent.parent.name, path, parent.parent.parent.parent)]
        return [Submission(student_name(path, manifest.id), path)]
    if (path / "submitted").is_dir():
        path = path / "submitted"
    if path.name == "submitted":
        found = []
        for student_dir in sorted(p for p in path.iterdir() if p.is_dir()):
            if submission := _student_folder(student_dir, manifest, path.parent):
                found.append(submission)
        return found
    if path.parent.name == "submitted":  # submitted/bob
        submission = _student_folder(path, manifest, path.parent.parent)
        return [submission] if submission else []
    if path.name == manifest.id and path.parent.parent.name == "submitted":  # submitted/bob/<id>
        return [Submission(path.parent.name, path, path.parent.parent.parent)]
    if _has_notebook(path):
        return [Submission(student_name(path, manifest.id), path)]
    found = []
    for student_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        nested = student_dir / manifest.id
        if student_dir.is_symlink():
            found.append(Submission(student_dir.name, student_dir))  # refused when staged
        elif nested.is_dir():
            found.append(Submission(student_dir.name, nested))
        elif _has_notebook(student_dir):
            # downloads/ana/<id>/: ana's folder, not a student called <id>
            found.append(Submission(student_name(student_dir, manifest.id), student_dir))
    return found


def fingerprint(run: GradingRun, staged: Staged) -> str:
    """Hash of everything the grade depends on: the run's parts and the graded bytes."""
    return hashlib.sha256(f"{run.fingerprint}:{staged.digest()}".encode()).hexdigest()


def _reusable(submission: Submission, run: GradingRun, print_: str) -> Report | None:
    """The saved report of an earlier run, if it graded exactly this and needs no review."""
    path = submission.report_path(run.manifest.id)
    if path is None or not path.is_file():
        return None
    try:
        report = Report.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        return None
    if report.fingerprint != print_ or not report.final:
        return None
    report.status = "reused"
    return report


def _save(
    submission: Submission,
    run: GradingRun,
    report: Report,
    staged: Staged | None,
    gradebook_url: str | None,
    late: LatePolicy,
) -> None:
    """Autograded notebook and timestamp, then gradebook, then the report: the report marks
    it done."""
    manifest = run.manifest
    if submission.course_root is None and not gradebook_url:
        return
    from grader import gradebook  # nbgrader and nbformat take seconds to import: only if needed

    if submission.course_root is not None:
        folder = submission.autograded(manifest.id)
        gradebook.write_autograded(folder, manifest, report, staged.notebook if staged else None)
        # As nbgrader's autograde: the submission's own timestamp, which nbgrader compares
        # with the submitted one to tell whether a newer submission awaits grading.
        stamp = folder / "timestamp.txt"
        remove(stamp)
        if (submitted := gradebook.submitted_at(submission.folder)) is not None:
            stamp.write_text(submitted.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        # Feedback of the earlier grade is out of date. `nbgrader generate_feedback` writes it
        # where none is (it compares the timestamps, which a regrade of the same submission
        # leaves equal), so it goes, as nbgrader itself replaces it for a newer submission.
        remove(submission.course_root / "feedback" / submission.student / manifest.id)
    if gradebook_url:
        _record(gradebook_url, manifest, report, submission, late)
    _write_report(submission, manifest, report)


def _record(
    url: str, manifest: Manifest, report: Report, submission: Submission, late: LatePolicy
) -> None:
    """A final report's grades into the gradebook, with its lateness and late penalty; a
    report that is not final withdraws the student's earlier grades instead."""
    from grader import gradebook

    if report.final:
        report.seconds_late, report.late_penalty, undated = gradebook.record_grades(
            url, manifest, report, submission.folder, late, submission.student
        )
        if undated and UNDATED not in report.notes:
            report.notes.append(UNDATED)
    else:
        gradebook.withdraw_grades(url, manifest, submission.student)


def _write_report(submission: Submission, manifest: Manifest, report: Report) -> None:
    if (path := submission.report_path(manifest.id)) is not None:
        saved = report.status
        report.status = "graded" if saved == "reused" else saved
        report.save(path)
        report.status = saved


def _failed_report(run: GradingRun, submission: Submission, message: str, status: str) -> Report:
    report = Report(run.manifest.id, submission.student, all_failed(run.manifest, "error", message))
    report.status, report.reason = status, message.splitlines()[0]
    report.data, report.data_root = run.inputs.data, run.inputs.source_root
    return report


def grade_many(
    submissions: list[Submission],
    run: GradingRun,
    *,
    jobs: int = 1,
    executor: Executor | None = None,
    gradebook_url: str | None = None,
    progress: bool = True,
    force: bool = False,
    regrade: Iterable[str] = (),
    late: LatePolicy = NO_PENALTY,
) -> list[Report]:
    """Grade every submission, `jobs` at a time on this machine (or on `executor`, e.g. a
    Dask cluster's workers); one failure never costs another's grade.

    `regrade` names the students to regrade whatever they saved; `force` without names
    regrades everyone (with names, only those). The others reuse a matching final report.
    Results are saved as each submission finishes, from this thread only, so an interruption
    loses at most the submissions being graded at that moment; `Interrupted` names the
    students still to grade.
    """
    manifest = run.manifest
    regrade = set(regrade)
    force = force and not regrade
    if gradebook_url:
        from grader import gradebook

        gradebook.ensure_assignment(gradebook_url, manifest)
    reports: dict[int, Report] = {}  # by position: two paths may share a student name
    todo: list[tuple[int, Submission, str]] = []
    for index, submission in enumerate(submissions):
        try:
            print_ = fingerprint(run, stage(submission.path, manifest))
        except NotebookError:
            print_ = ""  # graded (as an error with its reason) below, never reused
        except Exception as err:  # noqa: BLE001 - one student's files must not stop the batch
            message = f"could not be read: {err!r}"
            reports[index] = _failed_report(run, submission, message, "review")
            continue
        done = None
        if print_ and not force and submission.student not in regrade:
            done = _reusable(submission, run, print_)
        if done is not None:
            reports[index] = done
            if gradebook_url:  # idempotent: the same rows again, lateness as now
                before = (done.seconds_late, done.late_penalty, len(done.notes))
                with contextlib.suppress(Exception):
                    _record(gradebook_url, manifest, done, submission, late)
                # A due date set or moved since: the saved report says so too.
                if before != (done.seconds_late, done.late_penalty, len(done.notes)):
                    _write_report(submission, manifest, done)
        else:
            todo.append((index, submission, print_))
    bar = tqdm(
        total=len(submissions),
        initial=len(reports),
        desc=f"grading {manifest.id}",
        unit="sub",
        disable=not progress,
    )
    executor = executor or LocalSlots(jobs)

    def start(submission: Submission) -> tuple[Future[Report], Staged | None]:
        """Read the submission here and hand it to the executor (a failed read is a report)."""
        try:
            staged = stage(submission.path, manifest)
        except NotebookError as err:
            return _settled(_failed_report(run, submission, str(err), "ungradable")), None
        return executor.submit(submission.student, staged), staged

    def collect(
        future: Future, index: int, submission: Submission, print_: str, staged: Staged | None
    ) -> None:
        try:
            try:
                report = future.result()
            except Exception as err:  # noqa: BLE001 - the executor could not grade it
                report = _failed_report(run, submission, f"could not be graded: {err}", "review")
            report.fingerprint = print_ if report.final else ""
            if submission.layout_note:
                report.notes.insert(0, submission.layout_note)
            _save(submission, run, report, staged, gradebook_url, late)
        except Exception as err:  # noqa: BLE001 - writing one student's results failed
            report = _failed_report(
                run, submission, f"internal grader error while saving: {err!r}", "review"
            )
            report.notes.append(traceback.format_exc(limit=5))
        reports[index] = report
        bar.update()

    with contextlib.closing(executor):
        executor.start(run, len(todo))
        pending: dict[Future, tuple[int, Submission, str, Staged | None]] = {}
        waiting = list(todo)
        try:
            while waiting or pending:
                while waiting and len(pending) < executor.capacity():
                    index, submission, print_ = waiting.pop(0)
                    future, staged = start(submission)
                    pending[future] = (index, submission, print_, staged)
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    collect(future, *pending.pop(future))
        except KeyboardInterrupt:
            # Let the submissions in flight finish and be saved; start no more.
            waiting.clear()
            for future in list(pending):
                collect(future, *pending.pop(future))
            bar.close()
            left = [submission.student for index, submission, _ in todo if index not in reports]
            raise Interrupted(len(reports), len(submissions), left) from None
    bar.close()
    return [reports[i] for i in sorted(reports)]


def _settled(report: Report) -> Future[Report]:
    """A report known now, as a future like the executor's."""
    future: Future[Report] = Future()
    future.set_result(report)
    return future


class Interrupted(Exception):
    """Ctrl-C: how far grading got (everything finished is saved) and who is left."""

    def __init__(self, done: int, total: int, left: list[str] | None = None):
        super().__init__(f"interrupted after {done} of {total} submissions")
        self.done, self.total, self.left = done, total, list(left or [])
