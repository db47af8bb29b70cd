"""Check families: what every assignment needs, written once and configured by the manifest.

- `modules`: build the student's classes with drawn arguments; output shapes, parameter shapes
  and counts, logits rather than probabilities, and `behaviour` (outputs under parameter values
  chosen from each parameter's shape alone, compared with the reference's).
- `loops`: the training and evaluation code: modes, gradients, zero_grad, mean loss, accuracy
  arithmetic, whatever the calling convention (epoch functions or a trainer class).
- `devices`: device placement, checked on a CPU-only machine with the meta device.
- `accuracy`: the submitted weights, rebuilt in the student's classes, on the real test split.
- `answers`: numbers that answer the sheet's questions.

Each `register(checks, manifest)` adds observers under explicit names ("module:<name>",
"loops", ...) and the checks the manifest names for it; the manifest arrives as plain data
(`Manifest.to_plain()`), since the probe cannot import `solutions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grader.checks.families import accuracy, answers, devices, loops, modules
from grader.spec import CheckSet


def register(checks: CheckSet, manifest: Mapping[str, Any]) -> None:
    """Every family the manifest configures, in report-friendly order."""
    for module in manifest["modules"]:
        modules.register(checks, module)
    if manifest["loops"]:
        loops.register(checks, manifest["loops"])
        devices.register(checks, manifest["loops"])
    if manifest["accuracy_checks"]:
        accuracy.register(checks, manifest["accuracy_checks"])
    if manifest["answers"]:
        answers.register(checks, manifest["answers"])
