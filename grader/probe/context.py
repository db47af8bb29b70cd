"""What an observer sees: a namespace, the plain manifest, this run's settings and the files.

The same observer runs on the student's namespace (in the probe, or in the student's kernel for
nbgrader's hidden tests) and on the reference solution's (in the trusted parent), with the same
settings and the same typed manifest: `ProbeContext` is all it may use, so both runs see the
same things.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from grader.probe.packages import Absent, missing_module

if TYPE_CHECKING:
    from grader.checks.families.modules import ModuleEntry
    from grader.manifest import Manifest


# Where the probe writes its stack shortly before a time limit (grader.probe.run.StackWatch).
STACK_FILE = "stack.txt"

_NAME_ERROR = re.compile(r"NameError: name '(\w+)' is not defined")


class MissingDefinition(Exception):
    """A name the check needs is not defined by the submission."""


@dataclass(frozen=True)
class CellOutcome:
    """How one code cell of the submission went in the probe."""

    index: int  # among the cells the probe was given
    source: str
    status: str  # "ok", "error", "skipped"
    message: str = ""
    number: int = 0  # position in the student's notebook, counting every cell from 1


@dataclass(frozen=True)
class ProbeContext:
    """Everything an observer may use. Built by the probe runner, a hidden test cell, or the
    parent for the reference run."""

    ns: Mapping[str, Any]
    manifest: Manifest
    settings: Mapping[str, Any] = field(default_factory=dict)  # this observer's, this run's
    workdir: Path = Path(".")
    weights_dir: Path | None = None  # read-only copies of the submitted weights and files
    test_images: Path | None = None  # uint8 (N, C, H, W), in an order only the parent knows
    weights_problems: Mapping[str, str] = field(default_factory=dict)
    cells: tuple[CellOutcome, ...] = ()

    def with_settings(self, settings: Mapping[str, Any]) -> ProbeContext:
        return replace(self, settings=settings)

    def get(self, name: str) -> Any:
        """The object called `name`, or a MissingDefinition that says why it is absent. A
        stand-in for a module nobody has (`from dense_layers import DenseBlock`, the file left
        on Drive) is absent too: "it gave a Absent, not an nn.Module" named nothing (blind
        round 11b)."""
        if isinstance(self.ns.get(name), Absent):
            module = missing_module(self.ns[name])
            raise MissingDefinition(
                f"{name} is not defined: it is imported from {module}, which the grading machine"
                f" could not load (not installed there nor handed in as {module}.py beside the"
                " notebook, or needing a package that is not installed)"
            )
        if name in self.ns:
            return self.ns[name]
        raise MissingDefinition(f"{name} is not defined{self._why_missing(name)}")

    def submitted(self, name: str) -> Path:
        """The submitted file `name` as handed in: its read-only copy, else the working
        folder's. Student code a check runs may rewrite the working folder's (blind 19 mlp s30:
        run_search wrote final_config.json, and the grader's small search replaced the
        submitted configuration: 33/40)."""
        copy = self.weights_dir / name if self.weights_dir is not None else None
        return copy if copy is not None and copy.is_file() else self.workdir / name

    def module(self, name: str) -> ModuleEntry:
        """The manifest's [[modules]] entry called `name`."""
        return self.manifest.module(name)

    def _why_missing(self, name: str, depth: int = 0) -> str:
        """Which cell should have defined `name` and what stopped it; where that was a name
        missing in its turn (a failed data cell, say), why that one is missing too."""
        # `def name`, `class name`, `name = ...`, `a, name = ...` (tuple targets) and imports
        # (`from torch import nn`: an imports cell that failed on an earlier line, a package
        # the grading machine lacks, left every name after it undefined).
        target = rf"(?:[\w.]+\s*,\s*)*{re.escape(name)}\s*(?:,\s*[\w.]+\s*)*=(?!=)"
        imported = rf"(?:from\s+[\w.]+\s+)?import\s[^\n#]*\b{re.escape(name)}\b"
        pattern = re.compile(
            rf"^\s*(?:(?:class|def)\s+{re.escape(name)}\b|{target}|{imported})", re.M
        )
        for cell in self.cells:
            if cell.status != "ok" and pattern.search(cell.source):
                where = f"cell {cell.number}" if cell.number else "the cell"
                why = f" ({where}, which defines it, {cell.status}: {cell.message})"
                found = _NAME_ERROR.match(cell.message)
                if found and depth < 3 and found[1] != name and found[1] not in self.ns:
                    why = (
                        why[:-1]
                        + f"; {found[1]} is not defined{self._why_missing(found[1], depth + 1)})"
                    )
                return why
        if self.cells and not any(pattern.search(c.source) for c in self.cells):
            return " (no code cell of the notebook defines it)"
        return ""

    def test_batches(self, batch_size: int = 500):
        """The grader's test images, normalised per the manifest: (B, C, H, W) float32 batches."""
        if self.test_images is None:
            raise MissingDefinition("no test images were provided to the probe")
        images = torch.load(self.test_images, weights_only=True)  # uint8 (N, C, H, W)
        mean = torch.tensor(self.manifest.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.manifest.std).view(1, -1, 1, 1)
        for start in range(0, len(images), batch_size):
            yield (images[start : start + batch_size].float() / 255 - mean) / std
