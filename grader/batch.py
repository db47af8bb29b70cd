"""Grade a class: find the submissions, grade them side by side, keep every result.

For an nbgrader course (`<course>/submitted/<student>/<id>/`), each student's report is saved as
`<course>/autograded/<student>/<id>/report.json` with the autograded notebook beside it, and the
grades go into the gradebook. The report is written last, so it marks a finished student: a
re-run skips students whose report matches their files and the expected answers (a fingerprint),
which makes an interrupted run resume where it stopped, and a repeated run change nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader.grade import (
    GradeConfig,
    ProbeInputs,
    close_host,
    grade_submission,
    open_host,
    student_name,
)
from grader.judge import EXPECTED_DIR, load_expected
from grader.notebook_io import NotebookError, find_notebook
from grader.probe_host import ProbeHost
from grader.report import Report
from solutions.manifest import Manifest


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path  # a notebook, or a folder holding one
    course_root: Path | None = None  # set for nbgrader `submitted/` trees

    @property
    def folder(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent

    @property
    def report_path(self) -> Path | None:
        if self.course_root is None:
            return None
        return self.course_root / "autograded" / self.student / self.folder.name / "report.json"


def find_submissions(path: Path, manifest: Manifest) -> list[Submission]:
    """A notebook, a submission folder, an nbgrader course root or its `submitted/` folder."""
    if path.is_file():
        return [Submission(student_name(path, manifest.id), path)]
    if (path / "submitted").is_dir():
        path = path / "submitted"
    if any(p.suffix == ".ipynb" for p in path.iterdir()):
        return [Submission(student_name(path, manifest.id), path)]
    course_root = path.parent if path.name == "submitted" else None
    found = []
    for student_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        nested = student_dir / manifest.id
        if nested.is_dir():
            found.append(Submission(student_dir.name, nested, course_root))
        elif any(p.suffix == ".ipynb" for p in student_dir.iterdir()):
            found.append(Submission(student_dir.name, student_dir, None))
    return found


def fingerprint(submission: Submission, manifest: Manifest) -> str:
    """Hash of the submitted files and of the expected answers they are judged against."""
    digest = hashlib.sha256()
    expected = EXPECTED_DIR / f"{manifest.id}.json"
    digest.update(expected.read_bytes() if expected.is_file() else b"")
    files = [submission.path] if submission.path.is_file() else sorted(submission.folder.rglob("*"))
    for file in files:
        if file.is_file() and not file.is_symlink():
            digest.update(str(file.relative_to(submission.folder)).encode())
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _finished(submission: Submission, print_: str) -> Report | None:
    """The saved report of an earlier run, if it graded exactly these files."""
    path = submission.report_path
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return Report.from_dict(data) if data.get("fingerprint") == print_ else None
    except (ValueError, KeyError, TypeError):
        return None


def _save(
    submission: Submission, manifest: Manifest, report: Report, gradebook_url: str | None
) -> None:
    """Autograded notebook, then gradebook, then the report: the report marks it done."""
    if submission.course_root is None and not gradebook_url:
        return
    from grader import gradebook  # nbgrader and nbformat take seconds to import: only if needed

    if submission.course_root is not None:
        try:
            notebook = find_notebook(submission.folder, manifest.notebook)
        except NotebookError:
            notebook = None
        gradebook.write_autograded(submission.course_root, manifest, report, notebook)
    if gradebook_url:
        gradebook.record_grades(gradebook_url, manifest, report, submission.folder)
    if submission.report_path is not None:
        report.save(submission.report_path)


@contextlib.contextmanager
def _closing(hosts: list[ProbeHost], config: GradeConfig):
    try:
        yield
    finally:
        for host in hosts:
            close_host(host, config)


def grade_many(
    submissions: list[Submission],
    manifest: Manifest,
    inputs: ProbeInputs,
    config: GradeConfig,
    *,
    jobs: int = 1,
    reports_dir: Path | None = None,
    gradebook_url: str | None = None,
    progress: bool = True,
) -> list[Report]:
    """Grade every submission, `jobs` at a time; one failure never costs another's grade.

    Results are saved as each submission finishes, from this thread only, so an interruption
    loses at most the submissions being graded at that moment.
    """
    if gradebook_url:
        from grader import gradebook

        gradebook.ensure_assignment(gradebook_url, manifest)
    expected = load_expected(manifest.id)  # once: every student is judged on the same answers
    if reports_dir:
        reports_dir.mkdir(parents=True, exist_ok=True)
    reports: dict[int, Report] = {}  # by position: two paths may share a student name
    todo: list[tuple[int, Submission, str]] = []
    for index, submission in enumerate(submissions):
        print_ = fingerprint(submission, manifest)
        done = _finished(submission, print_)
        if done is not None:
            reports[index] = done
            if gradebook_url:  # idempotent: the same rows again
                gradebook.record_grades(gradebook_url, manifest, done, submission.folder)
        else:
            todo.append((index, submission, print_))
    bar = tqdm(
        total=len(submissions),
        initial=len(reports),
        desc=f"grading {manifest.id}",
        unit="sub",
        disable=not progress,
    )
    # One warm sandbox per concurrent job, each with its own uid: one job's fork bomb cannot
    # use up another job's process limit, and a host is only ever used by one thread at a time.
    hosts: queue.SimpleQueue[ProbeHost] = queue.SimpleQueue()
    slots = range(jobs if todo else 0)
    opened = [open_host(manifest, inputs, config, config.uid + slot) for slot in slots]
    for host in opened:
        hosts.put(host)

    def grade_one(submission: Submission) -> Report:
        host = hosts.get()
        try:
            return grade_submission(
                submission.path, manifest, inputs, config, submission.student, expected, host
            )
        finally:
            hosts.put(host)

    with ThreadPoolExecutor(max_workers=jobs) as pool, _closing(opened, config):
        pending: dict[Future, tuple[int, Submission, str]] = {}
        waiting = list(todo)

        def collect(future: Future) -> None:
            index, submission, print_ = pending.pop(future)
            report = future.result()
            report.fingerprint = print_
            _save(submission, manifest, report, gradebook_url)
            reports[index] = report
            bar.update()

        try:
            while waiting or pending:
                while waiting and len(pending) < jobs:
                    index, submission, print_ = waiting.pop(0)
                    future = pool.submit(grade_one, submission)
                    pending[future] = (index, submission, print_)
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    collect(future)
        except KeyboardInterrupt:
            # Let the submissions in flight finish and be saved; start no more.
            waiting.clear()
            for future in list(pending):
                collect(future)
            bar.close()
            raise
    bar.close()
    ordered = [reports[i] for i in sorted(reports)]
    if reports_dir:
        for report in ordered:
            report.save(reports_dir / f"{report.student}.json")
    return ordered
