"""`python -m grader similarity SUBMITTED [--assignment ID] [--threshold PCT] [--top N]
[--csv FILE] [--html FILE]`: which students of a class share code.

The parser is built when `python -m grader` starts, so this module imports nothing heavy; the
command's work is imported when it runs. Operator mistakes end in one line on stderr and exit
status 2 (`grader.class_cli.run`); exit 0 when the class was compared, whatever it found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_THRESHOLD = 50.0  # percent; see the README for how it was chosen
DEFAULT_TOP = 20


def _percent(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be a percentage above 0 and at most 100: {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_command(sub) -> None:
    """Add `similarity` to `python -m grader`'s subparsers."""
    parser = sub.add_parser(
        "similarity",
        help="which students of a class share code (the release's code left out)",
        description="Compare the solution code of every pair of students of one assignment, "
        "on Python tokens (names, literals, comments and layout do not matter), leaving out the "
        "code handed out in the release. Runs no student code.",
    )
    parser.add_argument(
        "submitted", type=Path, help="the course's submitted/ folder, or the course folder"
    )
    parser.add_argument("--assignment", help="assignment id (guessed when there is one)")
    parser.add_argument(
        "--threshold",
        type=_percent,
        default=DEFAULT_THRESHOLD,
        metavar="PCT",
        help="flag a pair when either student has this share of their code in the other's "
        f"(percent, default {DEFAULT_THRESHOLD:g})",
    )
    parser.add_argument(
        "--top",
        type=_positive,
        default=DEFAULT_TOP,
        metavar="N",
        help=f"pairs printed, most similar first (default {DEFAULT_TOP})",
    )
    parser.add_argument(
        "--csv", type=Path, metavar="FILE", help="one row per pair that shares any code"
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="report with the flagged pairs' matching code side by side (default for a "
        "course: COURSE/similarity-ID.html); the histogram PNG is written beside it",
    )
    parser.set_defaults(run=similarity_command)


def _writable(path: Path | None, what: str) -> None:
    from grader.class_cli import OperatorError

    if path is None:
        return
    if path.is_dir():
        raise OperatorError(f"{what} {path} is a folder: give a file name")
    if not path.parent.is_dir():
        raise OperatorError(f"{what} {path}: the folder {path.parent} does not exist")


def similarity_command(args: argparse.Namespace) -> int:
    """Compare the class and write what was asked for (see the module's docstring)."""
    from grader.batch import find_submissions
    from grader.class_cli import OperatorError, guess_submitted_assignment
    from grader.manifest import UnknownAssignmentError, load_manifest
    from grader.similarity.run import compare_class, write_outputs
    from grader.text import inert_line as inert

    if not args.submitted.is_dir():
        raise OperatorError(f"{args.submitted} is not a folder (give the course's submitted/)")
    _writable(args.csv, "--csv")
    _writable(args.html, "--html")
    submitted = args.submitted
    if (submitted / "submitted").is_dir():
        submitted = submitted / "submitted"
    assignment = args.assignment or guess_submitted_assignment(submitted)
    try:
        manifest = load_manifest(assignment)
    except UnknownAssignmentError as err:
        raise OperatorError(str(err)) from None
    submissions = find_submissions(submitted, manifest)
    if len(submissions) < 2:
        raise OperatorError(
            f"{len(submissions)} {assignment} submission(s) in {args.submitted}: "
            "similarity needs two or more"
        )
    result = compare_class(submissions, manifest, args.threshold / 100, args.top)
    for student, note in result.notes:
        print(f"note on {inert(student)}: {inert(note)}", file=sys.stderr)
    for student, reason in result.refused:
        print(f"left out {inert(student)}: {inert(reason)}", file=sys.stderr)
    if len(result.documents) < 2:
        raise OperatorError(f"fewer than two {assignment} submissions could be read")
    courses = {s.course_root for s in submissions if s.course_root is not None}
    html = args.html
    if html is None and len(courses) == 1:
        html = courses.pop() / f"similarity-{assignment}.html"
    print(result.table)
    for path in write_outputs(result, csv_path=args.csv, html_path=html):
        print(f"wrote {path}")
    return 0
