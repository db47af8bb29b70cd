"""The HTML report: the flagged pairs, each with its matching regions side by side.

Student code and names are data: every piece of student text is HTML-escaped (and its control
characters shown as escapes) before it is put in the page, and the page loads nothing and runs
nothing (a Content-Security-Policy forbids scripts and every outside resource; the histogram
is embedded as a data URL). Each region has a number and a colour, the same on both sides, so
that a reader matches A's lines with B's even when the cells or functions were reordered.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from grader.similarity.documents import Document
from grader.similarity.outputs import Comparison, percent
from grader.similarity.regions import PairDetail, Span
from grader.text import inert

CONTEXT_LINES = 2  # lines shown around each region; longer stretches are elided
MAX_PAIRS = 100  # pairs the report shows in full
COLOURS = 8  # region colours, in turn

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table.pairs { border-collapse: collapse; } table.pairs td, table.pairs th
{ padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.side-by-side { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.side { min-width: 0; } .side h3 { font-size: 1em; margin: 0.5em 0; }
.cell { border: 1px solid #ccc; border-radius: 4px; margin-bottom: 0.8em; }
.cell-title { background: #f3f3f3; padding: 2px 8px; font-size: 0.85em; color: #555; }
pre { margin: 0; padding: 4px 0; overflow-x: auto; font: 12px/1.35 ui-monospace, monospace; }
.line { display: block; padding-right: 8px; white-space: pre; }
.no { display: inline-block; width: 3.5em; color: #999; text-align: right; margin-right: 4px; }
.tag { display: inline-block; width: 2em; text-align: center; font-weight: bold; }
.gap { display: block; color: #999; padding-left: 4.5em; }
.r0 { background: #ffe08a; } .r1 { background: #a8d8ff; } .r2 { background: #b8f0b0; }
.r3 { background: #ffc2c2; } .r4 { background: #dcc8ff; } .r5 { background: #ffd4a8; }
.r6 { background: #b0f0e8; } .r7 { background: #f0c0e8; }
.note { color: #555; }
"""
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _text(value: str) -> str:
    """Student text, made inert and escaped for HTML (tabs kept)."""
    return html.escape(inert(value), quote=True)


def _cell_html(doc: Document, cell: int, spans: list[tuple[int, Span]]) -> str:
    """One cell of `doc`, its region lines coloured and numbered, the rest elided."""
    lines = doc.cells[cell].splitlines() or [""]
    region_of: dict[int, int] = {}  # line -> region number (the first one that covers it)
    starts: dict[int, int] = {}
    for number, span in spans:
        starts.setdefault(span.first, number)
        for line in range(span.first, span.last + 1):
            region_of.setdefault(line, number)
    shown = {
        line
        for covered in region_of
        for line in range(covered - CONTEXT_LINES, covered + CONTEXT_LINES + 1)
        if 1 <= line <= len(lines)
    }
    out, hidden = [], 0
    for number, text in enumerate(lines, start=1):
        if number not in shown:
            hidden += 1
            continue
        if hidden:
            out.append(f'<span class="gap">&#8942; {hidden} lines</span>')
            hidden = 0
        region = region_of.get(number)
        css = f' class="line r{(region - 1) % COLOURS}" title="region {region}"' if region else ""
        css = css or ' class="line"'
        tag = str(starts[number]) if number in starts else ""
        out.append(
            f'<span{css}><span class="no">{number}</span><span class="tag">{tag}</span>'
            f"{_text(text)}</span>"
        )
    if hidden:
        out.append(f'<span class="gap">&#8942; {hidden} lines</span>')
    title = f"cell {doc.cell_numbers[cell]} of the notebook"
    return f'<div class="cell"><div class="cell-title">{title}</div><pre>{"".join(out)}</pre></div>'


def _side(doc: Document, spans: list[tuple[int, Span]]) -> str:
    """Every cell of `doc` that holds a region, in the student's own order."""
    cells = sorted({span.cell for _, span in spans})
    body = "".join(_cell_html(doc, c, [(n, s) for n, s in spans if s.cell == c]) for c in cells)
    return f'<div class="side"><h3>{_text(doc.student)}</h3>{body}</div>'


def _pair_html(rank: int, c: Comparison, row: int, a: Document, b: Document) -> str:
    detail: PairDetail = c.details[row]
    scores = c.scores
    numbered = list(enumerate(detail.regions, start=1))
    return (
        f'<section class="pair" id="pair-{rank}">'
        f"<h2>{rank}. {_text(a.student)} and {_text(b.student)}</h2>"
        f"<p>{percent(scores.a_in_b[row])} of {_text(a.student)}'s code is in "
        f"{_text(b.student)}'s; {percent(scores.b_in_a[row])} of {_text(b.student)}'s is in "
        f"{_text(a.student)}'s. {len(detail.regions)} matching regions: {detail.lines_a} lines "
        f"of {_text(a.student)}'s, {detail.lines_b} of {_text(b.student)}'s.</p>"
        '<div class="side-by-side">'
        f"{_side(a, [(n, r.a) for n, r in numbered])}"
        f"{_side(b, [(n, r.b) for n, r in numbered])}"
        "</div></section>"
    )


def write_report(
    c: Comparison,
    documents: list[Document],
    path: Path,
    *,
    histogram: Path | None = None,
    refused: list[tuple[str, str]] = (),
) -> None:
    """Write the HTML report of comparison `c` (documents in the order of `c.students`)."""
    flagged = [int(row) for row in c.flagged()]
    shown = flagged[:MAX_PAIRS]
    rows = "".join(
        f'<tr><td class="num">{rank}</td><td><a href="#pair-{rank}">{_text(c.students[a])}'
        f"</a></td><td>{_text(c.students[b])}</td>"
        f'<td class="num">{percent(ab)}</td><td class="num">{percent(ba)}</td>'
        f'<td class="num">{c.details[row].lines_a} / {c.details[row].lines_b}</td></tr>'
        for rank, row in enumerate(shown, start=1)
        for a, b, ab, ba in [
            (c.scores.a[row], c.scores.b[row], c.scores.a_in_b[row], c.scores.b_in_a[row])
        ]
    )
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        f"<title>Code similarity: {html.escape(c.assignment)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Code similarity: {html.escape(c.assignment)}</h1>",
        f'<p class="note">{len(c.students)} students compared ({c.pair_count} pairs); '
        f"{len(c.scores)} pairs share some code, {len(flagged)} at or above "
        f"{percent(c.threshold)}. Code handed out in the release is left out; names and "
        'literals are normalised, comments and layout ignored. "A in B" is the share of A\'s '
        "own code that is also in B's.</p>",
    ]
    if histogram is not None and histogram.is_file():
        encoded = base64.b64encode(histogram.read_bytes()).decode()
        parts.append(
            f'<img src="data:image/png;base64,{encoded}" alt="histogram of pair similarities">'
        )
    if shown:
        parts.append(
            '<h2>Flagged pairs</h2><table class="pairs"><tr><th>#</th><th>student A</th>'
            "<th>student B</th><th>A in B</th><th>B in A</th><th>shared lines</th></tr>"
            f"{rows}</table>"
        )
        if len(flagged) > len(shown):
            parts.append(
                f'<p class="note">{len(flagged) - len(shown)} more flagged pairs are not shown '
                "here: raise the threshold, or read them in the CSV.</p>"
            )
    else:
        parts.append("<p>No pair reaches the threshold.</p>")
    for rank, row in enumerate(shown, start=1):
        a, b = documents[c.scores.a[row]], documents[c.scores.b[row]]
        parts.append(_pair_html(rank, c, row, a, b))
    if refused:
        items = "".join(f"<li>{_text(s)}: {_text(why)}</li>" for s, why in refused)
        parts.append(f"<h2>Left out</h2><ul>{items}</ul>")
    parts.append("</body></html>\n")
    path.write_text("".join(parts), encoding="utf-8")
