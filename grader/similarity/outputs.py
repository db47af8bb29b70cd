"""What `python -m grader similarity` shows: the ranked table, the CSV and the histogram.

Student names come from folder names, which students can choose: control characters are
escaped before a name reaches the terminal or a file, and a CSV cell that a spreadsheet would
read as a formula is neutralised.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.similarity.index import PairScores
from grader.similarity.regions import PairDetail
from grader.text import inert_line, spreadsheet_cell


@dataclass(frozen=True)
class Comparison:
    """A class compared: who, the scored pairs, and the details of the pairs looked at."""

    assignment: str
    students: list[str]
    scores: PairScores
    threshold: float  # a pair is flagged when either share reaches this, 0..1
    details: dict[int, PairDetail]  # row of `scores` -> its regions (flagged and top rows)

    @property
    def pair_count(self) -> int:
        return len(self.students) * (len(self.students) - 1) // 2

    def flagged(self) -> np.ndarray:
        """Rows of `scores` at or above the threshold, best first."""
        return np.flatnonzero(self.scores.best >= self.threshold)


def percent(share: float) -> str:
    """A share 0..1 as a whole percentage ("98%")."""
    return f"{100 * share:.0f}%"


def format_table(comparison: Comparison, top: int) -> str:
    """The `top` most similar pairs, ranked, with both shares and the lines they share."""
    c, scores = comparison, comparison.scores
    flagged = len(c.flagged())
    lines = [
        f"{c.assignment}: {len(c.students)} students compared, {c.pair_count} pairs, "
        f"{len(scores)} share some code; {flagged} at or above {percent(c.threshold)}"
    ]
    if not len(scores):
        return lines[0]
    rows = range(min(top, len(scores)))
    names = [
        (inert_line(c.students[scores.a[i]]), inert_line(c.students[scores.b[i]])) for i in rows
    ]
    width_a = max(9, *(len(a) for a, _ in names))
    width_b = max(9, *(len(b) for _, b in names))
    lines.append(
        f"{'#':>3}  {'student A':<{width_a}}  {'student B':<{width_b}}  "
        f"{'A in B':>6}  {'B in A':>6}  shared lines (A / B)"
    )
    for i, (name_a, name_b) in zip(rows, names, strict=True):
        detail = c.details.get(i)
        shared = f"{detail.lines_a} / {detail.lines_b}" if detail else ""
        mark = "*" if scores.best[i] >= c.threshold else " "
        lines.append(
            f"{i + 1:>3}{mark} {name_a:<{width_a}}  {name_b:<{width_b}}  "
            f"{percent(scores.a_in_b[i]):>6}  {percent(scores.b_in_a[i]):>6}  {shared}"
        )
    if len(scores) > top:
        lines.append(f"     ... {len(scores) - top} more pairs share some code (--top, --csv)")
    lines.append("     A in B: the share of A's own code (release code left out) found in B's")
    return "\n".join(lines)


def pairs_csv(comparison: Comparison) -> str:
    """One row per pair that shares any code, most similar first (pairs not listed share
    nothing): both names, both shares in percent, the fingerprints they share."""
    c, scores = comparison, comparison.scores
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["student_a", "student_b", "a_in_b_percent", "b_in_a_percent", "shared_fingerprints"]
    )
    for a, b, a_in_b, b_in_a, shared in zip(
        scores.a.tolist(),
        scores.b.tolist(),
        scores.a_in_b.tolist(),
        scores.b_in_a.tolist(),
        scores.shared.tolist(),
        strict=True,
    ):
        writer.writerow(
            [
                spreadsheet_cell(c.students[a]),
                spreadsheet_cell(c.students[b]),
                f"{100 * a_in_b:.1f}",
                f"{100 * b_in_a:.1f}",
                shared,
            ]
        )
    return out.getvalue()


def histogram_png(comparison: Comparison, path: Path) -> None:
    """Bar chart of every pair's similarity (the larger share), pairs that share nothing in
    the first bar, on a log scale so that the few top pairs show beside the many others."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    c = comparison
    values = np.concatenate([100 * c.scores.best, np.zeros(c.pair_count - len(c.scores))])
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    ax.hist(values, bins=np.arange(0, 105, 5), color="#4c72b0", edgecolor="white", log=True)
    ax.axvline(100 * c.threshold, color="#c44e52", linestyle="--", label="threshold")
    ax.set(
        xlim=(0, 100),
        xlabel="similarity of a pair (%: the larger of A in B and B in A)",
        ylabel="pairs (log scale)",
        title=f"{c.assignment}: {c.pair_count} pairs of {len(c.students)} students, "
        f"{len(c.flagged())} flagged",
    )
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)
