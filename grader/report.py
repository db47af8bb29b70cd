"""Results of grading, as dataclasses, and their JSON, CSV and table forms.

The JSON form is the contract of design.md: `{"assignment", "student", "score", "max_score",
"checks": [{"name", "points", "max_points", "status", "message"}], "duration_s"}`, plus
`"sandbox"` (how student code was isolated) and `"notes"` (what went wrong outside any check).

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

from grader.text import inert, inert_line, spreadsheet_cell

STATUSES = ("pass", "fail", "error", "skipped")


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
        object.__setattr__(self, "message", inert(self.message))


@dataclass
class Report:
    assignment: str
    student: str
    checks: list[CheckResult]
    duration_s: float = 0.0
    sandbox: str = ""
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""  # hash of everything the grade depends on (batch resume)
    # "graded"; "reused" (an earlier run's report, same fingerprint); "error" (nothing could be
    # graded: no notebook, say); "review" (the grading machine may be to blame: look at it).
    status: str = "graded"
    machine_trouble: list[str] = field(default_factory=list)

    def __post_init__(self):
        # The folder name stays the student's id on disk and in the gradebook; this is for show.
        self.student, self.assignment = inert_line(self.student), inert_line(self.assignment)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 4)

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
            "machine_trouble": [inert(t) for t in self.machine_trouble],
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
        )

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


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
    lines = [
        f"{report.assignment} - {report.student}",
        f"{'check':<{name_w}}  {'points':>9}  {'status':<7}  message",
        "-" * width,
    ]
    if wrap and len(lines[1]) > width:  # a narrow terminal: messages go under their rows
        lines[1] = lines[1].removesuffix("  message")[:width]
    room = max(20, width - name_w - 24)
    for c in report.checks:
        row = f"{c.name:<{name_w}}  {_num(c.points):>4}/{_num(c.max_points):<4}  {c.status:<7}  "
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
    lines.append(
        f"{'total':<{name_w}}  {_num(report.score):>4}/{_num(report.max_score):<4}"
        f"  ({report.duration_s:.1f} s)"
    )
    notes = [inert(n) for n in report.notes]  # added as grading went: not escaped yet
    if not wrap:
        lines += [f"note: {n.splitlines()[0]}" for n in notes if n.strip()]
        return inert("\n".join(lines))
    for note in notes:
        body = wrap_text(note, max(20, width - 6))
        lines.append("note: " + body[0])
        lines += ["      " + line if line else "" for line in body[1:]]
    return inert("\n".join(lines))


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
    return f"{value:g}"


def _cell(text: str) -> str:
    """Text for a spreadsheet cell: inert, and never a formula (see `grader.text`)."""
    return spreadsheet_cell(text)


def class_csv(reports: list[Report]) -> str:
    """One row per student: total, then the points of every check (columns in check order)."""
    names: list[str] = []
    for report in reports:
        names += [c.name for c in report.checks if c.name not in names]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["student", "assignment", "score", "max_score", "duration_s", *map(_cell, names)]
    )
    for report in sorted(reports, key=lambda r: r.student):
        points = {c.name: _num(c.points) for c in report.checks}
        writer.writerow(
            [
                _cell(report.student),
                _cell(report.assignment),
                _num(report.score),
                _num(report.max_score),
                round(report.duration_s, 2),
                *(points.get(n, "") for n in names),
            ]
        )
    return out.getvalue()
