"""Results of grading, as dataclasses, and their JSON, CSV and table forms.

The JSON form is the contract of design.md: `{"assignment", "student", "score", "max_score",
"checks": [{"name", "points", "max_points", "status", "message"}], "duration_s"}`, plus
`"sandbox"` (how student code was isolated) and `"notes"` (what went wrong outside any check).

A report's `status` says whether it holds a grade. Final: "graded" (in this run), "reused" (an
earlier run's report, same fingerprint) and "ungradable" (nothing could be graded because of
what was handed in: no notebook, one over the size limit, not a notebook; a final 0 with the
reason). Not final: "review" (the grading machine may be to blame: a person looks first) and
"incomplete" (a check could not run for a reason outside the student: the grading machine has
no test split). Reports that are not final never become a number in the CSV or the gradebook.

Every text of a report may hold what a student chose (an exception's text, a file or folder
name), so it is made inert (`grader.text`) when a result is made, when a report is written or
read, and again when it is printed: a report.json edited by hand prints as harmless text too.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from grader.text import clipped, inert, inert_line, spreadsheet_cell

STATUSES = ("pass", "fail", "error", "skipped")
# A check's message echoes what the probe reported (an error's text, a value): a forged result
# of 8 MB, echoed by every check of its observer, made reports and autograded notebooks of
# 240 MB. Honest messages stay far below this.
MAX_MESSAGE_CHARS = 4000
FINAL = ("graded", "reused", "ungradable")
# "error": what grader 0.2.0 and earlier wrote for a report without a grade.
NOT_FINAL = ("review", "incomplete", "error")


@dataclass(frozen=True)
class CheckResult:
    name: str
    points: float
    max_points: float
    status: str  # pass: full points; fail: the code ran but is wrong; error: it did not run
    message: str
    hidden: bool = False
    value: float | None = None  # the number a measuring check measured (an accuracy)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        object.__setattr__(self, "name", inert_line(self.name))  # frozen: set once, here
        object.__setattr__(self, "message", inert(clipped(self.message, MAX_MESSAGE_CHARS)))


@dataclass
class Report:
    assignment: str
    student: str
    checks: list[CheckResult]
    duration_s: float = 0.0
    sandbox: str = ""
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""  # hash of everything the grade depends on (batch resume)
    status: str = "graded"  # FINAL or NOT_FINAL (module docstring)
    machine_trouble: list[str] = field(default_factory=list)
    reason: str = ""  # why the status is ungradable, review or incomplete (one line)
    data: str = ""  # the test split graded on: "real", "stand-ins" (not the real one) or "missing"
    data_root: str = ""  # where it was found
    seconds_late: float | None = None  # after the due date (and extension); None: not known
    late_penalty: float = 0.0  # points taken off for lateness (nbgrader's late-penalty setting)

    @property
    def final(self) -> bool:
        """Whether the report holds a grade (module docstring)."""
        return self.status in FINAL

    @property
    def raw_score(self) -> float:
        """The points of the checks, before any late penalty."""
        return round(sum(c.points for c in self.checks), 4)

    def __post_init__(self):
        # The folder name stays the student's id on disk and in the gradebook; this is for show.
        self.student, self.assignment = inert_line(self.student), inert_line(self.assignment)

    @property
    def score(self) -> float:
        return round(self.raw_score - self.late_penalty, 4)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 4)

    def to_dict(self) -> dict:
        return {
            "assignment": self.assignment,
            "student": self.student,
            "score": self.score,
            "max_score": self.max_score,
            "checks": [_check_dict(c) for c in self.checks],
            "duration_s": round(self.duration_s, 3),
            "sandbox": inert(self.sandbox),
            "notes": [inert(n) for n in self.notes],
            "fingerprint": self.fingerprint,
            "status": self.status,
            "reason": inert(self.reason),
            "machine_trouble": [inert(t) for t in self.machine_trouble],
            "data": self.data,
            "data_root": inert(self.data_root),
            "late": None
            if self.seconds_late is None
            else {"seconds": round(self.seconds_late, 3), "penalty": self.late_penalty},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls(
            assignment=data["assignment"],
            student=data["student"],
            checks=[_check_from_dict(c) for c in data["checks"]],
            duration_s=data.get("duration_s", 0.0),
            sandbox=inert(str(data.get("sandbox", ""))),
            notes=[inert(str(n)) for n in data.get("notes", [])],
            fingerprint=inert_line(str(data.get("fingerprint", ""))),
            status=inert_line(str(data.get("status", "graded"))),
            machine_trouble=[inert(str(t)) for t in data.get("machine_trouble", [])],
            reason=inert(str(data.get("reason", ""))),
            data=inert_line(str(data.get("data", ""))),
            data_root=inert(str(data.get("data_root", ""))),
            seconds_late=_late(data, "seconds", None),
            late_penalty=_late(data, "penalty", 0.0),
        )

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def _late(data: dict, key: str, default):
    """A number of a saved report's `late` entry (a hand-edited one may hold anything)."""
    late = data.get("late")
    value = late.get(key, default) if isinstance(late, dict) else default
    return float(value) if isinstance(value, int | float) else default


def _check_dict(check: CheckResult) -> dict:
    """A check's JSON: `value` only when measured, so reports without one read as before."""
    out = {k: v for k, v in asdict(check).items() if k not in ("hidden", "value")}
    if check.value is not None:
        out["value"] = check.value
    return out


_CHECK_FIELDS = {f.name for f in fields(CheckResult)}


def _check_from_dict(data: dict) -> CheckResult:
    """A check from its JSON; keys this version does not know are left out, not fatal."""
    return CheckResult(**{k: v for k, v in data.items() if k in _CHECK_FIELDS})


def format_table(report: Report, width: int = 100, wrap: bool = False) -> str:
    """A plain-text table for a terminal: one line per check, then the total.

    By default a long message is cut to the width and a note shows its first line. With `wrap`,
    nothing is cut: messages continue on indented lines and notes are printed whole, every line
    fitting in `width` (`python -m grader show`). Whatever a student chose prints as inert text,
    and a message's line breaks never start a row of their own.
    """
    name_w = max([len(c.name) for c in report.checks] + [5])
    # Points columns as wide as their widest figure (2 decimals at most), so rows stay aligned.
    got_w = max([len(_num(c.points)) for c in report.checks] + [len(_num(report.score)), 4])
    max_w = max([len(_num(c.max_points)) for c in report.checks] + [len(_num(report.max_score))])
    points_w = got_w + 1 + max_w
    lines = [
        f"{report.assignment} - {report.student}",
        f"{'check':<{name_w}}  {'points':>{points_w}}  {'status':<7}  message",
        "-" * width,
    ]
    if wrap and len(lines[1]) > width:  # a narrow terminal: messages go under their rows
        lines[1] = lines[1].removesuffix("  message")[:width]
    room = max(20, width - name_w - points_w - 15)
    for c in report.checks:
        points = f"{_num(c.points):>{got_w}}/{_num(c.max_points):<{max_w}}"
        row = f"{c.name:<{name_w}}  {points}  {c.status:<7}  "
        if not wrap:
            message = c.message.split("\n")[0]
            if len(message) > room or message != c.message:
                message = message[: room - 3] + "..."
            lines.append(row + message)
            continue
        if width - len(row) >= 30:  # the message column is wide enough to wrap in
            body = wrap_text(c.message, width - len(row))
            lines.append(row + body[0])
            lines += [" " * len(row) + line if line else "" for line in body[1:]]
        else:  # a narrow terminal: the message goes under its row
            lines.append(row.rstrip())
            lines += ["    " + line if line else "" for line in wrap_text(c.message, width - 4)]
    lines.append("-" * width)
    total = f"{_num(report.score):>{got_w}}/{_num(report.max_score):<{max_w}}"
    lines.append(f"{'total':<{name_w}}  {total}  ({report.duration_s:.1f} s)")
    facts = report_facts(report)
    notes = [inert(n) for n in report.notes if n.strip()]  # added as grading went: not escaped
    if not wrap:
        lines += [f"{label}: {text.splitlines()[0]}" for label, text in facts]
        lines += [f"note: {n.splitlines()[0]}" for n in notes]
        return inert("\n".join(lines))
    for label, text in [*facts, *(("note", n) for n in notes)]:
        body = wrap_text(text, max(20, width - 6))
        lines.append(f"{label}: " + body[0])
        lines += [" " * (len(label) + 2) + line if line else "" for line in body[1:]]
    return inert("\n".join(lines))


def report_facts(report: Report) -> list[tuple[str, str]]:
    """(label, text) for what a score table must say besides the checks: a status that is not
    plain graded, lateness, a test split that was not the real one."""
    facts = []
    if report.status not in ("graded", "reused"):
        final = "a final grade" if report.final else "not a final grade"
        facts.append(("status", f"{report.status}, {final}: {report.reason}".rstrip(": ")))
    if report.seconds_late:
        facts.append(("late", late_text(report.seconds_late, report.late_penalty)))
    if report.data == "stand-ins":
        facts.append(("data", f"graded on stand-ins, not the real test split ({report.data_root})"))
    return facts


def late_text(seconds: float, penalty: float) -> str:
    """ "2 d 3 h late, penalty 50" (or "no penalty")."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours)
    parts += [f"{minutes} min"] * (not days and (bool(minutes) or not hours))
    return f"{' '.join(parts)} late, " + (f"penalty {_num(penalty)}" if penalty else "no penalty")


def wrap_text(text: str, width: int) -> list[str]:
    """`text` as lines of at most `width` characters; its own line breaks and indents kept."""
    out = []
    for line in text.splitlines() or [""]:
        lead = line[: len(line) - len(line.lstrip())]
        if len(lead) > width // 2:
            lead = lead[: width // 2]
        out += textwrap.wrap(
            line.strip(),
            width,
            initial_indent=lead,
            subsequent_indent=lead,
            break_on_hyphens=False,
        ) or [""]
    return out


def _num(value: float) -> str:
    """A figure with at most 2 decimals: 41.33, 50, 0.5."""
    return f"{round(value, 2):g}"


def _cell(text: str) -> str:
    """Text for a spreadsheet cell: inert, and never a formula (see `grader.text`)."""
    return spreadsheet_cell(text)


def class_csv(reports: list[Report]) -> str:
    """One row per student: the total, its status, lateness and test data, then the points of
    every check (columns in check order).

    Only final grades are numbers: a row whose status is not final (review, incomplete) has
    its score cells empty and says why in `reason`, so an upload cannot take it for a grade.
    `score` is after the late penalty; `seconds_late` is empty when no due date is known.
    """
    names: list[str] = []
    for report in reports:
        names += [c.name for c in report.checks if c.name not in names]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "student",
            "assignment",
            "score",
            "max_score",
            "status",
            "reason",
            "seconds_late",
            "late_penalty",
            "data",
            "duration_s",
            *map(_cell, names),
        ]
    )
    for report in sorted(reports, key=lambda r: r.student):
        final = report.final
        points = {c.name: _num(c.points) for c in report.checks} if final else {}
        late = report.seconds_late
        writer.writerow(
            [
                _cell(report.student),
                _cell(report.assignment),
                _num(report.score) if final else "",
                _num(report.max_score),
                _cell(report.status),
                _cell(report.reason.splitlines()[0] if report.reason else ""),
                "" if late is None else round(late),
                _num(report.late_penalty) if final else "",
                _cell(report.data),
                round(report.duration_s, 2),
                *(points.get(n, "") for n in names),
            ]
        )
    return out.getvalue()
