"""Grade many submissions: find them, grade them side by side, keep one report per student."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader.grade import GradeConfig, TestSplit, grade_submission, student_name
from grader.report import Report
from solutions.manifest import Manifest


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path  # a notebook or a folder holding one


def find_submissions(path: Path, manifest: Manifest) -> list[Submission]:
    """A notebook, a submission folder, or an nbgrader `submitted/<student>/<id>/` tree."""
    if path.is_file():
        return [Submission(student_name(path, manifest.id), path)]
    if any(p.suffix == ".ipynb" for p in path.iterdir()):
        return [Submission(student_name(path, manifest.id), path)]
    found = []
    for student_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        nested = student_dir / manifest.id
        if nested.is_dir():
            found.append(Submission(student_dir.name, nested))
        elif any(p.suffix == ".ipynb" for p in student_dir.iterdir()):
            found.append(Submission(student_dir.name, student_dir))
    return found


def grade_many(
    submissions: list[Submission],
    manifest: Manifest,
    split: TestSplit,
    config: GradeConfig,
    *,
    jobs: int = 1,
    reports_dir: Path | None = None,
    gradebook: str | None = None,
    progress: bool = True,
) -> list[Report]:
    """Grade every submission, `jobs` at a time; one failure never costs another's grade."""
    reports: dict[str, Report] = {}
    if reports_dir:
        reports_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(grade_submission, s.path, manifest, split, config, s.student): s
            for s in submissions
        }
        bar = tqdm(total=len(futures), desc=f"grading {manifest.id}", unit="sub", disable=not progress)
        for future in as_completed(futures):
            submission = futures[future]
            report = future.result()
            reports[submission.student] = report
            if reports_dir:
                report.save(reports_dir / f"{submission.student}.json")
            bar.update()
        bar.close()
    return [reports[s.student] for s in submissions]
