"""Is untrusted text made inert: every control character visible, newlines and tabs kept, twice
the same as once, no spreadsheet formula, and chart labels drawn as written?"""

from __future__ import annotations

import io
import unicodedata

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from grader.text import chart_label, clipped, inert, inert_line, spreadsheet_cell
from tests.fixtures.hostile import CONTROL_NAME, HOSTILE_TEXT

C0 = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"]
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = [chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))]


def _unsafe(text: str) -> list[str]:
    """Characters a terminal or a reader could be fooled by: controls (C0, DEL, C1) but newline
    and tab, line and paragraph separators, surrogates and Unicode's Bidi_Control characters."""
    return [
        c
        for c in text
        if (unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") and c not in "\n\t") or c in BIDI
    ]


@pytest.mark.parametrize("char", [*C0, "\x7f", *C1, *BIDI, "\u2028", "\ud800"])
def test_is_every_control_character_written_as_a_visible_escape(char):
    shown = inert(f"a{char}b")
    assert _unsafe(shown) == []
    assert shown == f"a\\x{ord(char):02x}b" if ord(char) < 0x100 else f"a\\u{ord(char):04x}b"


def test_are_newlines_and_tabs_kept_and_printable_text_unchanged():
    text = "line one\n\tindented: naïve, 日本語, emoji 🙂, a\\x1b typed by hand"
    assert inert(text) == text


def test_is_escaping_twice_the_same_as_once():
    once = inert(HOSTILE_TEXT + "\n" + CONTROL_NAME)
    assert inert(once) == once and inert_line(once) == inert_line(inert_line(once))
    assert "\\x1b]52;c;" in once and "\\x9b2K" in once and "\\u202e" in once and "\\x00" in once


def test_does_a_name_stay_on_one_line():
    assert inert_line("bob\nalice\t50/50") == "bob\\x0aalice\\x0950/50"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_can_no_spreadsheet_cell_start_a_formula(start):
    cell = spreadsheet_cell(f'{start}HYPERLINK("http://x")\x1b')
    assert cell[0] not in "=+-@\t\r" and _unsafe(cell) == []
    assert spreadsheet_cell("bob") == "bob"


def _width(text: Text) -> float:
    return text.get_window_extent().width


@pytest.mark.parametrize("name", ["$x^2$ and $y$", "$\\frac{1}{$", "cost: $5", CONTROL_NAME])
def test_does_a_chart_label_draw_as_written(name):
    """A label draws like the same text with mathtext switched off, even where the text is not
    valid mathtext (which would stop the whole chart being drawn)."""
    fig = Figure()
    ax = fig.subplots()
    ax.barh([chart_label(name)], [1.0])
    fig.savefig(io.BytesIO(), format="png")
    (label,) = [t for t in ax.get_yticklabels() if t.get_text()]
    literal = fig.text(
        0, 0, inert_line(name), parse_math=False, fontproperties=label.get_fontproperties()
    )
    fig.canvas.draw()
    assert _width(label) == pytest.approx(_width(literal), rel=1e-6)


def test_is_a_clipped_text_within_its_limit_and_clipped_once():
    text = "E" * 10_000
    once = clipped(text, 100)
    assert len(once) <= 100 and once.endswith("(9,940 more characters)")
    assert clipped(once, 100) == once and clipped("short", 100) == "short"
