"""`python -m grader grade PATH... [--assignment ID] [--json FILE] [--csv FILE] [--jobs N]`.

A thin layer over `grader.grade` and `grader.batch`. Exit 0 when grading ran, whatever the
scores; 2 for operator errors (no such path, unknown assignment, missing expected answers, an
output folder that does not exist, a course of another checkout or already being graded, a
stale release, Ctrl-C), always as one line on stderr.

Commands that do not grade (`--help`, `show`, ...) answer in about a second: torch, nbgrader
and the grading machinery are imported only once `grade` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from grader import class_cli
from grader.class_cli import OperatorError
from grader.report import Report, class_csv, format_table
from grader.sandbox import GiB, Limits
from grader.similarity import cli as similarity_cli


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage mistakes end in one line, like every other operator error. `argv`: the words
    parsed, for a hint where a flag took the words after it."""

    def __init__(self, *args, argv: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.argv = argv or []

    def error(self, message: str):
        if message.endswith("required: PATH") and "--student" in self.argv:
            message += " (--student takes every word after it: put PATH first)"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m grader",
        description="Grade a class (grade submitted/ --jobs 2), then look at it: show, "
        "leaderboard, similarity; normalise-names before nbgrader's own autograde.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser(
        "grade",
        help="grade notebooks, submission folders or a submitted/ tree",
        argv=argv,
    )
    grade.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a course's submitted/ (or submitted/<student>: that student), or notebooks and "
        "submission folders outside a course",
    )
    grade.add_argument(
        "--assignment",
        help="assignment id (default: guessed from the paths, e.g. submitted/<student>/<id>/)",
    )
    grade.add_argument("--json", type=Path, help="write the report (or a list of reports) here")
    grade.add_argument(
        "--csv",
        type=Path,
        help="one row per student (default for a course: <course>/dlgrade-<id>.csv, a name "
        "nbgrader export never writes), with a score histogram and a pass-rate chart beside it",
    )
    grade.add_argument(
        "--gradebook",
        help="database URL of nbgrader's gradebook (default for a course: <course>/gradebook.db)",
    )
    grade.add_argument("--no-gradebook", action="store_true", help="do not write the gradebook")
    where = grade.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs", type=_positive_int, default=1, help="submissions graded at once (default: 1)"
    )
    where.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="grade on the workers of this Dask scheduler (e.g. tcp://host:8786; each worker "
        "grades as many submissions at once as it has threads)",
    )
    grade.add_argument(
        "--cell-timeout", type=_positive_float, default=30.0, help="seconds per cell (default: 30)"
    )
    grade.add_argument(
        "--timeout",
        type=_positive_float,
        default=300.0,
        help="seconds per submission (default: 300)",
    )
    grade.add_argument(
        "--memory",
        type=_positive_float,
        default=Limits.memory_bytes / GiB,
        metavar="GIB",
        help="memory of one probe, all its processes, shared memory and /tmp together where "
        "the machine has control groups, else per process (GiB; default: %(default)g)",
    )
    grade.add_argument(
        "--force", action="store_true", help="regrade everyone (with --student: those named)"
    )
    grade.add_argument(
        "--student",
        nargs="+",
        default=[],
        metavar="NAME",
        help="regrade these students (the others keep their saved reports)",
    )
    grade.add_argument(
        "--verbose", action="store_true", help="a score table per student, not only the summary"
    )
    grade.add_argument("--quiet", action="store_true", help="print nothing but errors")
    class_cli.add_commands(sub)  # show, leaderboard, normalise-names
    similarity_cli.add_command(sub)  # its run goes through class_cli.run too
    parser.set_defaults(grade_parser=grade)
    return parser


def guess_assignment(paths: list[Path]) -> str:
    """The one assignment id that the paths name: a folder of that name (submitted/<s>/<id>/,
    inside a course or a student's folder) or a notebook named after it."""
    from grader.manifest import assignment_ids

    known = set(assignment_ids())
    found = set()
    for path in paths:
        path = path.resolve()
        names = {p.name for p in [path, *path.parents]}
        if path.is_file():
            names.add(path.stem)
        elif path.is_dir():
            names |= {p.stem for p in path.glob("*.ipynb")}
            submitted = path / "submitted" if (path / "submitted").is_dir() else path
            for child in [submitted, *(p for p in submitted.iterdir() if p.is_dir())]:
                names |= {p.name for p in child.iterdir() if p.is_dir()}
        found |= names & known
    if len(found) == 1:
        return found.pop()
    raise OperatorError(
        "cannot tell the assignment from the paths"
        + (f" (they name {', '.join(sorted(found))})" if found else "")
        + f"; pass --assignment (one of: {', '.join(sorted(known))})"
    )


def _course_root(submissions: list) -> Path | None:
    roots = {s.course_root for s in submissions if s.course_root is not None}
    return roots.pop() if len(roots) == 1 else None


def _gradebook_url(args: argparse.Namespace, course: Path | None) -> str | None:
    if args.no_gradebook:
        return None
    if args.gradebook:
        return args.gradebook
    if course is None:
        return None
    from grader.gradebook import sqlite_url  # nbgrader is slow to import: only for a course

    return sqlite_url(course)


def _check_output(path: Path | None, what: str) -> None:
    if path is not None and not path.parent.is_dir():
        raise OperatorError(f"{what} {path}: the folder {path.parent} does not exist")


def _check_gradebook(url: str | None) -> None:
    """A gradebook URL whose database driver is missing is refused before any grading."""
    if url is None:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url).get_dialect().import_dbapi()
    except (ImportError, ArgumentError) as err:
        # postgresql:// needs psycopg 3 (SQLAlchemy 2's default driver): the `postgres` extra.
        raise OperatorError(
            f"--gradebook: {err}; for PostgreSQL install the driver: pip install '.[postgres]'"
        ) from None


def grade_command(args: argparse.Namespace) -> int:
    from grader.batch import find_submissions
    from grader.judge import ExpectedAnswersMissing, load_expected
    from grader.manifest import load_manifest

    for path in args.paths:
        if not path.exists():
            raise OperatorError(f"{path} does not exist")
    _check_output(args.json, "--json")
    _check_output(args.csv, "--csv")
    _check_gradebook(args.gradebook)
    assignment = args.assignment or guess_assignment(args.paths)
    manifest = load_manifest(assignment)
    try:  # fail now, as an operator error, not once per student
        expected = load_expected(assignment)
    except ExpectedAnswersMissing as err:
        raise OperatorError(str(err)) from None
    submissions = [s for p in args.paths for s in find_submissions(p, manifest)]
    if not submissions:
        raise OperatorError(f"no {assignment} submission found in the given paths")
    known = {s.student for s in submissions}
    if unknown := [name for name in args.student if name not in known]:
        raise OperatorError(f"--student: no submission of {', '.join(unknown)} in the given paths")
    course = _course_root(submissions)
    from grader.course import CourseError, check_checkout, check_release, course_lock
    from grader.lateness import NO_PENALTY, LatePolicyError, late_policy

    try:
        check_release(manifest)
        late = late_policy(course) if course else NO_PENALTY
        if course is None:
            return _grade(args, manifest, expected, submissions, None, late)
        with course_lock(course, _command(args)):
            check_checkout(course, manifest)
            return _grade(args, manifest, expected, submissions, course, late)
    except (CourseError, LatePolicyError) as err:
        raise OperatorError(str(err)) from None


def _grade(args, manifest, expected, submissions, course, late) -> int:
    """Grade `submissions` and write and print the results (the course checks are done)."""
    from grader.batch import grade_many
    from grader.grade import GradeConfig, GradingRun
    from grader.inputs import prepare_inputs
    from grader.settings_key import SettingsKeyError, settings_seed
    from grader.slots import ExecutorUnavailable
    from grader.supervise import TimeLimits

    assignment = manifest.id
    csv_path = args.csv or (course / f"dlgrade-{assignment}.csv" if course else None)
    try:  # the same probe settings for every student and run of this course
        seed = settings_seed(course, assignment)
    except (SettingsKeyError, OSError) as err:
        raise OperatorError(f"settings key: {err}") from None
    executor = _cluster(args.dask) if args.dask else None  # no scheduler: said before any work
    config = GradeConfig(
        time=TimeLimits(cell=args.cell_timeout, total=args.timeout),
        limits=Limits(
            memory_bytes=int(args.memory * GiB),
            # A larger whole-probe limit must not be cut by one process's address space.
            address_space_bytes=max(Limits.address_space_bytes, int(args.memory * GiB)),
        ),
        threads=max(1, (os.cpu_count() or 1) // args.jobs),
    )
    with tempfile.TemporaryDirectory(prefix="dlgrade-input-") as tmp:
        inputs = prepare_inputs(manifest, Path(tmp))
        if inputs.missing and not args.quiet:
            print(
                f"warning: {inputs.missing}; the accuracy checks say so, and no report is final",
                file=sys.stderr,
            )
        run = GradingRun.prepare(manifest, inputs, config, expected=expected, seed=seed)
        try:
            reports = grade_many(
                submissions,
                run,
                jobs=args.jobs,
                executor=executor,
                gradebook_url=_gradebook_url(args, course),
                progress=len(submissions) > 1 and not args.quiet,
                force=args.force,
                regrade=args.student,
                late=late,
            )
        except ExecutorUnavailable as err:  # the workers refused the run
            raise OperatorError(f"--dask: {err}") from None
    # The course's own CSV and charts cover the class, also when one student's folder was graded.
    rows = _class_reports(course, assignment, reports) if course and not args.csv else reports
    _write_outputs(args, reports, csv_path, rows)
    if not args.quiet:
        if args.verbose or len(reports) == 1:
            for report in reports:
                print(format_table(report))
                print()
        if len(reports) > 1:
            print(_summary(reports))
        if csv_path:
            charts = ", ".join(str(p) for p in getattr(args, "charts", []))
            print(f"wrote {csv_path}" + (f" and {charts}" if charts else ""))
    return 0


def _command(args: argparse.Namespace, students: list[str] | None = None) -> str:
    """The `grade` command line of `args`, for people to read and run: every option that is
    not at its default; with `students`, `--student` those and no `--force`."""
    parts = ["python -m grader grade", *map(str, args.paths)]
    for action in args.grade_parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest)
        if students is not None and action.dest in ("force", "student"):
            continue
        if value == action.default or value is None:
            continue
        option = action.option_strings[-1]
        if value is True:
            parts.append(option)
        else:
            parts += [option, *map(str, value if isinstance(value, list) else [value])]
    if students:
        parts += ["--student", *students]
    return " ".join([parts[0], *map(shlex.quote, parts[1:])])


def _resume_advice(args: argparse.Namespace, left: list[str]) -> str:
    """What to run after Ctrl-C to finish what the interrupted command set out to do."""
    if not (args.force or args.student):
        return "running the same command again resumes where it stopped"
    if not left:
        return "every student it was asked to regrade is done"
    # A plain re-run would reuse the reports that were not regraded yet: name those instead.
    return f"to regrade the {len(left)} not done yet, run: {_command(args, left)}"


def _cluster(address: str):
    """The executor grading on the Dask cluster at `address` (distributed is imported only
    for a cluster run)."""
    from grader.cluster.coordinator import DaskExecutor
    from grader.slots import ExecutorUnavailable

    try:
        return DaskExecutor(address)
    except ExecutorUnavailable as err:
        raise OperatorError(f"--dask: {err}") from None


def _write_outputs(
    args: argparse.Namespace, reports: list[Report], csv_path: Path | None, rows: list[Report]
) -> None:
    """The run's reports to --json; `rows` (the run's, or the whole class's) to the CSV and
    the charts."""
    if args.json:
        if len(reports) == 1:
            reports[0].save(args.json)
        else:
            args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    if csv_path:
        csv_path.write_text(class_csv(rows))
        if len(rows) > 1:
            args.charts = _charts(rows, csv_path)


def _class_reports(course: Path, assignment: str, reports: list[Report]) -> list[Report]:
    """This run's reports and every other student's saved one, by student."""
    from grader.leaderboard import load_course_reports

    graded = {r.student for r in reports}
    saved, unreadable = load_course_reports(course, assignment)
    for problem in unreadable:
        print(f"warning: not in the CSV: {problem}", file=sys.stderr)
    rows = [*reports, *(r for r in saved if r.student not in graded)]
    return sorted(rows, key=lambda r: r.student)


def _summary(reports: list[Report]) -> str:
    from grader.summary import format_summary

    return format_summary(reports, width=min(120, shutil.get_terminal_size().columns))


def _charts(reports: list[Report], csv_path: Path) -> list[Path]:
    from grader.summary import write_charts

    return write_charts(reports, csv_path.parent)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv).parse_args(argv)
    if args.command != "grade":
        return class_cli.run(args)
    from grader.batch import Interrupted
    from grader.manifest import ManifestError, UnknownAssignmentError

    try:
        return grade_command(args)
    except Interrupted as err:
        print(
            f"error: {err}; everything finished is saved; {_resume_advice(args, err.left)}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted before grading started", file=sys.stderr)
        return 2
    except (OperatorError, UnknownAssignmentError, ManifestError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
