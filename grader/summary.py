"""A class at a glance, after a class run: counts, score statistics, check pass rates, charts.

`summarise(reports)` computes the numbers, `format_summary(...)` prints them in a few lines that
fit 100 columns (no per-student table), and `write_charts(reports, folder)` draws a histogram of
the totals and the pass rate of every check as PNG files.

Totals and pass rates are computed over the *final* reports only: a report with the status
"error" (the grading machine failed) or "review" (a person must look first) holds no grade yet,
so it would only pull the statistics down. It is counted and named instead.

Names, messages and notes may hold what a student chose: the text is printed inert and the
charts draw labels as written (`grader.text`).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from grader.report import Report, wrap_text
from grader.text import chart_label, inert, inert_line

# Phrases the supervisor and the sandbox use when a limit on time was reached.
TIME_LIMIT = re.compile(
    r"time limit|timed? ?out|time-out|ran longer than|took longer than|time budget", re.I
)
NOT_FINAL = ("error", "review")


@dataclass(frozen=True)
class CheckRate:
    """How a class did on one check."""

    name: str
    passed: int
    total: int  # final reports that have this check
    mean_points: float
    max_points: float

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class Flagged:
    """A student to look at, and why (one line)."""

    student: str
    kind: str  # "failed", "time-out" or "review"
    reason: str


@dataclass(frozen=True)
class ClassSummary:
    assignment: str
    size: int
    graded: int  # graded in this run (status "graded" or no status)
    reused: int  # taken from an earlier run's report
    failed: int
    review: int
    max_score: float
    totals: tuple[float, ...]  # of the final reports, sorted
    checks: tuple[CheckRate, ...]  # worst pass rate first
    flagged: tuple[Flagged, ...]

    def stat(self, name: str) -> float | None:
        """mean, median, std (population), min or max of the final totals; None if none."""
        if not self.totals:
            return None
        if name == "std":
            return statistics.pstdev(self.totals)
        return {"mean": statistics.fmean, "median": statistics.median, "min": min, "max": max}[
            name
        ](self.totals)


def is_failed(report: Report) -> bool:
    """The grading failed: the status says so, or every check errored."""
    status = getattr(report, "status", "")
    return status == "error" or (
        bool(report.checks) and all(c.status == "error" for c in report.checks)
    )


def is_final(report: Report) -> bool:
    """The report holds a grade (not an error of the grading machine, not awaiting review)."""
    return getattr(report, "status", "") not in NOT_FINAL


def _time_out(report: Report) -> str | None:
    """The first message or note that mentions a time limit, or None."""
    texts = [f"{c.name}: {c.message}" for c in report.checks] + list(report.notes)
    return next((t for t in texts if TIME_LIMIT.search(t)), None)


def _first_line(text: str, room: int = 70) -> str:
    text = inert(text)  # a note or message, perhaps a student's exception
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= room else line[: room - 3] + "..."


def _flag(report: Report) -> Flagged | None:
    status = getattr(report, "status", "")
    if status == "review":
        reason = next(iter(report.notes), "") or "marked for review"
        return Flagged(report.student, "review", _first_line(reason))
    if is_failed(report):
        errored = [c.message for c in report.checks if c.status == "error"]
        reason = next(iter(errored + list(report.notes)), "") or "grading failed"
        return Flagged(report.student, "failed", _first_line(reason))
    timed_out = _time_out(report)
    if timed_out is not None:
        return Flagged(report.student, "time-out", _first_line(timed_out))
    return None


def summarise(reports: list[Report]) -> ClassSummary:
    """The numbers of a class run (one assignment; several are named together)."""
    final = [r for r in reports if is_final(r)]
    names: list[str] = []
    for report in reports:
        names += [c.name for c in report.checks if c.name not in names]
    rates = []
    for name in names:
        results = [c for r in final for c in r.checks if c.name == name]
        rates.append(
            CheckRate(
                name=name,
                passed=sum(c.status == "pass" for c in results),
                total=len(results),
                mean_points=statistics.fmean([c.points for c in results]) if results else 0.0,
                max_points=max([c.max_points for c in results], default=0.0),
            )
        )
    rates.sort(key=lambda r: r.rate)  # stable: equal rates keep the manifest's order
    flagged = [f for f in map(_flag, sorted(reports, key=lambda r: r.student)) if f]
    order = {"failed": 0, "time-out": 1, "review": 2}
    flagged.sort(key=lambda f: (order[f.kind], f.student))
    statuses = [getattr(r, "status", "") for r in reports]
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
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}" if abs(value) >= 1 else f"{value:.2g}"


def format_summary(reports: list[Report] | ClassSummary, width: int = 100) -> str:
    """The class summary as plain text, no line longer than `width` (at least 60)."""
    s = reports if isinstance(reports, ClassSummary) else summarise(reports)
    width = max(60, width)
    lines = [
        f"{s.assignment}: {s.size} submission{'s' if s.size != 1 else ''}",
        f"  {s.graded} graded in this run, {s.reused} reused from an earlier run; "
        f"{s.failed} failed, {s.review} need review",
    ]
    if s.totals:
        left_out = s.size - len(s.totals)
        lines.append(
            f"  totals (of {_num(s.max_score)}"
            + (f", {left_out} not final left out" if left_out else "")
            + "): "
            + ", ".join(f"{k} {_num(s.stat(k))}" for k in ("mean", "median", "std", "min", "max"))
        )
    else:
        lines.append("  totals: none (no final report)")
    missed = [c for c in s.checks if c.passed < c.total or not c.total]
    everyone = [c.name for c in s.checks if c not in missed]
    if missed:
        lines.append("check pass rates, worst first (passed/graded, mean points):")
        name_w = min(max(len(c.name) for c in missed), width - 40)
        bar_w = max(0, width - name_w - 36)
        for c in missed:
            name = c.name if len(c.name) <= name_w else c.name[: name_w - 1] + "~"
            bar = "#" * round(bar_w * c.rate)
            lines.append(
                f"  {name:<{name_w}}  {c.passed:>4}/{c.total:<4} {100 * c.rate:>4.0f}%  "
                f"{c.mean_points:>5.2f}/{_num(c.max_points):<4} {bar}".rstrip()
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
        for f in s.flagged:
            head = f"  {f.student:<{name_w}}  {f.kind:<8}  "
            room = width - len(head)
            reason = f.reason if len(f.reason) <= room else f.reason[: room - 3] + "..."
            lines.append(head + reason)
        lines.append("  (python -m grader show STUDENT --assignment ID prints a full report)")
    else:
        lines.append("students to look at: none")
    return "\n".join(inert_line(line)[:width] for line in lines)


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
