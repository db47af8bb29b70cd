"""A class at a glance, after a class run: counts, score statistics, check pass rates, charts.

`summarise(reports)` computes the numbers, `format_summary(...)` prints them in a few lines that
fit the terminal (no per-student table), and `write_charts(reports, folder)` draws a histogram
of the totals and the pass rate of every check as PNG files.

Totals and pass rates are computed over the *final* reports only (grader.report: graded,
reused, ungradable): a report in "review" (a person must look first) or "incomplete" (a check
could not run for a reason outside the student) holds no grade yet, so it would only pull the
statistics down. How many were left out, and why, is said beside the statistics, and each is
named under "students to look at". An "ungradable" report is a final 0 in the totals but has
no check results, so the pass rates leave it out. A check that was not charged (status
"skipped": it kept its points because a part it builds on already lost them) counts as passed
in the pass rates, as it does in the totals.

Names, messages and notes may hold what a student chose: the text is printed inert and the
charts draw labels as written (`grader.text`).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from grader.report import FINAL, Report, late_text, wrap_text
from grader.text import chart_label, inert, inert_line

# Phrases the supervisor and the sandbox use when a limit on time was reached.
TIME_LIMIT = re.compile(
    r"time limit|timed? ?out|time-out|ran longer than|took longer than|time budget", re.I
)
PASSED = ("pass", "skipped")  # "skipped": not charged, full points
# The kinds of "students to look at", most urgent first.
KINDS = ("ungradable", "failed", "incomplete", "review", "time-out", "late", "note")


@dataclass(frozen=True)
class CheckRate:
    """How a class did on one check."""

    name: str
    passed: int  # passed, or not charged (full points)
    total: int  # final reports that have this check (not counting ungradable ones)
    mean_points: float
    max_points: float

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class Flagged:
    """A student to look at, and why (one line)."""

    student: str
    kind: str  # one of KINDS
    reason: str


@dataclass(frozen=True)
class ClassSummary:
    assignment: str
    size: int
    graded: int  # graded in this run (status "graded" or no status)
    reused: int  # taken from an earlier run's report
    failed: int  # final, but nothing could be graded (ungradable, or every check errored)
    review: int
    max_score: float
    totals: tuple[float, ...]  # of the final reports, sorted
    checks: tuple[CheckRate, ...]  # worst pass rate first
    flagged: tuple[Flagged, ...]
    left_out: tuple[tuple[str, int], ...] = ()  # (status, how many) of the reports not final
    stand_ins: str = ""  # the data root, when some reports were graded on stand-ins
    late: int = 0  # final reports handed in after the due date
    penalised: int = 0  # of those, how many lost points for it

    def stat(self, name: str) -> float | None:
        """mean, median, std (population), min or max of the final totals; None if none."""
        if not self.totals:
            return None
        if name == "std":
            return statistics.pstdev(self.totals)
        return {"mean": statistics.fmean, "median": statistics.median, "min": min, "max": max}[
            name
        ](self.totals)


def _status(report: Report) -> str:
    return getattr(report, "status", "") or "graded"


def is_final(report: Report) -> bool:
    """The report holds a grade (grader.report: graded, reused or ungradable)."""
    return _status(report) in FINAL


def is_failed(report: Report) -> bool:
    """Nothing was graded: the status says so, or every check errored."""
    return _status(report) in ("ungradable", "error") or (
        bool(report.checks) and all(c.status == "error" for c in report.checks)
    )


def _time_out(report: Report) -> str | None:
    """The first message or note that mentions a time limit, or None."""
    texts = [f"{c.name}: {c.message}" for c in report.checks] + list(report.notes)
    return next((t for t in texts if TIME_LIMIT.search(t)), None)


def _first_line(text: str, room: int = 70) -> str:
    text = inert(text)  # a note or message, perhaps a student's exception
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= room else line[: room - 3] + "..."


def _flag(report: Report) -> Flagged | None:
    status = _status(report)
    why = getattr(report, "reason", "") or next(iter(report.notes), "")
    if status in ("review", "incomplete", "ungradable"):
        return Flagged(report.student, status, _first_line(why or status))
    if is_failed(report):
        errored = [c.message for c in report.checks if c.status == "error"]
        reason = next(iter(errored + list(report.notes)), "") or "grading failed"
        return Flagged(report.student, "failed", _first_line(reason))
    if (timed_out := _time_out(report)) is not None:
        return Flagged(report.student, "time-out", _first_line(timed_out))
    if getattr(report, "seconds_late", None):
        return Flagged(report.student, "late", late_text(report.seconds_late, report.late_penalty))
    # A layout problem, a renamed notebook, a file not read: graded, but worth a look.
    if notes := [n for n in report.notes if n.strip()]:
        return Flagged(report.student, "note", _first_line(notes[0]))
    return None


def summarise(reports: list[Report]) -> ClassSummary:
    """The numbers of a class run (one assignment; several are named together)."""
    final = [r for r in reports if is_final(r)]
    names: list[str] = []
    for report in reports:
        names += [c.name for c in report.checks if c.name not in names]
    rates = []
    # Pass rates over what was graded: an ungradable report (a final 0) has no check results.
    graded = [r for r in final if _status(r) != "ungradable"]
    for name in names:
        results = [c for r in graded for c in r.checks if c.name == name]
        rates.append(
            CheckRate(
                name=name,
                passed=sum(c.status in PASSED for c in results),
                total=len(results),
                mean_points=statistics.fmean([c.points for c in results]) if results else 0.0,
                max_points=max([c.max_points for c in results], default=0.0),
            )
        )
    rates.sort(key=lambda r: r.rate)  # stable: equal rates keep the manifest's order
    flagged = [f for f in map(_flag, sorted(reports, key=lambda r: r.student)) if f]
    flagged.sort(key=lambda f: (KINDS.index(f.kind), f.student))
    statuses = [_status(r) for r in reports]
    not_final = [s for s in statuses if s not in FINAL]
    late = [r for r in final if getattr(r, "seconds_late", None)]
    stand_ins = [r.data_root for r in reports if getattr(r, "data", "") == "stand-ins"]
    return ClassSummary(
        assignment=", ".join(sorted({r.assignment for r in reports})),
        size=len(reports),
        graded=sum(s != "reused" for s in statuses),
        reused=statuses.count("reused"),
        failed=sum(map(is_failed, reports)),
        review=statuses.count("review"),
        max_score=max([r.max_score for r in reports], default=0.0),
        totals=tuple(sorted(r.score for r in final)),
        checks=tuple(rates),
        flagged=tuple(flagged),
        left_out=tuple((s, not_final.count(s)) for s in sorted(set(not_final))),
        stand_ins=stand_ins[0] if stand_ins else "",
        late=len(late),
        penalised=sum(bool(r.late_penalty) for r in late),
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}" if abs(value) >= 1 else f"{value:.2g}"


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def format_summary(reports: list[Report] | ClassSummary, width: int = 100) -> str:
    """The class summary as plain text, no line longer than `width` (at least 60); long lines
    are wrapped, never cut, so no figure is lost."""
    s = reports if isinstance(reports, ClassSummary) else summarise(reports)
    width = max(60, width)

    def para(text: str, indent: str = "") -> list[str]:
        body = wrap_text(text, width - len(indent))
        return [indent + body[0], *(indent + "  " + line.lstrip() for line in body[1:])]

    data = f", graded on stand-ins, not the real test split ({s.stand_ins})" if s.stand_ins else ""
    lines = para(f"{s.assignment}: {s.size} submission{'s' if s.size != 1 else ''}{data}")
    incomplete = dict(s.left_out).get("incomplete", 0)
    lines += para(
        f"{s.graded} graded in this run, {s.reused} reused from an earlier run; "
        f"{s.failed} failed (a final 0), {s.review} need review"
        + (f", {incomplete} incomplete" if incomplete else ""),
        "  ",
    )
    if s.totals:
        left_out = ", ".join(f"{n} {status}" for status, n in s.left_out)
        lines += para(
            f"totals of {len(s.totals)} final grade{'s' if len(s.totals) != 1 else ''} "
            f"(of {_num(s.max_score)}"
            + (f"; left out, not final: {left_out}" if left_out else "")
            + "): "
            + ", ".join(f"{k} {_num(s.stat(k))}" for k in ("mean", "median", "std", "min", "max")),
            "  ",
        )
    else:
        lines.append("  totals: none (no final report)")
    if s.late:
        lines += para(
            f"late: {s.late} (after the due date in the gradebook); {s.penalised} lost points "
            "for it (nbgrader's late penalty)",
            "  ",
        )
    missed = [c for c in s.checks if c.passed < c.total or not c.total]
    everyone = [c.name for c in s.checks if c not in missed]
    if missed:
        lines += para(
            "check pass rates, worst first (passed/graded, mean points; not charged counts as "
            "passed):"
        )
        name_w = min(max(len(c.name) for c in missed), width - 40)
        bar_w = max(0, width - name_w - 38)
        for c in missed:
            name = c.name if len(c.name) <= name_w else c.name[: name_w - 1] + "~"
            bar = "#" * round(bar_w * c.rate)
            lines.append(
                f"  {name:<{name_w}}  {c.passed:>4}/{c.total:<4} {100 * c.rate:>4.0f}%  "
                f"{c.mean_points:>5.2f}/{_points(c.max_points):<5} {bar}".rstrip()
            )
    if everyone:
        # One wrapped line instead of a row each: these need no attention.
        lines += wrap_text(
            f"passed by everyone ({len(everyone)} check{'s' if len(everyone) != 1 else ''}): "
            f"{', '.join(everyone)}",
            width,
        )
    if s.flagged:
        lines.append(f"students to look at ({len(s.flagged)}):")
        name_w = min(max(len(f.student) for f in s.flagged), 24)
        kind_w = max(len(f.kind) for f in s.flagged)
        for f in s.flagged:
            head = f"  {f.student[:name_w]:<{name_w}}  {f.kind:<{kind_w}}  "
            room = width - len(head)
            reason = f.reason if len(f.reason) <= room else f.reason[: room - 3] + "..."
            lines.append(head + reason)
        lines += para("(python -m grader show STUDENT --assignment ID prints a full report)", "  ")
    else:
        lines.append("students to look at: none")
    # Escaped, not cut: a line cut at the width lost the figure at its end.
    return "\n".join(inert_line(line) for line in lines)


def _class_size(s: ClassSummary) -> str:
    return f"{s.size} student{'s' if s.size != 1 else ''}"


def scores_figure(s: ClassSummary):
    """A histogram of the final totals with their mean and median (a matplotlib Figure)."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, any backend

    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    top = max(s.max_score, max(s.totals, default=0.0), 1.0)
    step = max(1.0, round(top / 20))
    # Bins centred on multiples of `step`, so a bar stands over the score it counts.
    bins = [(i - 0.5) * step for i in range(int(top // step) + 2)]
    ax.hist(s.totals, bins=bins, color="#4c72b0", edgecolor="white")
    if s.totals:
        mean, median = s.stat("mean"), s.stat("median")
        ax.axvline(mean, color="#c44e52", linestyle="--", label=f"mean {mean:.1f}")
        ax.axvline(median, color="#55a868", linestyle=":", label=f"median {median:g}")
        ax.legend(loc="upper left")
    ax.set(xlabel=f"total score (out of {s.max_score:g})", ylabel="students")
    ax.set_xlim(-step, top + step)
    ax.yaxis.get_major_locator().set_params(integer=True)
    left_out = s.size - len(s.totals)
    note = f"; {left_out} not final, left out" if left_out else ""
    ax.set_title(f"{chart_label(s.assignment)}: scores of {_class_size(s)}{note}")
    fig.tight_layout()
    return fig


def checks_figure(s: ClassSummary):
    """Horizontal bars, one per check, the worst on top (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    rates = list(reversed(s.checks))  # barh draws bottom-up: the worst check ends on top
    fig = Figure(figsize=(8, 1.2 + 0.32 * max(1, len(rates))))
    ax = fig.subplots()
    colours = [
        "#c44e52" if r.rate < 0.5 else "#dd8452" if r.rate < 0.8 else "#55a868" for r in rates
    ]
    ax.barh([chart_label(r.name) for r in rates], [100 * r.rate for r in rates], color=colours)
    for y, r in enumerate(rates):
        ax.text(100 * r.rate + 1, y, f"{r.passed}/{r.total}", va="center", fontsize=8)
    ax.set_xlim(0, 112)
    ax.set_xlabel("students who passed the check (%)")
    ax.set_title(f"{chart_label(s.assignment)}: pass rate of every check ({_class_size(s)})")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def write_charts(reports: list[Report], folder: Path) -> list[Path]:
    """A histogram of the totals and a bar chart of check pass rates, as PNG files in `folder`.

    Returns the paths written: `<assignment>-scores.png` and `<assignment>-checks.png`.
    """
    s = summarise(reports)
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", s.assignment) or "class"
    paths = []
    for kind, draw in (("scores", scores_figure), ("checks", checks_figure)):
        path = folder / f"{stem}-{kind}.png"
        draw(s).savefig(path, dpi=120)
        paths.append(path)
    return paths
