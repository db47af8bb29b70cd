"""What the hidden test cells of a source notebook call under `nbgrader autograde`.

`grade_cell(assignment, cell)` runs the observers of the checks the manifest puts in `cell` (and
of the checks they build on, for the scoring policy) on the objects the notebook defined in this
kernel and on the reference solution, with settings drawn afresh, judges them, prints one line
per check and returns the points earned: nbgrader takes a number as a grade cell's last value
for partial credit.

This path runs inside the student's own kernel, so it is exactly as trustworthy as nbgrader
itself: a hostile notebook can tamper with it. `python -m grader grade` is the trusted path
(student code sandboxed, points decided elsewhere) and writes the same scores into nbgrader's
gradebook.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path

from grader.inputs import prepare_inputs
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext
from grader.session import Session


def grade_cell(assignment: str, cell: str, namespace: dict | None = None) -> float:
    """Points earned by the checks of `cell`, judged on this kernel's namespace."""
    manifest = load_manifest(assignment)
    names = [c.name for c in manifest.cells()[cell]]
    namespace = namespace if namespace is not None else _kernel_namespace()
    # A warning on stderr would make nbgrader give the cell 0: keep them, and prints, quiet.
    with (
        tempfile.TemporaryDirectory(prefix="dlgrade-hidden-") as tmp,
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        session = Session.prepare(manifest, checks=names)  # settings drawn afresh
        inputs = (
            prepare_inputs(manifest, Path(tmp), fonts=False) if session.needs_test_images else None
        )
        ctx = ProbeContext(
            ns=namespace,
            manifest=manifest,
            workdir=Path(os.getcwd()),
            weights_dir=Path(os.getcwd()),
            test_images=inputs.images_file if inputs else None,
        )
        results = session.judge(
            session.observe(ctx),
            labels=inputs.labels if inputs else None,
            no_test_split=inputs.missing if inputs else "",
            test_split=inputs.split_name if inputs and inputs.stand_ins else "",
        )
    results = [r for r in results if r.name in names]
    for r in results:
        print(f"{r.status:>7}  {r.points:g}/{r.max_points:g}  {r.name}: {r.message}")
    return round(sum(r.points for r in results), 4)


def _kernel_namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("grade_cell needs a namespace outside IPython")
    return shell.user_ns
