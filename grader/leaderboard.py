"""A class leaderboard: students ranked by the measured test accuracy of their submitted models.

An accuracy check is one whose name ends in `_accuracy` and that measured a number: the check's
`value` when the report has one, else the number in its message ("test accuracy 0.9012").
Checks named so that measure nothing (`evaluate_accuracy` judges a function's return value, and
its message holds no test accuracy) are left out by that rule. With several accuracy checks a
student's accuracy is their mean; a check the student has but that measured nothing (no weights
file, a model that did not load) counts as 0, and is marked. Ties are broken by the higher total
score, then by the student's name, so the same reports always give the same ranking. Names
are printed as inert text and drawn as written, never as mathtext (`grader.text`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from grader.report import CheckResult, Report, wrap_text
from grader.summary import is_final
from grader.text import chart_label, inert_line

ACCURACY_SUFFIX = "_accuracy"
ACCURACY_IN_MESSAGE = re.compile(r"test accuracy\s*(?:of\s*|[:=]\s*)?(\d+(?:\.\d+)?)\s*(%?)", re.I)


def measured_accuracy(check: CheckResult) -> float | None:
    """The test accuracy a check measured, as a fraction, or None when it measured none."""
    value = getattr(check, "value", None)
    if value is not None:
        return float(value)
    match = ACCURACY_IN_MESSAGE.search(check.message)
    if match is None:
        return None
    number = float(match[1])
    return number / 100 if match[2] else number


@dataclass(frozen=True)
class Entry:
    student: str
    accuracy: float  # mean over the board's checks, a missing measurement counted as 0
    accuracies: dict[str, float | None]  # check name -> measured accuracy
    score: float
    max_score: float

    @property
    def incomplete(self) -> bool:
        return any(v is None for v in self.accuracies.values())


@dataclass(frozen=True)
class Leaderboard:
    assignment: str
    checks: tuple[str, ...]  # the accuracy checks ranked on
    entries: tuple[Entry, ...]  # best first
    not_final: tuple[str, ...]  # students whose report is not final (review, incomplete)
    unmeasured: tuple[str, ...]  # students with no measured accuracy at all


def accuracy_checks(reports: list[Report]) -> list[str]:
    """Names of the checks ending in `_accuracy` that measured a number in some report."""
    names: list[str] = []
    for report in reports:
        for check in report.checks:
            if (
                check.name.endswith(ACCURACY_SUFFIX)
                and check.name not in names
                and measured_accuracy(check) is not None
            ):
                names.append(check.name)
    return names


def _rounded(value: float | None) -> float | None:
    # Four decimals, as shown: the same accuracy read from a value and from a message then ties.
    return None if value is None else round(value, 4)


def _sort_key(entry: Entry) -> tuple:
    return (-round(entry.accuracy, 6), -entry.score, entry.student)


def rank(reports: list[Report], checks: list[str] | None = None) -> Leaderboard:
    """The ranking of `reports` (one assignment) by accuracy; `checks` overrides the choice."""
    final = [r for r in reports if is_final(r)]
    names = list(checks) if checks else accuracy_checks(final)
    entries, unmeasured = [], []
    for report in final:
        by_name = {c.name: c for c in report.checks}
        accs = {n: _rounded(measured_accuracy(by_name[n])) if n in by_name else None for n in names}
        measured = [v for v in accs.values() if v is not None]
        if not measured:
            unmeasured.append(report.student)
            continue
        entries.append(
            Entry(
                student=report.student,
                accuracy=round(sum(measured) / len(names), 6),
                accuracies=accs,
                score=report.score,
                max_score=report.max_score,
            )
        )
    return Leaderboard(
        assignment=", ".join(sorted({r.assignment for r in reports})),
        checks=tuple(names),
        entries=tuple(sorted(entries, key=_sort_key)),
        not_final=tuple(sorted(r.student for r in reports if not is_final(r))),
        unmeasured=tuple(sorted(unmeasured)),
    )


def _tie_note(entry: Entry, other: Entry) -> str:
    """Why `entry` ranks above `other` when their accuracies are equal."""
    if entry.score != other.score:
        return f"tie with {other.student} broken by total score"
    return f"tie with {other.student} broken by name"


def _short(check: str) -> str:
    return check.removesuffix(ACCURACY_SUFFIX) or check


def format_leaderboard(board: Leaderboard, top: int = 3, width: int = 100) -> str:
    """The top `top` students with their accuracies, ties explained; lines fit `width`."""
    shown = board.entries[:top]
    mean = "mean of " if len(board.checks) > 1 else ""
    lines = [
        f"{board.assignment} leaderboard: top {len(shown)} of {len(board.entries)} ranked students",
        *wrap_text(f"  by test accuracy ({mean}{', '.join(board.checks)})", width),
        "  ties broken by the higher total score, then by name",
    ]
    if not shown:
        lines.append("  no student has a measured accuracy")
    name_w = max([len(e.student) for e in shown] + [7])
    for position, entry in enumerate(shown, start=1):
        head = f"  {position:>3}.  {entry.student:<{name_w}}  {entry.accuracy:.4f}"
        parts = [f"score {entry.score:g}/{entry.max_score:g}"]
        if len(board.checks) > 1:
            parts.insert(
                0,
                ", ".join(
                    f"{_short(n)} {'-' if v is None else f'{v:.4f}'}"
                    for n, v in entry.accuracies.items()
                ),
            )
        after = board.entries[position] if position < len(board.entries) else None
        if after is not None and round(after.accuracy, 6) == round(entry.accuracy, 6):
            parts.append(_tie_note(entry, after))
        if entry.incomplete:
            parts.append("a missing measurement counts as 0")
        body = wrap_text("; ".join(parts), max(30, width - len(head) - 2))
        lines.append(f"{head}  {body[0]}")
        lines += [" " * (len(head) + 2) + line for line in body[1:]]
    if board.not_final:
        lines += wrap_text(
            f"  not ranked, report not final (review or incomplete): {', '.join(board.not_final)}",
            width,
        )
    if board.unmeasured:
        lines += wrap_text(
            f"  not ranked, no measured accuracy: {', '.join(board.unmeasured)}", width
        )
    return "\n".join(inert_line(line) for line in lines)


def chart_figure(board: Leaderboard, top: int = 3, most: int = 40):
    """Bars of the ranked students' accuracies (at most `most`), the top `top` in colour."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, any backend

    shown = list(board.entries[:most])
    fig = Figure(figsize=(8, 1.4 + 0.3 * max(1, len(shown))))
    ax = fig.subplots()
    labels = [chart_label(f"{i}. {e.student}") for i, e in enumerate(shown, start=1)]
    values = [e.accuracy for e in shown]
    colours = ["#dd8452" if i < top else "#8da0cb" for i in range(len(shown))]
    ax.barh(labels[::-1], values[::-1], color=colours[::-1])  # best on top
    for y, value in enumerate(values[::-1]):
        ax.text(value, y, f" {value:.4f}", va="center", fontsize=8)
    # From 0: an axis starting near the lowest accuracy made small differences look large.
    ax.set_xlim(0.0, 1.12)  # room for the figure written after the longest bar
    what = " (mean)" if len(board.checks) > 1 else ""
    ax.set_xlabel(chart_label(f"test accuracy{what}: {', '.join(board.checks)}"))
    more = f", first {len(shown)} shown" if len(board.entries) > len(shown) else ""
    ax.set_title(
        f"{chart_label(board.assignment)}: leaderboard of {len(board.entries)} students{more}, "
        f"top {top} in orange"
    )
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def write_chart(board: Leaderboard, path: Path, top: int = 3) -> Path:
    """The leaderboard's bar chart as a PNG file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chart_figure(board, top).savefig(path, dpi=120)
    return path


def load_course_reports(course: Path, assignment: str) -> tuple[list[Report], list[str]]:
    """The saved reports `course/autograded/*/<assignment>/report.json`, and the unreadable ones."""
    reports, problems = [], []
    for path in sorted((course / "autograded").glob(f"*/{assignment}/report.json")):
        try:
            reports.append(Report.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError) as err:
            problems.append(f"{path}: {type(err).__name__}: {err}")
    return reports, problems
