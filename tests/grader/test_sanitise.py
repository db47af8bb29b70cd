"""Does a student's markdown render to HTML that runs nothing, as nbgrader's templates render it
(markdown2html, no sanitiser), while ordinary markdown still reads as markdown?"""

from __future__ import annotations

from nbconvert.filters.markdown_mistune import markdown2html_mistune

from grader.sanitise import (
    MAX_DEPTH,
    MAX_RENDERED_CELLS,
    NotebookSanitiser,
    raw_as_text,
    safe_markdown,
    too_deep,
)
from tests.fixtures.hostile import HTML_MARKER, HTML_ORDINARY, HTML_PAYLOADS
from tests.fixtures.html import live_from_student


def test_does_no_payload_survive_rendering():
    for payload in HTML_PAYLOADS:
        rendered = markdown2html_mistune(safe_markdown(payload))
        assert live_from_student(rendered) == [], payload
        if "attachment:" in payload:  # nbconvert cannot render it without the attachment
            assert "shown as text" in rendered, payload
        else:
            assert live_from_student(markdown2html_mistune(payload)) != [], payload  # it was live


def test_does_ordinary_markdown_still_read_as_markdown():
    rendered = markdown2html_mistune(safe_markdown(HTML_ORDINARY))
    assert "<strong>bold survives</strong>" in rendered
    assert "<code>x &lt; 3</code>" in rendered
    assert '<a href="https://example.org/"' in rendered
    code = markdown2html_mistune(safe_markdown("```\nif a < b:\n\n    pass\n```"))
    assert "a &lt; b" in code and "&amp;lt;" not in code  # not escaped twice


def test_is_a_raw_cell_shown_as_text():
    raw = f"<script>alert('{HTML_MARKER}')</script>\n\n<b>bold</b>"
    rendered = markdown2html_mistune(raw_as_text(raw))
    assert live_from_student(rendered) == [] and "<b>" not in rendered
    assert f"&lt;script&gt;alert(&#x27;{HTML_MARKER}&#x27;)&lt;/script&gt;" in rendered


def test_is_html_nested_too_deep_to_sanitise_quickly_shown_as_text():
    """nh3's time grows with the square of the nesting depth (20,000 nested divs: a second), so
    such a cell is not given to it."""
    deep = "<div>" * 100_000 + f"<img src=x onerror={HTML_MARKER}>"
    assert too_deep(markdown2html_mistune(deep))
    rendered = markdown2html_mistune(safe_markdown(deep))
    assert "shown as text" in rendered and rendered.count("<div>") == 1
    assert live_from_student(rendered) == []
    # Stray end tags close nothing, and `<div/>` opens a div: neither hides the depth.
    assert too_deep("<div></span>" * (MAX_DEPTH + 1)) and too_deep("<div/>" * (MAX_DEPTH + 1))
    assert not too_deep("<ul><li>a</li><li>b<br><img src=x></li></ul>" * 1000)


def test_are_markdown_cells_after_the_first_thousand_shown_as_text():
    """A notebook of 50,000 tiny markdown cells would keep the grader busy 12 s longer."""
    sanitise = NotebookSanitiser()
    first = [sanitise("markdown", "**bold**") for _ in range(MAX_RENDERED_CELLS)]
    assert all("<strong>bold</strong>" in markdown2html_mistune(s) for s in first)
    later = markdown2html_mistune(
        sanitise("markdown", f"**bold** <img src=x onerror={HTML_MARKER}>")
    )
    assert "shown as text" in later and "<strong>" not in later and live_from_student(later) == []
    assert sanitise("raw", "<b>raw</b>") == raw_as_text("<b>raw</b>")
