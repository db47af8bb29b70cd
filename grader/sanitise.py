"""A student's markdown and raw cells as HTML that runs nothing, for the autograded notebook.

nbgrader's feedback and formgrade pages render the autograded notebook's markdown cells with
`markdown2html` and no sanitiser, whatever `HTMLExporter.sanitize_html` says, and formgrader's
page runs with the instructor's Jupyter session. Sanitising the markdown text itself would not
do: markdown syntax makes links of its own (`[x](javascript:...)`), and the HTML sanitiser
mangles code and quotes written in markdown. So a markdown cell is rendered to HTML as nbconvert
renders it, cleaned by nh3 (Ammonia) down to the tags and attributes ordinary markdown produces
(no script, style, iframe, object, embed, svg or form; no event handlers, style or class
attributes; links and images only to http, https, mailto or relative addresses), and stored as
that HTML on one line inside a `<div>`: a markdown renderer passes such a line through as it is
(CommonMark's HTML block), so what is rendered later is exactly what was cleaned. A raw cell
(rendered as HTML by nbconvert) becomes the same kind of cell holding its text, escaped, and so
does a markdown cell that cannot be rendered (it shows an attachment: the autograded notebook
keeps none) or is too large or too deeply nested to sanitise in reasonable time (nh3's time
grows with the square of the nesting depth of block elements: 20,000 nested `<div>` take a
second, and a 50 MB notebook holds millions); so do the markdown cells of a notebook after its
first `MAX_RENDERED_CELLS`.
"""

from __future__ import annotations

import html
import re

import nh3
from nbconvert.filters.markdown_mistune import markdown2html_mistune

URL_SCHEMES = frozenset({"http", "https", "mailto"})  # besides relative addresses
MAX_MARKDOWN_CHARS = 1024**2  # per cell; larger ones are shown as text
MAX_DEPTH = 100  # elements open at once; ordinary markdown nests a few levels
# Per notebook: rendering and cleaning take 0.25 ms for the smallest cell, so 50,000 tiny cells
# would take 12 s more; beyond this many, markdown cells are shown as text.
MAX_RENDERED_CELLS = 1_000
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


def clean_html(fragment: str) -> str:
    """`fragment` with nothing in it that runs: nh3's default tags and attributes (no script,
    style, iframe, object, embed, svg or form; no on* handlers), links to `URL_SCHEMES` only."""
    return nh3.clean(fragment, url_schemes=set(URL_SCHEMES))


def _as_markdown(clean: str) -> str:
    """Markdown whose rendering is `clean` itself: one line of HTML starting with `<div>` (a
    newline in HTML text or attribute values reads the same as `&#10;`)."""
    one_line = clean.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "&#10;")
    return f"<div>{one_line}</div>"


def too_deep(fragment: str, limit: int = MAX_DEPTH) -> bool:
    """Whether `fragment` nests elements more than `limit` deep, counted so as never to miss
    depth: every start tag but a void element's opens one (`<div/>` too, as in a browser), and an
    end tag closes only an open element of its name. (Elements a parser adds by itself, a
    table's body and row, at most triple the depth counted.) Linear time."""
    open_tags: list[str] = []
    for match in _TAG.finditer(fragment):
        name = match.group(2).lower()
        if not match.group(1):
            if name not in _VOID:
                open_tags.append(name)
                if len(open_tags) > limit:
                    return True
        elif name in open_tags:
            del open_tags[len(open_tags) - 1 - open_tags[::-1].index(name) :]
    return False


def _as_text(source: str, what: str) -> str:
    return _as_markdown(f"<p><em>{what}, shown as text:</em></p><pre>{html.escape(source)}</pre>")


def safe_markdown(source: str) -> str:
    """A student's markdown cell source, as markdown that renders to sanitised HTML only."""
    if len(source) > MAX_MARKDOWN_CHARS:
        return _as_text(source, "A markdown cell too large to render")
    try:
        rendered = markdown2html_mistune(source)
    except Exception:  # noqa: BLE001 - e.g. an image pasted as an attachment (not kept here)
        return _as_text(source, "A markdown cell that could not be rendered")
    if too_deep(rendered):
        return _as_text(source, f"A markdown cell nesting HTML over {MAX_DEPTH} levels deep")
    return _as_markdown(clean_html(rendered))


def raw_as_text(source: str) -> str:
    """A student's raw cell, as markdown that shows its text and renders none of it."""
    return _as_text(source, "A raw cell of the submitted notebook")


class NotebookSanitiser:
    """Markdown for the markdown and raw cells of one notebook, in order: `safe_markdown` for the
    first `MAX_RENDERED_CELLS` markdown cells, their text for the others, `raw_as_text` for raw
    cells."""

    def __init__(self) -> None:
        self.rendered = 0

    def __call__(self, cell_type: str, source: str) -> str:
        if cell_type == "raw":
            return raw_as_text(source)
        self.rendered += 1
        if self.rendered > MAX_RENDERED_CELLS:
            return _as_text(source, f"A markdown cell after the first {MAX_RENDERED_CELLS:,}")
        return safe_markdown(source)
