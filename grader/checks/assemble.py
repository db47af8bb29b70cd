"""An assignment's check set: the families its manifest names, then its own module's checks.

Kept apart from `grader.spec` (how a check is written), which the families and the own modules
import: assembling them there made an import circle.
"""

from __future__ import annotations

import importlib

from grader.checks.families import FAMILIES
from grader.manifest import Manifest
from grader.spec import CheckSet


def build_checkset(manifest: Manifest) -> CheckSet:
    """Every check of `manifest`: each family registers those whose source names it, the
    assignment's module (`grader/checks/<id>.py`, or a package `<id>/`) its own; both must add
    up to the manifest."""
    checks = CheckSet(manifest.id)
    for family in FAMILIES.values():
        family.register(checks, manifest)
    if any(check.source is None for check in manifest.checks):  # it has checks of its own
        importlib.import_module(f"grader.checks.{manifest.id}").register(checks, manifest)
    checks.validate([c.name for c in manifest.checks])
    return checks
