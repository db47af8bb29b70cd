"""Python source as the tokens that plagiarism detection compares.

What students change to hide a copy must not change the tokens; what they cannot change (the
language, the library's API) stays. So, from Python's own tokenizer (`tokenize`):

* comments, docstrings, blank lines, indentation and line breaks inside brackets are dropped
  (re-wrapping a statement over several lines gives the same tokens), and a trailing comma
  before a closing bracket is dropped (formatters add one when they wrap a call);
* every name the code itself binds (variables, parameters, functions, classes, attributes it
  assigns such as `self.fc1`) becomes `V`, so renaming changes nothing; names it only uses
  (builtins, keyword arguments of library calls, attributes such as `.backward`) stay, and an
  import alias stands for the module it names (`nn` and `tnn` both read `torch.nn`);
* numbers become `N` and strings `S`; a statement break is `;`.

Notebook magics (`%%time`, `!pip ...`) are not Python: their lines are left out. Code that does
not parse or tokenize is read as far as it goes and again from the line after each error, never
refused.
"""

from __future__ import annotations

import ast
import io
import keyword
import re
import textwrap
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_MAGIC = re.compile(r"^[ \t]*[%!].*$", re.M)
_SKIPPED = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
_CLOSERS = {")", "]", "}"}
MAX_RESTARTS = 200  # errors recovered from in one cell (tokenizer, parser) before giving up


@dataclass(frozen=True)
class Names:
    """What a student's code binds (normalised to `V`) and its import aliases (alias -> the
    dotted module or object it names)."""

    bound: frozenset[str]
    aliases: dict[str, str]

    def __or__(self, other: Names) -> Names:
        return Names(self.bound | other.bound, {**self.aliases, **other.aliases})


@dataclass(frozen=True)
class CellTokens:
    """One cell's normalised tokens and the source lines (1-based) each starts and ends on."""

    texts: tuple[str, ...]
    lines: tuple[int, ...]
    end_lines: tuple[int, ...]


def strip_magics(source: str) -> str:
    """`source` with notebook magic and shell lines blanked (line numbers kept)."""
    return _MAGIC.sub("", source)


# ---------------------------------------------------------------- names the code binds


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class _Binder(ast.NodeVisitor):
    def __init__(self):
        self.bound: set[str] = set()
        self.aliases: dict[str, str] = {}

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.bound.add(node.id)

    def visit_Attribute(self, node: ast.Attribute):
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.bound.add(node.attr)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg):
        self.bound.add(node.arg)

    def _define(self, node):
        self.bound.add(node.name)
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _define

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global):
        self.bound.update(node.names)

    visit_Nonlocal = visit_Global

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom):
        for alias in node.names:
            if alias.name != "*":
                self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"


def _parse_lenient(source: str) -> list[ast.AST]:
    """The cell's syntax trees: the whole cell when it parses. Otherwise both the cell with
    each line the parser rejects replaced by `pass` (a typo hides the names of its own line
    only) and every line parsed on its own (a header line gets a body)."""
    lines, trees = source.splitlines(), []
    for attempt in range(MAX_RESTARTS):
        try:
            trees.append(ast.parse("\n".join(lines)))
            if attempt == 0:
                return trees
            break
        except SyntaxError as err:
            row = (err.lineno or 0) - 1
            if not 0 <= row < len(lines) or lines[row].strip() == "pass":
                break
            lines[row] = lines[row][: len(lines[row]) - len(lines[row].lstrip())] + "pass"
        except (ValueError, RecursionError, MemoryError):
            break
    for line in source.splitlines():
        text = line.strip()
        if text.endswith(":"):
            text += " pass"
        try:
            trees.append(ast.parse(text))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return trees


def names_of(sources: Iterable[str]) -> Names:
    """The names the cells bind and their import aliases (dunder names are never bound: they
    are the language's, such as `__init__`)."""
    binder = _Binder()
    for source in sources:
        for tree in _parse_lenient(strip_magics(source)):
            binder.visit(tree)
    bound = frozenset(n for n in binder.bound if not _is_dunder(n)) - set(binder.aliases)
    return Names(bound, binder.aliases)


# ---------------------------------------------------------------- tokens


def _raw_tokens(source: str) -> Iterator[tokenize.TokenInfo]:
    """Tokenizer output; after an error (an unmatched dedent, an unclosed string) tokenizing
    starts again, dedented, on the line after the one that failed."""
    lines = source.splitlines(keepends=True)
    offset = 0  # lines of `source` before the text being tokenized
    for _ in range(MAX_RESTARTS):
        text = textwrap.dedent("".join(lines[offset:]))
        last = offset
        try:
            for tok in tokenize.generate_tokens(io.StringIO(text).readline):
                last = offset + tok.end[0]
                if offset:
                    tok = tok._replace(
                        start=(tok.start[0] + offset, tok.start[1]),
                        end=(tok.end[0] + offset, tok.end[1]),
                    )
                yield tok
            return
        except (tokenize.TokenError, SyntaxError) as err:
            failed = getattr(err, "lineno", None) or (err.args[1][0] if len(err.args) > 1 else 0)
            offset = max(last, offset + (failed or 1))
            if offset >= len(lines):
                return


def identifiers(source: str) -> set[str]:
    """Every name written in `source`, as written."""
    return {t.string for t in _raw_tokens(strip_magics(source)) if t.type == tokenize.NAME}


def _without_docstrings(raw: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    """`raw` less every string that is a statement on its own (a docstring, or a comment
    written as a string) and the line break after it."""
    quiet = (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    significant = [i for i, t in enumerate(raw) if t.type not in quiet]
    dropped = set()
    for n, i in enumerate(significant):
        if raw[i].type != tokenize.STRING:
            continue
        before = raw[significant[n - 1]].type if n else tokenize.NEWLINE
        after = significant[n + 1] if n + 1 < len(significant) else None
        if before == tokenize.NEWLINE and (
            after is None or raw[after].type in (tokenize.NEWLINE, tokenize.ENDMARKER)
        ):
            dropped.add(i)
            if after is not None and raw[after].type == tokenize.NEWLINE:
                dropped.add(after)
    return [t for i, t in enumerate(raw) if i not in dropped]


_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12 splits f-strings up
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def _normalised(tok: tokenize.TokenInfo, names: Names, after_dot: bool) -> str:
    kind, text = tok.type, tok.string
    if kind == tokenize.NEWLINE:
        return ";"
    if kind == tokenize.STRING or kind == _FSTRING_START:
        return "S"
    if kind == tokenize.NUMBER:
        return "N"
    if kind == tokenize.NAME and not keyword.iskeyword(text):
        if not after_dot and text in names.aliases:
            return names.aliases[text]
        if text in names.bound:
            return "V"
    return text


def cell_tokens(source: str, names: Names) -> CellTokens:
    """The normalised tokens of one cell (see the module's docstring)."""
    texts: list[str] = []
    lines: list[int] = []
    ends: list[int] = []
    inside_fstring = 0
    for tok in _without_docstrings(list(_raw_tokens(strip_magics(source)))):
        if inside_fstring:  # the f-string's parts: it is one `S`, like any string
            inside_fstring += (tok.type == _FSTRING_START) - (tok.type == _FSTRING_END)
            continue
        if tok.type in _SKIPPED or not tok.string.strip() and tok.type != tokenize.NEWLINE:
            continue
        if tok.type == _FSTRING_START:
            inside_fstring = 1
        text = _normalised(tok, names, bool(texts) and texts[-1] == ".")
        if text == ";" and (not texts or texts[-1] == ";"):
            continue
        if text in _CLOSERS and texts and texts[-1] == ",":
            texts.pop(), lines.pop(), ends.pop()
        texts.append(text)
        lines.append(tok.start[0])
        ends.append(tok.end[0])
    return CellTokens(tuple(texts), tuple(lines), tuple(ends))
