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
import random
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

from grader.checks.common import describe_error
from grader.grade import prepare_inputs
from grader.judge import Accepted, JudgeContext, judge, load_expected
from grader.observations import decode, encode
from grader.probe.context import ProbeContext
from grader.reference import observe as observe_reference
from grader.reference import references
from grader.spec import build_checkset
from solutions.manifest import load_manifest


def _needed(manifest, names: list[str]) -> list[str]:
    """`names` and, transitively, the checks they build on (`after`)."""
    needed, todo = [], list(names)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.append(name)
            todo += list(manifest.check(name).after)
    return [c.name for c in manifest.checks if c.name in needed]


def grade_cell(assignment: str, cell: str, namespace: dict | None = None) -> float:
    """Points earned by the checks of `cell`, judged on this kernel's namespace."""
    manifest = load_manifest(assignment)
    plain = manifest.to_plain()
    checkset = build_checkset(plain)
    names = [c.name for c in manifest.cells()[cell]]
    needed = _needed(manifest, names)
    observers = checkset.observers_for(needed)
    settings = checkset.draw(random.Random(), plain, observers)
    namespace = namespace if namespace is not None else _kernel_namespace()
    with tempfile.TemporaryDirectory(prefix="dlgrade-hidden-") as tmp:
        inputs = (
            prepare_inputs(manifest, Path(tmp), fonts=False) if "predictions" in observers else None
        )
        ctx = ProbeContext(
            ns=namespace,
            manifest=plain,
            workdir=Path(os.getcwd()),
            weights_dir=Path(os.getcwd()),
            test_images=inputs.images_file if inputs else None,
        )
        observations = {}
        # A warning on stderr would make nbgrader give the cell 0: keep them, and prints, quiet.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            for name in observers:
                try:
                    result = checkset.observers[name].observe(ctx.with_settings(settings[name]))
                    observations[name] = decode(*encode(result))
                except Exception as err:  # noqa: BLE001 - scored 0 with the reason
                    observations[name] = {"__error__": describe_error(err, 500)}
            solutions = references(manifest)
            observed = observe_reference(checkset, manifest, settings, solutions)
        accepted = [
            Accepted(r.name, r.description, o) for r, o in zip(solutions, observed, strict=True)
        ]
        judge_ctx = JudgeContext(
            manifest,
            load_expected(assignment),
            labels=inputs.labels if inputs else None,
            no_test_split=inputs.missing if inputs else "",
            test_split=inputs.split_name if inputs and inputs.stand_ins else "",
        )
        subset = replace(manifest, checks=tuple(c for c in manifest.checks if c.name in needed))
        results = judge(checkset, subset, observations, accepted, judge_ctx, settings)
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
