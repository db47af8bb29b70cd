"""Build an assignment's nbgrader source notebook from its parts.

The solution cells come verbatim from `solutions/<id>/student.py` (split at `# %% cell: <id>`
markers), so the notebook and the reference package are one source. Grade cells get their points
from the manifest and call the grader's checks in their hidden part. `python -m solutions
notebook <id>` writes `source/<id>/<id>.ipynb`; a test fails when the committed file differs.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.judge import published_thresholds
from grader.manifest import Manifest
from grader.notebook_io import VISIBLE_PREFIX
from grader.staging import MAX_EXTRA_FILE_BYTES

CELL_MARKER = re.compile(r"^# %% cell: (?P<id>[\w-]+)\s*$", re.M)


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code"
    source: str
    grade_id: str | None = None
    solution: bool = False
    grade: bool = False
    locked: bool = False
    points: float = 0.0
    cell_id: str | None = None  # notebook cell id when there is no grade id


def markdown(text: str, grade_id: str | None = None) -> Cell:
    """Instructions; locked when given an id so that students cannot delete them unnoticed."""
    return Cell("markdown", _dedent(text), grade_id, locked=grade_id is not None)


def answer(cell_id: str, prompt: str = "*Your answer here.*") -> Cell:
    """A plain markdown cell for a written comment: read by people, never auto-scored.

    nbgrader only allows markdown solution cells with manual points, which would make its
    totals differ from the autograder's, so this cell carries no nbgrader metadata.
    """
    return Cell("markdown", prompt, cell_id=cell_id)


def provided(grade_id: str, code: str) -> Cell:
    """Code the student runs as given (set-up, data, training frames)."""
    return Cell("code", _dedent(code), grade_id, locked=True)


def solution(grade_id: str, code: str) -> Cell:
    """Code with `### BEGIN/END SOLUTION` regions the student copy replaces by a stub."""
    return Cell("code", _dedent(code), grade_id, solution=True)


def visible_test(name: str, code: str) -> Cell:
    """Asserts a student can run on Colab; needs neither `grader` nor `solutions`; no points."""
    return Cell("code", _dedent(code), VISIBLE_PREFIX + name, locked=True)


def grade_cell(manifest: Manifest, cell: str, intro: str) -> Cell:
    """A graded cell whose hidden part runs the manifest's checks of `cell` and prints why."""
    checks = manifest.cells()[cell]
    names = ", ".join(c.name for c in checks)
    code = (
        f"# {_dedent(intro)}\n"
        f"# Checked when your notebook is graded: {names}.\n"
        "### BEGIN HIDDEN TESTS\n"
        "from grader.hidden import grade_cell\n"
        f'grade_cell("{manifest.id}", "{cell}")\n'
        "### END HIDDEN TESTS"
    )
    return Cell("code", code, cell, grade=True, locked=True, points=sum(c.points for c in checks))


def weights_or_training(name: str, model: str, weights: str, training: str) -> str:
    """The code of a training cell: `name = model` on the device, then, while the notebook is
    graded, the submitted `weights` loaded into it; else `training` (indented under `else:`)."""
    return (
        f"{name} = {model}.to(device)\n"
        "if GRADING:\n"
        "    # The grader runs this cell with your submitted weights instead of training.\n"
        f'    {name}.load_state_dict(torch.load("{weights}", map_location=device, '
        "weights_only=True))\n"
        f"else:\n{textwrap.indent(training, '    ')}"
    )


def before_you_submit(manifest: Manifest, rerun: str, note: str = "") -> list[Cell]:
    """The notebook's last cells: the pre-submission check, and the files to hand in, each with
    the size limit the grader applies. `rerun` says what the check's fresh run skips and how
    long it takes; `note` ends the list (e.g. a file not to hand in)."""
    thresholds = published_thresholds(manifest)
    files = [
        f"`{m.weights}` (at most {m.max_weights_mb:g} MB"
        + (f"; test accuracy at least {thresholds[m.key]:.2f})" if m.key in thresholds else ")")
        for m in manifest.models
    ]
    files += [f"`{name}` (at most {_json_max_mb()} MB)" for name in json_files(manifest)]
    check = (
        "Upload `precheck.py` (it comes with this notebook) to the same folder, choose *Runtime >"
        " Run all*, then run the cell below. It checks that every part is filled in, that the"
        " files below exist, load and are small enough, and that the notebook runs from top to"
        " bottom the way the grader runs it. For that last step it starts a fresh kernel of its"
        f" own and runs the whole notebook again there ({rerun}); your running notebook is not"
        " touched. What it runs is the notebook as Colab holds it, or, outside Colab, the"
        " `.ipynb` file as last saved: save first (*File > Save*). Then download the notebook"
        " (*File > Download > .ipynb*) and hand it in with these files:"
    )
    listing = "\n".join(f"* {f}" for f in files)
    text = f"## Before you submit\n\n{textwrap.fill(check, 88)}\n\n{listing}\n\n{note}"
    return [
        markdown(text.strip()),
        provided("precheck", "%run precheck.py"),
    ]


def _json_max_mb() -> int:
    """The grader's limit on a JSON file handed in beside the weights, in MB."""
    return MAX_EXTRA_FILE_BYTES // 1024**2


def json_files(manifest: Manifest) -> list[str]:
    """The JSON files handed in beside the weights: configurations, then the manifest's files."""
    return [m.config for m in manifest.models if m.config] + list(manifest.files)


def student_chunks(path: Path) -> dict[str, str]:
    """The code of each `# %% cell: <id>` section of a student.py file."""
    text = path.read_text()
    marks = list(CELL_MARKER.finditer(text))
    chunks = {}
    for mark, nxt in zip(marks, marks[1:] + [None], strict=False):
        end = nxt.start() if nxt else len(text)
        chunks[mark["id"]] = text[mark.end() : end].strip("\n")
    return chunks


PRECHECK_TEMPLATE = Path(__file__).with_name("precheck.py")

# How points are given, in every notebook's introduction: the README's scoring policy, for
# students.
GRADING_NOTE = """
**How your work is graded.** Every part is checked on its own: the grader builds your classes
with sizes of its choosing and compares what they compute with the reference solution (shapes,
parameters, and the outputs under the same parameter values), calls your training and
evaluation functions on small models of its own, and measures the test accuracy of the weights
you hand in. A mistake costs the points of the part where it is made. A part that builds on an
earlier one is checked with your own earlier part in place, so the same mistake is not charged
again there; the accuracy of your trained weights is the one exception, since a wrong model
cannot be trained to the threshold. The report names each check and says what it found.
"""


def introduction(
    manifest: Manifest,
    about: str,
    *,
    tests: str,
    measured: str = "their accuracy on the test split",
    skipped: str = "its training cells do not train: they load these files",
    note: str = "",
    after: str = "",
) -> list[Cell]:
    """The notebook's first cells: the title and `about` (what the assignment is), how to work,
    what to hand in (the files from the manifest), `after` (e.g. references), then GRADING_NOTE.

    `tests`: what the visible test cells check; `note`: ends the "how to work" paragraph;
    `skipped`: what does not run while the notebook is graded; `measured`: what the grader
    measures of the submitted files.
    """
    files = [f"`{name}`" for name in [m.weights for m in manifest.models] + json_files(manifest)]
    listing = " and ".join([", ".join(files[:-1]), files[-1]] if len(files) > 1 else files)
    work = (
        "**How to work.** Open this notebook in Google Colab and switch on a GPU (*Runtime >"
        " Change runtime type > GPU*). Fill in every cell that contains `raise"
        " NotImplementedError()`; keep the names and arguments of classes and functions as they"
        " are, because the grader calls them. Run the small test cells after each part: they"
        f" check {tests}; more checks run when your work is graded. {note}"
    )
    hand_in = (
        "**What to hand in.** This notebook, run from top to bottom, and the files it writes:"
        f" {listing}, listed with their size limits in the last section. When your notebook is"
        f" graded {skipped}, and the grader itself measures {measured}. Before you submit, run"
        " the last cell (the pre-submission check)."
    )
    fill = textwrap.TextWrapper(88, break_on_hyphens=False).fill
    paragraphs = [_dedent(about), fill(work.strip()), fill(hand_in)]
    text = "\n\n".join(paragraphs + ([_dedent(after)] if after else []))
    return [markdown(text, "intro"), markdown(GRADING_NOTE)]


def _first_line(code: str) -> str:
    """The first line that is neither blank nor a comment."""
    lines = [
        line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line in lines:
        if match := re.match(r"(class|def)\s+(\w+)", line):
            return f"{match[1]} {match[2]}"
    return lines[0].strip() if lines else ""


def signature(code: str) -> str:
    """A regex that finds a solution cell by content: its first class/def line (or the name bound
    by an assignment: `make_transforms = partial(...)`), else its first line."""
    first = _first_line(code)
    if match := re.fullmatch(r"(class|def) (\w+)", first):
        return rf"^({first}\b|{match[2]}\s*=)"
    return "^" + re.escape(first) if first else "^$"


HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.M)


def sections(cells: list[Cell]) -> dict[str, str]:
    """grade id -> the title of the last markdown heading above it ("A1. The residual block")."""
    out, current = {}, ""
    for cell in cells:
        if cell.kind == "markdown":
            titles = HEADING.findall(cell.source)
            current = titles[-1] if titles else current
        elif cell.grade_id:
            out[cell.grade_id] = current or cell.grade_id
    return out


def precheck_script(manifest: Manifest, cells: list[Cell], timeout: int = 900) -> str:
    """The student's pre-submission check, configured for this assignment.

    Each solution cell is found by its first line and named by its section's heading, the
    words a student sees, never by an internal cell id.
    """
    titles = sections(cells)
    config = {
        "id": manifest.id,
        "notebook": manifest.notebook,
        "cells": {
            c.grade_id: {
                "pattern": signature(c.source),
                "starts": _first_line(c.source),
                "section": titles[c.grade_id],
            }
            for c in cells
            if c.solution and c.kind == "code"
        },
        "weights": [{"file": m.weights, "max_mb": m.max_weights_mb} for m in manifest.models],
        "timeout": timeout,
    }
    configs = json_files(manifest)
    if configs:  # JSON files handed in beside the weights (absent: the script as before)
        config["json_files"] = configs
        config["json_max_mb"] = _json_max_mb()
    text = PRECHECK_TEMPLATE.read_text()
    return text.replace("__CONFIG__", json.dumps(config, indent=1))


def build(cells: list[Cell]):
    """An nbformat-4 notebook with nbgrader metadata on every identified cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    ids = [c.grade_id or c.cell_id for c in cells if c.grade_id or c.cell_id]
    if len(ids) != len(set(ids)):
        raise ValueError("grade ids repeat")
    for index, cell in enumerate(cells):
        make = (
            nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        )
        node = make(cell.source)
        node.id = cell.grade_id or cell.cell_id or f"cell-{index}"
        if cell.grade_id:
            meta = {
                "grade": cell.grade,
                "grade_id": cell.grade_id,
                "locked": cell.locked,
                "schema_version": 3,
                "solution": cell.solution,
                "task": False,
            }
            if cell.grade:
                meta["points"] = cell.points
            node.metadata["nbgrader"] = meta
        nb.cells.append(node)
    nbformat.validate(nb)
    return nb


def write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n")


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")
