"""Untrusted text made inert wherever the grader shows it: terminals, spreadsheets and charts.

Student code chooses exception texts and class names, file and folder names and what its cells
print, and all of that reaches reports, tables, the class summary, the leaderboard and the CSV.
A terminal obeys control sequences in what it prints (OSC 52 writes the clipboard, OSC 0 the
window title, CSI moves the cursor and erases lines, and U+009B is CSI in one character);
bidirectional overrides reorder what a reader sees. Each such character is written as a visible
escape ("\\x1b", "\\u202e") that contains none of them, so escaping twice changes nothing: text
is escaped where it enters a report and again when it is printed, which keeps a report written
by an older grader, or edited by hand, inert too.
"""

from __future__ import annotations

import re

# C0 controls but newline and tab, DEL, the C1 controls (U+0080-U+009F), the line and paragraph
# separators, every Bidi_Control character (embeddings, overrides, isolates and marks: U+061C,
# U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) and lone surrogates (not even printable as UTF-8).
_CONTROLS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff"
)
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_IN_LINE = re.compile(f"[\t\n{_CONTROLS}]")
# What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection; the tab and
# carriage return of that list never start a cell here: `inert_line` escapes them).
_FORMULA_START = ("=", "+", "-", "@")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """`text` with every control character written as a visible escape; newlines and tabs kept.

    Idempotent: `inert(inert(t)) == inert(t)`.
    """
    return _UNSAFE.sub(_escape, text)


def inert_line(text: str) -> str:
    """`inert` for a one-line field (a name): newlines and tabs are escaped too, so that a name
    cannot start a row of its own in a table."""
    return _UNSAFE_IN_LINE.sub(_escape, text)


def clipped(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, saying how many were left out: what the
    student's code chose (an exception's text, a value) is echoed, never copied whole.
    Idempotent: a report read back and written again keeps its messages."""
    if len(text) <= limit:
        return text
    kept = limit - 40  # room for the tail below
    return f"{text[:kept]}... ({len(text) - kept:,} more characters)"


def spreadsheet_cell(text: str) -> str:
    """A CSV cell: inert, and quoted with a leading ' when a spreadsheet would read a formula."""
    text = inert_line(text)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def chart_label(text: str) -> str:
    """A one-line label that matplotlib draws as written: `$` escaped, so that nothing between
    two of them is read as mathtext (`$\\frac{$` would even stop the chart being drawn)."""
    return inert_line(text).replace("$", r"\$")
