"""Read a submitted notebook without trusting it, and find what a submission folder holds.

Only the parent (trusted) process parses notebooks. The reader is lenient where Colab or a
text editor may have bent the format (missing metadata and ids, sources as strings or lists,
stray bytes that are not UTF-8) and strict where nothing can be graded (not JSON, no cells).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from solutions.notebook_builder import VISIBLE_PREFIX

MAX_NOTEBOOK_BYTES = 50 * 1024**2
MAX_CODE_BYTES = 10 * 1024**2


class NotebookError(Exception):
    """The notebook cannot be graded at all; the message says why, for the student."""


@dataclass(frozen=True)
class StudentNotebook:
    path: Path
    code_cells: list[str]
    numbers: list[int]  # each code cell's position in the notebook, counting every cell from 1
    warnings: list[str] = field(default_factory=list)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def read_notebook(path: Path) -> StudentNotebook:
    """The notebook's code cells in order, or a NotebookError saying why there are none."""
    warnings = []
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(
            f"{path.name} is {size / 1024**2:.0f} MB; notebooks over 50 MB are refused"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        text = raw.decode("utf-8", errors="replace")
        warnings.append(
            f"{path.name} is not valid UTF-8 (byte {err.start}); unreadable bytes were replaced"
        )
    try:
        data = json.loads(text)
    except ValueError as err:
        raise NotebookError(f"{path.name} is not a notebook: invalid JSON ({err})") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        # nbformat 3 kept cells under worksheets; nothing current writes that.
        raise NotebookError(f"{path.name} has no list of cells (not an nbformat 4 notebook)")
    if data.get("nbformat") != 4:
        warnings.append(f"{path.name} says nbformat {data.get('nbformat')!r}; read as version 4")
    numbered = [
        (number, _source(c))
        for number, c in enumerate(cells, start=1)
        if isinstance(c, dict) and c.get("cell_type") == "code"
    ]
    if sum(len(code) for _, code in numbered) > MAX_CODE_BYTES:
        raise NotebookError(f"{path.name} holds over 10 MB of code")
    return StudentNotebook(path, [c for _, c in numbered], [n for n, _ in numbered], warnings)


def normalise(source: str) -> str:
    """Source text with whitespace differences removed, to recognise our own cells by content."""
    return re.sub(r"\s+", " ", source).strip()


def release_test_sources(release_notebook: Path) -> set[str]:
    """Normalised sources of the release's test cells (visible tests and the stubs of hidden
    ones): the grader runs its own checks, so these need not run while grading."""
    if not release_notebook.exists():
        return set()
    data = json.loads(release_notebook.read_text())
    tests = set()
    for cell in data["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        is_test = meta.get("grade") and not meta.get("solution")
        if cell.get("cell_type") == "code" and (
            is_test or meta.get("grade_id", "").startswith(VISIBLE_PREFIX)
        ):
            tests.add(normalise(_source(cell)))
    return tests


def find_notebook(folder: Path, expected_name: str) -> Path:
    """The submission's notebook: the expected name, else the only notebook, renamed by Colab
    ("Copy of x.ipynb", "x (1).ipynb") or not."""
    exact = folder / expected_name
    if exact.is_file():
        return exact
    candidates = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    stem = Path(expected_name).stem
    named = [p for p in candidates if stem in p.stem]
    if len(named) == 1 or len(candidates) == 1:
        return (named or candidates)[0]
    if not candidates:
        raise NotebookError(f"no notebook in {folder.name}/ (expected {expected_name})")
    raise NotebookError(
        f"{folder.name}/ holds {len(candidates)} notebooks and none is named {expected_name}"
    )
