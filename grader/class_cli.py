"""The class tools of `python -m grader`: `show`, `leaderboard` and `normalise-names`.

python -m grader show STUDENT [--assignment ID] [--course DIR]
python -m grader leaderboard ID [--top 3] [--course DIR] [--png FILE] [--check NAME ...]
python -m grader normalise-names SUBMITTED [--assignment ID] [--dry-run]

They read what a class run saved (`DIR/autograded/<student>/<id>/report.json`) or the collected
`submitted/` tree and never grade. Operator mistakes end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import sys
from pathlib import Path

from grader.report import Report, format_table, wrap_text
from grader.text import inert_line


class OperatorError(Exception):
    """A mistake in the command line or the course folder; its message is the one line shown."""


def _known_ids() -> list[str]:
    from grader.manifest import assignment_ids

    return assignment_ids()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(names: list[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _check_course(course: Path) -> Path:
    autograded = course / "autograded"
    if not autograded.is_dir():
        raise OperatorError(
            f"no autograded/ folder in {course}: grade the class first "
            "(python -m grader grade submitted/ --assignment ID) or pass --course DIR"
        )
    return autograded


def report_path(course: Path, student: str, assignment: str | None) -> Path:
    """The saved report of `student` (for `assignment`, guessed when they have only one)."""
    autograded = _check_course(course)
    students = _names(autograded)
    if student not in students:
        raise OperatorError(
            f"no graded student {student!r} in {autograded}{_did_you_mean(student, students)}"
        )
    graded = _names(autograded / student)
    if assignment is None:
        if len(graded) != 1:
            raise OperatorError(
                f"{student!r} has {len(graded)} graded assignments ({_listing(graded)}): "
                "pass --assignment ID"
            )
        assignment = graded[0]
    if assignment not in graded:
        in_class = {a for s in students for a in _names(autograded / s)}
        if assignment not in in_class and assignment not in _known_ids():
            known = sorted(in_class | set(_known_ids()))
            raise OperatorError(
                f"unknown assignment {assignment!r}{_did_you_mean(assignment, known)} "
                f"(known: {_listing(known)})"
            )
        raise OperatorError(
            f"{student!r} has no graded {assignment} (graded: {_listing(graded) or 'none'})"
        )
    path = autograded / student / assignment / "report.json"
    if not path.is_file():
        raise OperatorError(
            f"no report for {student!r} in {assignment}: {path} is missing (graded by nbgrader "
            "alone, or the run was interrupted; `python -m grader grade` writes it)"
        )
    return path


def read_report(path: Path) -> Report:
    try:
        return Report.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OperatorError(f"cannot read {path}: {type(err).__name__}: {err}") from None


def show_command(args: argparse.Namespace) -> int:
    """Print one student's saved report in full, wrapped to the terminal."""
    path = report_path(args.course, args.student, args.assignment)
    report = read_report(path)
    width = max(40, shutil.get_terminal_size().columns)
    facts = [f"report {path}"]
    if report.status:
        facts.append(f"status {report.status}")
    if report.sandbox:
        facts.append(f"sandbox: {report.sandbox}")
    print(format_table(report, width=width, wrap=True))
    print()
    print("\n".join(wrap_text(inert_line("; ".join(facts)), width)))  # the path names the student
    return 0


def _writable_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise OperatorError(f"{what} {path} is a folder: give a file name")
    if not path.parent.is_dir():
        raise OperatorError(f"{what} {path}: the folder {path.parent} does not exist")


def leaderboard_command(args: argparse.Namespace) -> int:
    """Rank a class by the measured accuracy of its accuracy checks; print the top, draw all."""
    from grader.leaderboard import format_leaderboard, load_course_reports, rank, write_chart

    if args.top < 1:
        raise OperatorError(f"--top must be 1 or more, not {args.top}")
    png = args.png or args.course / f"leaderboard-{args.assignment}.png"
    _writable_file(png, "--png")
    autograded = _check_course(args.course)
    reports, problems = load_course_reports(args.course, args.assignment)
    for problem in problems:
        print(f"warning: left out an unreadable report: {inert_line(problem)}", file=sys.stderr)
    if not reports:
        graded = sorted({a for s in _names(autograded) for a in _names(autograded / s)})
        raise OperatorError(
            f"no graded {args.assignment} reports in {autograded}/*/{args.assignment}/"
            f"{_did_you_mean(args.assignment, graded)} (graded here: {_listing(graded) or 'none'})"
        )
    board = rank(reports, args.check)
    if not board.checks:
        raise OperatorError(
            f"none of the {len(reports)} {args.assignment} reports has an accuracy check "
            "(a check named *_accuracy that measured a test accuracy): nothing to rank"
        )
    print(format_leaderboard(board, args.top))
    write_chart(board, png, args.top)
    print(f"wrote {png}")
    return 0


def guess_submitted_assignment(submitted: Path) -> str:
    found = {a for s in _names(submitted) for a in _names(submitted / s)} & set(_known_ids())
    if len(found) != 1:
        raise OperatorError(
            f"cannot tell the assignment from {submitted} "
            f"({'found ' + ', '.join(sorted(found)) if found else 'no known assignment folder'})"
            ": pass --assignment ID"
        )
    return found.pop()


def normalise_names_command(args: argparse.Namespace) -> int:
    """Rename Colab-style copies in a collected `submitted/` tree to the release's name."""
    from grader.manifest import UnknownAssignmentError, load_manifest
    from grader.names import normalise_collected_names

    submitted = args.submitted
    if (submitted / "submitted").is_dir():
        submitted = submitted / "submitted"
    if not submitted.is_dir():
        raise OperatorError(f"{args.submitted} is not a folder (give the course's submitted/)")
    assignment = args.assignment or guess_submitted_assignment(submitted)
    try:
        notebook = load_manifest(assignment).notebook
    except UnknownAssignmentError as err:
        raise OperatorError(str(err)) from None
    outcomes = normalise_collected_names(submitted, notebook, args.dry_run, assignment=assignment)
    for outcome in outcomes:
        if outcome.action != "ok":
            print(inert_line(f"  {outcome.student}: {outcome.action}: {outcome.detail}"))
    renamed = sum(o.action in ("renamed", "would rename") for o in outcomes)
    right = sum(o.action == "ok" for o in outcomes)
    by_hand = sum(o.problem for o in outcomes)
    verb = "would rename" if args.dry_run else "renamed"
    print(
        f"{assignment}: {len(outcomes)} student folders; {verb} {renamed}, "
        f"{right} already named {notebook}, {by_hand} to sort out by hand"
        + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one of these commands; an operator mistake is one line on stderr and status 2."""
    try:
        return args.run(args)
    except OperatorError as err:
        print(f"error: {inert_line(str(err))}", file=sys.stderr)  # may name a student's files
        return 2


def add_commands(sub) -> None:
    """Add `show`, `leaderboard` and `normalise-names` to `python -m grader`'s subparsers."""
    show = sub.add_parser("show", help="print one student's saved report in full")
    show.add_argument("student")
    show.add_argument(
        "--assignment", help="assignment id (optional when the student has only one graded)"
    )
    show.add_argument(
        "--course", type=Path, default=Path("."), help="the nbgrader course folder (default: .)"
    )
    show.set_defaults(run=show_command)

    board = sub.add_parser(
        "leaderboard",
        help="rank a graded class by the test accuracy of its accuracy checks",
    )
    board.add_argument("assignment", metavar="ID", help="assignment id, e.g. mlp_tuning")
    board.add_argument(
        "--top", type=int, default=3, metavar="N", help="how many students to print (default: 3)"
    )
    board.add_argument(
        "--course", type=Path, default=Path("."), help="the nbgrader course folder (default: .)"
    )
    board.add_argument(
        "--png", type=Path, help="bar chart file (default: COURSE/leaderboard-ID.png)"
    )
    board.add_argument(
        "--check",
        action="append",
        metavar="NAME",
        help="rank on this accuracy check only (repeatable; default: every *_accuracy check "
        "that measured a test accuracy)",
    )
    board.set_defaults(run=leaderboard_command)

    names = sub.add_parser(
        "normalise-names",
        help="rename Colab-style copies in submitted/ to the release's notebook name",
    )
    names.add_argument("submitted", type=Path, help="the course's submitted/ folder (or course)")
    names.add_argument("--assignment", help="assignment id (guessed when there is one)")
    names.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    names.set_defaults(run=normalise_names_command)
