"""What the hidden test cells of a source notebook call under `nbgrader autograde`.

`grade_cell(assignment, cell)` runs the observers and judges of the checks the manifest puts in
`cell`, on the objects the notebook defined in this kernel, prints one line per check and returns
the points earned: nbgrader takes a number as a grade cell's last value for partial credit.

This path runs inside the student's own kernel, so it is exactly as trustworthy as nbgrader
itself: a hostile notebook can tamper with it. `python -m grader grade` is the trusted path (student
code sandboxed, points decided elsewhere) and writes the same scores into nbgrader's gradebook.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

from grader.judge import JudgeContext, judge, load_expected
from grader.probe.context import ProbeContext
from grader.spec import load_checkset
from solutions.data import load_split, resolve_root
from solutions.manifest import load_manifest


def grade_cell(assignment: str, cell: str, namespace: dict | None = None) -> float:
    """Points earned by the checks of `cell`, judged on this kernel's namespace."""
    manifest = load_manifest(assignment)
    checkset = load_checkset(assignment)
    specs = manifest.cells()[cell]
    names = [c.name for c in specs]
    observers = checkset.observers_for(names)
    namespace = namespace if namespace is not None else _kernel_namespace()
    ctx, labels = _context(manifest, namespace, needs_test_split="predictions" in observers)
    observations = {}
    # A warning on stderr would make nbgrader give the cell 0: keep them, and prints, quiet.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        for name in observers:
            try:
                observations[name] = checkset.observers[name](ctx)
            except Exception as err:  # noqa: BLE001 - scored 0 with the reason
                observations[name] = {"__error__": f"{type(err).__name__}: {err}"}
    cell_manifest = _only(manifest, names)
    results = judge(
        checkset,
        cell_manifest,
        observations,
        JudgeContext(manifest, load_expected(assignment), labels),
    )
    for r in results:
        print(f"{r.status:>5}  {r.points:g}/{r.max_points:g}  {r.name}: {r.message}")
    return round(sum(r.points for r in results), 4)


def _kernel_namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("grade_cell needs a namespace outside IPython")
    return shell.user_ns


def _context(manifest, namespace, needs_test_split: bool):
    test_images, labels = None, None
    if needs_test_split:
        import tempfile

        import torch

        images, labels = load_split(
            manifest.dataset, train=False, root=resolve_root(manifest.dataset).root
        )
        folder = Path(tempfile.mkdtemp(prefix="dlgrade-hidden-"))
        test_images = folder / "test_images.pt"
        torch.save(images, test_images)
    ctx = ProbeContext(
        ns=namespace,
        workdir=Path(os.getcwd()),
        settings=manifest.probe,
        models=[
            {"key": m.key, "class_name": m.class_name, "args": list(m.args), "weights": m.weights}
            for m in manifest.models
        ],
        mean=manifest.mean,
        std=manifest.std,
        test_images=test_images,
    )
    return ctx, labels


def _only(manifest, names):
    from dataclasses import replace

    return replace(manifest, checks=tuple(c for c in manifest.checks if c.name in names))
