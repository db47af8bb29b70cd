"""Make a complete student submission from the reference: the release notebook with reference
code in its solution cells (hidden tests stay out) and the trained weights files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from grader.manifest import Manifest
from solutions.paths import RELEASE_DIR, SOURCE_DIR, WEIGHTS_DIR

SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.M)


def reference_notebook(manifest: Manifest) -> nbformat.NotebookNode:
    """The release notebook, each solution cell filled with the source notebook's solution."""
    release = nbformat.read(RELEASE_DIR / manifest.id / manifest.notebook, as_version=4)
    source = nbformat.read(SOURCE_DIR / manifest.id / manifest.notebook, as_version=4)
    solutions = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"
    }
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and grade_id in solutions:
            cell.source = SOLUTION_MARKER.sub("", solutions[grade_id] + "\n").rstrip("\n")
    return release


def write_submission(manifest: Manifest, out_dir: Path, weights_dir: Path | None = None) -> Path:
    """Write notebook, weights (and configuration files) into `out_dir`; return the notebook's
    path."""
    weights_dir = weights_dir or WEIGHTS_DIR / manifest.id
    out_dir.mkdir(parents=True, exist_ok=True)
    files = list(manifest.submit_files[1:])
    missing = [f for f in files if not (weights_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"no reference weights {', '.join(missing)} in {weights_dir}: "
            f"run `python -m solutions train {manifest.id}` first"
        )
    for name in files:
        shutil.copyfile(weights_dir / name, out_dir / name)
    path = out_dir / manifest.notebook
    nbformat.write(reference_notebook(manifest), path)
    return path
