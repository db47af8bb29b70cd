"""Compare a class, as a library call: read, fingerprint, index, look closer, write.

The command line (`grader.similarity.cli`) is a thin layer over `compare_class` and
`write_outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.batch import Submission
from grader.manifest import Manifest
from grader.similarity.collect import read_class, release_of
from grader.similarity.documents import Document
from grader.similarity.fingerprints import TokenHasher
from grader.similarity.index import score_pairs
from grader.similarity.outputs import Comparison, format_table, histogram_png, pairs_csv
from grader.similarity.regions import compare
from grader.similarity.report_html import MAX_PAIRS, write_report


@dataclass(frozen=True)
class ClassResult:
    comparison: Comparison
    documents: list[Document]
    refused: list[tuple[str, str]]  # (student, why left out)
    notes: list[tuple[str, str]]  # (student, note) of students compared
    table: str  # the ranked table for the terminal


def compare_class(
    submissions: list[Submission],
    manifest: Manifest,
    threshold: float,
    top: int,
) -> ClassResult:
    """Compare every pair of `submissions` (threshold 0..1); the regions are worked out for
    the `top` pairs and the flagged ones the HTML report shows."""
    hasher = TokenHasher()
    code = read_class(submissions, manifest, release_of(manifest, hasher), hasher)
    docs = code.documents
    scores = score_pairs([d.unique_hashes() for d in docs])
    flagged = [int(i) for i in (scores.best >= threshold).nonzero()[0][:MAX_PAIRS]]
    rows = set(range(min(top, len(scores)))) | set(flagged)
    details = {row: compare(docs[scores.a[row]], docs[scores.b[row]]) for row in sorted(rows)}
    comparison = Comparison(manifest.id, [d.student for d in docs], scores, threshold, details)
    return ClassResult(comparison, docs, code.refused, code.notes, format_table(comparison, top))


def write_outputs(
    result: ClassResult, *, csv_path: Path | None, html_path: Path | None
) -> list[Path]:
    """The CSV, the histogram and the HTML report (those asked for); the paths written. The
    histogram goes beside the HTML report, or beside the CSV when there is no report."""
    written = []
    if csv_path is not None:
        csv_path.write_text(pairs_csv(result.comparison), encoding="utf-8")
        written.append(csv_path)
    beside = html_path or csv_path
    png = beside.with_name(f"{beside.stem}-histogram.png") if beside else None
    if png is not None:
        histogram_png(result.comparison, png)
        written.append(png)
    if html_path is not None:
        write_report(
            result.comparison, result.documents, html_path, histogram=png, refused=result.refused
        )
        written.append(html_path)
    return written
