"""`python -m grader grade PATH... [--assignment ID] [--json FILE] [--csv FILE] [--jobs N]`.

A thin layer over `grader.grade` and `grader.batch`. Exit 0 when grading ran, whatever the
scores; 2 for operator errors (no such path, unknown assignment, missing expected answers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from grader import class_cli
from grader.batch import find_submissions, grade_many
from grader.grade import GradeConfig, prepare_inputs
from grader.judge import ExpectedAnswersMissing, load_expected
from grader.report import class_csv, format_table
from grader.supervise import TimeLimits
from solutions.data import DataNotFoundError
from solutions.manifest import UnknownAssignmentError, assignment_ids, load_manifest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade notebooks, submission folders or a submitted/ tree")
    grade.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    grade.add_argument("--assignment", help="assignment id (guessed from the paths if left out)")
    grade.add_argument("--json", type=Path, help="write the report (or a list of reports) here")
    grade.add_argument("--csv", type=Path, help="write one row per student here")
    grade.add_argument("--reports", type=Path, help="folder for one JSON report per student")
    grade.add_argument(
        "--gradebook",
        help="database URL of nbgrader's gradebook (default for a course: <course>/gradebook.db)",
    )
    grade.add_argument("--no-gradebook", action="store_true", help="do not write the gradebook")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    grade.add_argument("--cell-timeout", type=float, default=30.0, help="seconds per cell")
    grade.add_argument("--timeout", type=float, default=300.0, help="seconds per submission")
    grade.add_argument("--quiet", action="store_true", help="no score tables on stdout")
    class_cli.add_commands(sub)  # show, leaderboard, normalise-names
    return parser


def guess_assignment(paths: list[Path]) -> str:
    """The one assignment id that appears in the paths' names or notebook file names."""
    known = set(assignment_ids())
    found = set()
    for path in paths:
        names = {p.name for p in [path.resolve(), *path.resolve().parents]}
        names |= {p.stem for p in ([path] if path.is_file() else path.glob("*.ipynb"))}
        found |= names & known | {n for n in known if path.is_dir() and (path / n).is_dir()}
    if len(found) == 1:
        return found.pop()
    raise UnknownAssignmentError(
        "cannot tell the assignment from the paths; pass --assignment "
        f"(one of: {', '.join(sorted(known))})"
    )


def _gradebook_url(args: argparse.Namespace, submissions) -> str | None:
    if args.no_gradebook:
        return None
    if args.gradebook:
        return args.gradebook
    roots = {s.course_root for s in submissions if s.course_root is not None}
    if len(roots) != 1:
        return None
    from grader.gradebook import sqlite_url  # nbgrader is slow to import: only for a course

    return sqlite_url(roots.pop())


def grade_command(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    assignment = args.assignment or guess_assignment(args.paths)
    manifest = load_manifest(assignment)
    load_expected(assignment)  # fail now, as an operator error, not once per student
    submissions = [s for p in args.paths for s in find_submissions(p, manifest)]
    if not submissions:
        print(f"error: no {assignment} submission found in the given paths", file=sys.stderr)
        return 2
    jobs = max(1, args.jobs)
    config = GradeConfig(
        time=TimeLimits(cell=args.cell_timeout, total=args.timeout),
        threads=max(1, (os.cpu_count() or 1) // jobs),
    )
    with tempfile.TemporaryDirectory(prefix="dlgrade-input-") as tmp:
        split = prepare_inputs(manifest, Path(tmp))
        reports = grade_many(
            submissions,
            manifest,
            split,
            config,
            jobs=jobs,
            reports_dir=args.reports,
            gradebook_url=_gradebook_url(args, submissions),
            progress=len(submissions) > 1,
        )
    if not args.quiet:
        for report in reports:
            print(format_table(report))
            print()
    if args.json:
        if len(reports) == 1:
            reports[0].save(args.json)
        else:
            args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    if args.csv:
        args.csv.write_text(class_csv(reports))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "grade":
            return grade_command(args)
        if hasattr(args, "run"):  # the class tools (grader/class_cli.py)
            return class_cli.run(args)
    except (UnknownAssignmentError, ExpectedAnswersMissing, DataNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 2
