"""Give collected notebooks the release's name, so that `nbgrader autograde` finds them.

Colab saves a student's copy as "Copy of x.ipynb", a second download becomes "x (1).ipynb" and
some browsers make "x.ipynb.ipynb". nbgrader looks for exactly "x.ipynb" in
`submitted/<student>/<id>/` and skips (or, with `--force`, fails on) anything else. The grader
itself finds a renamed notebook, so this is only needed for nbgrader's own commands.

A folder is renamed only when it holds exactly one notebook and that one is a recognised copy of
the release's name; nothing is ever overwritten. Every other case is reported and left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Peeled off a file name, repeatedly, to find the name it is a copy of.
_COPY_OF = re.compile(r"^copy of\s+", re.I)
_NUMBERED = re.compile(r"\s*\(\d+\)$")
_SUFFIX = ".ipynb"


def original_name(filename: str) -> str:
    """The name `filename` is a Colab-style copy of ("Copy of x (1).ipynb" -> "x.ipynb")."""
    stem = filename
    while stem.lower().endswith(_SUFFIX):
        stem = stem[: -len(_SUFFIX)]
    return peeled(stem) + _SUFFIX


def peeled(stem: str) -> str:
    """`stem` without the "Copy of " and " (1)" that Colab and browsers add, however often."""
    previous = None
    while stem != previous:
        previous = stem
        stem = _COPY_OF.sub("", stem)
        stem = _NUMBERED.sub("", stem).strip()
    return stem


def is_copy_of(filename: str, notebook: str) -> bool:
    """Is `filename` the release notebook `notebook` under a name Colab or a browser gave it?"""
    return filename != notebook and original_name(filename) == notebook


@dataclass(frozen=True)
class Outcome:
    """What was found in one student's folder, and what was (or would be) done."""

    student: str
    folder: Path
    # "ok", "renamed", "would rename"; problems: "conflict", "several", "none", "other name",
    # "misplaced"
    action: str
    detail: str

    @property
    def problem(self) -> bool:
        """Left for a person to sort out."""
        return self.action in ("conflict", "several", "none", "other name", "misplaced")


def _notebooks(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix == _SUFFIX and p.is_file() and p.name[0] != "."
    )


def _one_folder(student: str, folder: Path, notebook: str, dry_run: bool) -> Outcome:
    found = _notebooks(folder)
    names = ", ".join(repr(p.name) for p in found)
    if not found:
        deeper = [
            f"{p.parent.name}/{p.name}"
            for p in folder.glob("*/*.ipynb")
            if p.is_file() and p.parent.name[0] not in "._"  # not .ipynb_checkpoints/, __MACOSX/
        ]
        where = f" ({', '.join(deeper)} is in a subfolder: move it up)" if deeper else ""
        return Outcome(student, folder, "none", f"no notebook in the folder{where}")
    if len(found) > 1:
        return Outcome(student, folder, "several", f"{len(found)} notebooks ({names}): keep one")
    only = found[0]
    if only.name == notebook:
        return Outcome(student, folder, "ok", f"{notebook!r} already")
    if not is_copy_of(only.name, notebook):
        return Outcome(
            student, folder, "other name", f"{only.name!r} is not a copy of {notebook!r}"
        )
    target = folder / notebook
    if target.exists() or target.is_symlink():  # a folder or a link named like the notebook
        return Outcome(student, folder, "conflict", f"{notebook!r} exists and is not a notebook")
    if dry_run:
        return Outcome(student, folder, "would rename", f"{only.name!r} -> {notebook!r}")
    only.rename(target)
    return Outcome(student, folder, "renamed", f"{only.name!r} -> {notebook!r}")


def normalise_collected_names(
    submitted_dir: Path, manifest_notebook: str, dry_run: bool = False, *, assignment: str = ""
) -> list[Outcome]:
    """Rename the Colab-style copies in `submitted_dir/<student>/<assignment>/`; one outcome each.

    `assignment` defaults to the notebook's stem ("res_dense_nets.ipynb" -> "res_dense_nets").
    A student without that folder submitted nothing for it and is left out, unless notebooks
    lie directly in the student's folder: that is reported as "misplaced".
    """
    assignment = assignment or manifest_notebook.removesuffix(_SUFFIX)
    outcomes = []
    for student_dir in sorted(p for p in Path(submitted_dir).iterdir() if p.is_dir()):
        folder = student_dir / assignment
        if folder.is_dir():
            outcomes.append(_one_folder(student_dir.name, folder, manifest_notebook, dry_run))
        elif loose := _notebooks(student_dir):
            outcomes.append(
                Outcome(
                    student_dir.name,
                    student_dir,
                    "misplaced",
                    f"{', '.join(p.name for p in loose)} directly in the student's folder; "
                    f"nbgrader wants it in {student_dir.name}/{assignment}/",
                )
            )
    return outcomes
