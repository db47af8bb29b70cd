"""Read a submitted notebook without trusting it, and find what a submission folder holds.

Only the parent (trusted) process parses notebooks. The reader is lenient where Colab or a
text editor may have bent the format (missing metadata and ids, sources as strings or lists,
stray bytes that are not UTF-8) and strict where nothing can be graded (not JSON, no cells).
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader.cell_code import cell_tree
from grader.text import clipped, inert_line

# The grade id prefix of the notebooks' visible test cells (asserts students run; no points).
VISIBLE_PREFIX = "visible_"
MAX_NOTEBOOK_BYTES = 50 * 1024**2
MAX_CODE_BYTES = 10 * 1024**2


class NotebookError(Exception):
    """The notebook cannot be graded at all; the message says why, for the student."""


def too_big(name: str, size: int) -> str:
    """Why a notebook over MAX_NOTEBOOK_BYTES is not graded."""
    return (
        f"{name} is over the size limit ({size / 1024**2:.0f} MB, limit "
        f"{MAX_NOTEBOOK_BYTES / 1024**2:.0f} MB): clear its outputs and hand it in again"
    )


@dataclass(frozen=True)
class StudentNotebook:
    path: Path  # the notebook's name in the submission
    code_cells: list[str]
    numbers: list[int]  # each code cell's position in the notebook, counting every cell from 1
    warnings: list[str] = field(default_factory=list)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def nbgrader_meta(cell: dict) -> dict:
    """A cell's nbgrader metadata as a dict ({} when Colab or an editor left anything else)."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def parse_notebook(name: str, raw: bytes) -> StudentNotebook:
    """The notebook's code cells in order, or a NotebookError saying why there are none.

    Warnings and errors name the notebook as inert text: the student chose its name."""
    warnings = []
    path, name = Path(name), inert_line(name)
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(too_big(name, len(raw)))
    try:
        # utf-8-sig: a notebook saved by a Windows editor may open with a byte order mark, which
        # JSON readers may skip (RFC 8259) and json.loads refuses.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        text = raw.decode("utf-8-sig", errors="replace")
        warnings.append(
            f"{name} is not valid UTF-8 (byte {err.start}); unreadable bytes were replaced"
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise NotebookError(f"{name} is not a notebook: invalid JSON ({err})") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        # nbformat 3 kept cells under worksheets; nothing current writes that.
        raise NotebookError(f"{name} has no list of cells (not an nbformat 4 notebook)")
    if data.get("nbformat") != 4:
        version = clipped(repr(data.get("nbformat")), 40)  # the student's value: 40 MB, say
        warnings.append(f"{name} says nbformat {version}; read as version 4")
    numbered = [
        (number, _source(c))
        for number, c in enumerate(cells, start=1)
        if isinstance(c, dict) and c.get("cell_type") == "code"
    ]
    if sum(len(code) for _, code in numbered) > MAX_CODE_BYTES:
        raise NotebookError(f"{name} holds over 10 MB of code")
    warnings += _unrun_code_cells(cells)
    return StudentNotebook(path, [c for _, c in numbered], [n for n, _ in numbered], warnings)


def _unrun_code_cells(cells: list) -> list[str]:
    """A note for each code cell of the release turned into a raw or markdown cell, which never
    runs: its checks then say that no cell defines its names (blind round 16, `confusion` made
    raw)."""
    found = []
    for number, cell in enumerate(cells, start=1):
        kind = cell.get("cell_type") if isinstance(cell, dict) else None
        # nbgrader records each cell's type (schema 3): a written answer's stays markdown.
        if kind in ("raw", "markdown") and nbgrader_meta(cell).get("cell_type") == "code":
            grade_id = inert_line(str(nbgrader_meta(cell).get("grade_id", "")))[:40]
            found.append(
                f"cell {number} ({grade_id}) is a {kind} cell, so it did not run and defined "
                "nothing: turn it back into a code cell"
            )
    return found


def normalise(source: str) -> str:
    """Source text with whitespace differences removed, to recognise our own cells by content."""
    return re.sub(r"\s+", " ", source).strip()


def release_test_sources(release_notebook: Path, given: bool = False) -> set[str]:
    """Normalised sources of the release's test cells (visible tests and the stubs of hidden
    ones): the grader runs its own checks, so these need not run while grading. With `given`:
    those of its other locked code cells instead (imports, data, evaluation), which do run."""
    if not release_notebook.exists():
        return set()
    data = json.loads(release_notebook.read_text())
    sources = set()
    for cell in data["cells"]:
        meta = nbgrader_meta(cell)
        is_test = bool(meta.get("grade") and not meta.get("solution")) or str(
            meta.get("grade_id", "")
        ).startswith(VISIBLE_PREFIX)
        locked = meta.get("locked") and not meta.get("solution")
        if cell.get("cell_type") == "code" and (locked and not is_test if given else is_test):
            sources.add(normalise(_source(cell)))
    return sources


def cells_to_run(notebook: StudentNotebook, release: Path) -> list[tuple[int, str, bool]]:
    """(number, code, given) of each code cell the probe runs. Our test cells need not run (the
    checks do), but a helper one defines (fnn_mnist's `_as_module`) may be called by the
    student's code, as it was in Colab: their imports, functions and classes run, as a given
    cell does (which leaves the student's own definitions of those names to the checks)."""
    ours, given = release_test_sources(release), release_test_sources(release, given=True)
    cells = []
    for number, code in zip(notebook.numbers, notebook.code_cells, strict=True):
        if normalise(code) in ours:
            cells.append((number, _definitions(code), True))
        elif code.strip():
            cells.append((number, code, normalise(code) in given))
    return [cell for cell in cells if cell[1]]


def last_part(cells: list[tuple[int, str, bool]], release: Path) -> int | None:
    """The index in `cells` (cells_to_run's) of the student's cell that holds the release's last
    solution cell; None where none does. The student's cells after it are closing experiments
    (grader/probe/kept.py).

    A last part that defines functions or classes (cnn_techniques' `def confusion`) is the
    first cell that defines one of them or holds its first line of code: a signature the student
    changed (`device=device`) is still found, and a redefinition at the end (an exploration, or
    a late "fix") is a closing experiment. One that defines none (a training cell) is the last
    cell holding its first line of code or, where the student edited that line (split it in
    two), a line of it that no other code cell of the release has (fnn_mnist's saving line).
    Lines of code: not comments such as nbgrader's "# YOUR CODE HERE", which students keep in
    any part, nor the placeholder's raise."""
    if not release.exists():
        return None
    ours = [c for c in json.loads(release.read_text())["cells"] if c.get("cell_type") == "code"]
    code = [_source(c) for c in ours]
    solutions = [_source(c).strip() for c in ours if nbgrader_meta(c).get("solution")]
    part = solutions[-1] if solutions else ""
    lines = [s.strip() for s in part.splitlines()]
    lines = [s for s in lines if s and not s.startswith("#") and "NotImplementedError" not in s]
    names = _top_level_names(part)
    others = {s.strip() for c in code if c.strip() != part for s in c.splitlines()}
    own = [s for s in lines[1:] if len(s) > 10 and s not in others]
    students = [(i, text) for i, (_, text, given) in enumerate(cells) if not given]
    for marks in (lines[:1],) if names else (lines[:1], own):
        found = [
            i
            for i, text in students
            if any(m in text for m in marks) or names & _top_level_names(text)
        ]
        if found:
            return found[0] if names else found[-1]
    return None


def _definitions(source: str) -> str:
    tree = cell_tree(source)
    kept = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    body = tree.body if tree else []
    return "\n\n".join(ast.unparse(node) for node in body if isinstance(node, kept))


def _top_level_names(source: str) -> set[str]:
    """The functions and classes a cell defines at its top level."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree = cell_tree(source)  # None for what cannot be read (a nested hostile cell, say)
    return {node.name for node in tree.body if isinstance(node, kinds)} if tree else set()


def _alias(source: str, name: str) -> str | None:
    """What a cell's top-level `name = other` binds to `name` where `other` is a bare name or an
    attribute (another function: blind round 15b, mlp_tuning v05), else None (a value)."""
    tree, alias = cell_tree(source), None
    for node in tree.body if tree else []:  # the cell's last binding of the name decides
        if name in [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]:
            plain = isinstance(node.value, ast.Name | ast.Attribute)
            alias = ast.unparse(node.value) if plain else None
    return alias


def redefined_parts(notebook: StudentNotebook, release: Path, graded: dict[str, int]) -> list[str]:
    """A note for each function or class of the release's solution cells that the notebook
    defines in several cells, which a student who kept an old or exploratory version may not
    expect, naming the one the checks met (`graded`: name -> cell number, as the probe reports
    it; grader/probe/kept.py decides)."""
    parts = _solution_names(release)
    if not parts:
        return []
    where: dict[str, list[int]] = {}
    sources = {}
    for number, code, given in cells_to_run(notebook, release):
        sources[number] = code
        for name in sorted(_top_level_names(code) & parts) if not given else ():
            where.setdefault(name, []).append(number)
    notes = []
    for name, cells in sorted(where.items()):
        chosen = graded.get(name)
        alias = _alias(sources.get(chosen, ""), name) if chosen is not None else None
        if alias and chosen > cells[-1]:  # `evaluate = evaluate_fixed`: a function, as meant
            notes.append(
                f"{name} is defined in cell {cells[-1]}, but cell {chosen} then binds the name to "
                f"{alias}: the checks meet {alias}, not cell {cells[-1]}'s definition"
            )
            continue
        if chosen is not None and chosen > cells[-1]:  # a value bound over it (Kept.rebound)
            notes.append(
                f"{name} is defined in cell {cells[-1]}, but cell {chosen} then binds the name to "
                "a value: the checks meet that value, not your definition; give it another name"
            )
            continue
        if len(cells) < 2:
            continue
        listed = f"{name} is defined in cells {', '.join(map(str, cells[:-1]))} and {cells[-1]}"
        chosen = graded.get(name)
        if chosen == cells[-1]:
            notes.append(
                f"{listed}: the last one, cell {chosen}, is graded (as a run from top to bottom "
                "leaves it); keep one"
            )
        elif chosen in cells:
            notes.append(
                f"{listed}: cell {chosen}'s is graded (the later ones did not run, or are "
                "experiments after the notebook's last part that none of its given cells used); "
                "keep one"
            )
        else:
            notes.append(f"{listed}: keep one")
    return notes


def patched_parts(release: Path, patched: dict[str, int]) -> list[str]:
    """A note for each method of a solution's class that a student's cell set outside the class
    and the checks meet (`patched`: "Class.method" -> cell number, as the probe reports it; one
    set in an experiment after the notebook's last part is put back: grader/probe/kept.py),
    which a check's message about that class would otherwise leave unexplained."""
    parts, notes = _solution_names(release), []
    for member, number in sorted(patched.items()):
        name, _, attr = member.partition(".")
        if name in parts and attr.isidentifier():
            notes.append(
                f"{name}.{attr} is set in cell {number}, outside the class: the checks meet {name} "
                "as that cell left it (as a run from top to bottom does); to try a change, give "
                f"the changed class a new name (a subclass of {name})"
            )
    return notes


def star_imports(notebook: StudentNotebook) -> list[str]:
    """A note for each `from M import *` of the student's where M, already loaded here (the
    grader imports nothing a student names), has public names that Python's built-ins have:
    blind round 18 (res): after `from torch import *` DenseBlock's range(num_layers) called
    torch.range and raised 'range() missing 1 required positional arguments: "end"', every
    DenseBlock check said so and nothing said why."""
    notes = []
    for number, code in zip(notebook.numbers, notebook.code_cells, strict=True):
        for node in ast.walk(cell_tree(code) or ast.Module(body=[], type_ignores=[])):
            if not isinstance(node, ast.ImportFrom) or node.names[0].name != "*":
                continue
            module = sys.modules.get(node.module or "")
            names = getattr(module, "__all__", None) or [n for n in dir(module) if n[0] != "_"]
            if taken := sorted(set(names) & {n for n in dir(builtins) if n[0] != "_"}):
                notes.append(
                    f"cell {number}: `from {node.module} import *` replaces Python's built-ins "
                    f"{', '.join(taken)} with {node.module}'s for every cell after it, so code "
                    "that calls them as Python's raises or computes something else: import "
                    f"the module by its name (import {node.module}) instead"
                )
    return notes


def stopped_cells(cells) -> list[str]:
    """A note for each cell (probe `CellOutcome`s) that stopped the run on purpose (`raise
    SystemExit`, `sys.exit()`, `exit()`, an interrupt) or does not parse: Run all stops there on
    Colab, so the cells after it never ran in the student's own session; the grader runs them
    all the same."""
    notes = []
    for cell in cells:
        if cell.status == "error" and cell.message.startswith(("SystemExit", "KeyboardInterrupt")):
            notes.append(
                f"cell {cell.number} stops the notebook ({cell.message[:80]}): Run all stops "
                "there, so the cells after it did not run in your notebook; they were run here "
                "all the same and graded, but take the stop out before handing in (the "
                "pre-submission check says so)"
            )
        elif cell.status == "error" and cell.message.startswith("SyntaxError"):
            # Blind 16 (three assignments): a written answer typed into a code cell.
            notes.append(
                f"cell {cell.number} is not Python ({cell.message[:80]}): Run all stops there "
                "on Colab; the cells after it were run here all the same (a cell holding a "
                "written answer should be a Markdown cell)"
            )
    return notes


def _solution_names(release: Path) -> set[str]:
    """The functions and classes the release's solution cells define."""
    if not release.exists():
        return set()
    cells = json.loads(release.read_text())["cells"]
    solutions = [
        c for c in cells if c.get("cell_type") == "code" and nbgrader_meta(c).get("solution")
    ]
    return set().union(*(_top_level_names(_source(c)) for c in solutions))


def release_imports(release_notebook: Path) -> tuple[str, ...]:
    """The modules the release's code cells import unconditionally (`import a.b`, `from a.b
    import c` at a cell's top level: "a.b"), in first-use order: what every student's notebook
    loads, which a probe can load before it forks (the release is the instructor's)."""
    if not release_notebook.exists():
        return ()
    modules: dict[str, None] = {}
    for cell in json.loads(release_notebook.read_text())["cells"]:
        tree = cell_tree(_source(cell)) if cell.get("cell_type") == "code" else None
        for node in tree.body if tree else []:
            if isinstance(node, ast.Import):
                modules.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules[node.module] = None
    return tuple(modules)


def unfinished_parts(raw: bytes) -> int:
    """How many code cells still raise NotImplementedError (to compare two notebooks): counted
    in the code, not in saved outputs, whose tracebacks may quote that line."""
    try:
        cells = parse_notebook("notebook", raw).code_cells
    except NotebookError:
        return raw.count(b"raise NotImplementedError")
    return sum(code.count("raise NotImplementedError") for code in cells)


def choose_notebook(
    candidates: dict[str, bytes], expected_name: str, folder: str
) -> tuple[str, str | None]:
    """Which of a folder's notebooks (name -> bytes) to grade, and a note saying why when the
    choice was not obvious. NotebookError when there is none."""
    if not candidates:
        raise NotebookError(f"no notebook in {folder}/ (expected {expected_name})")
    others = lambda chosen: ", ".join(sorted(n for n in candidates if n != chosen))  # noqa: E731
    if expected_name in candidates:
        if len(candidates) == 1:
            return expected_name, None
        # The release's name, unless a notebook named after it ("Copy of X.ipynb", "X (1).ipynb")
        # has fewer unfinished parts: a student who worked in Colab's copy may hand in the
        # untouched original beside it. A scratch notebook of another name never wins: it
        # has no unfinished parts either.
        stem = Path(expected_name).stem
        named = [n for n in candidates if stem in Path(n).stem]
        left = {n: unfinished_parts(candidates[n]) for n in named}
        chosen = min(sorted(named), key=lambda n: (left[n], n != expected_name))
        if chosen != expected_name:
            return chosen, (
                f"graded {chosen}, the most complete notebook ({left[chosen]} unfinished "
                f"parts, {expected_name} has {left[expected_name]}); also in the folder, not "
                f"graded: {others(chosen)}"
            )
        return (
            expected_name,
            f"graded {expected_name}; also in the folder, not graded: {others(expected_name)}",
        )
    stem = Path(expected_name).stem
    named = [n for n in candidates if stem in Path(n).stem] or list(candidates)
    if len(candidates) == 1:
        only = named[0]
        return (
            only,
            f"graded {only} (the folder's only notebook; the release calls it {expected_name})",
        )
    # Several: the most complete one (fewest unfinished parts), then the newest name.
    chosen = min(sorted(named), key=lambda n: unfinished_parts(candidates[n]))
    return chosen, (
        f"{folder}/ holds {len(candidates)} notebooks and none is named {expected_name}: graded "
        f"{chosen}, the most complete ({unfinished_parts(candidates[chosen])} unfinished parts); "
        f"not graded: {others(chosen)}"
    )
