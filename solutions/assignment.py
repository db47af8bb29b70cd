"""What an assignment is to the reference package: the `Assignment` record.

Each `solutions/<id>/__init__.py` declares one (`ASSIGNMENT`), and `solutions/registry.py`
lists them all; `python -m solutions` finds everything of an assignment there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

import torch

from grader.manifest import Manifest
from solutions.expected import TrainResult
from solutions.notebook_builder import Cell
from solutions.plots import learning_curves


class Train(Protocol):
    def __call__(
        self,
        manifest: Manifest,
        device: torch.device,
        seed: int,
        weights_dir: Path,
        *,
        quick: bool = False,
        data_root: Path | None = None,
    ) -> TrainResult:
        """Train the reference models, save the files a student hands in into `weights_dir`.

        `quick`: every code path on a few images, none of the accuracy. `data_root`: where the
        data sets are (None: found by the usual rules).
        """


# (manifest, result, folder, title, quick) -> the figures written into `folder`
Figures = Callable[[Manifest, TrainResult, Path, str, bool], list[Path]]


def learning_curve_figures(
    manifest: Manifest, result: TrainResult, folder: Path, title: str, quick: bool
) -> list[Path]:
    """The figures of an assignment without its own: every model's learning curves."""
    return [learning_curves(result.histories, folder / "learning_curves.png", title)]


@dataclass(frozen=True)
class Assignment:
    """One assignment: its solution cells, notebook, reference training, figures, search."""

    id: str
    student: ModuleType  # student.py: the code of every solution cell, `# %% cell:` chunks
    notebook: Callable[[Manifest], list[Cell]]  # the source notebook's cells, in order
    train: Train
    figures: Figures = learning_curve_figures
    search: Callable[[argparse.Namespace], int] | None = None  # `python -m solutions search`
    alternatives: Path | None = None  # other accepted readings of the instructions
    # Writes the files handed out beside the notebook into a folder (source/<id>/); their paths.
    files: Callable[[Path], list[Path]] | None = None
    # The hyper-parameter code of the notebook's training cells, each as (the code, a model it
    # sets up as `model`, variable -> what the reference trains with): tests/solutions/
    # test_registry.py runs the code in student.py's namespace and compares.
    training_code: Callable[[], Iterable[tuple[str, torch.nn.Module, dict]]] | None = None

    @property
    def student_file(self) -> Path:
        return Path(self.student.__file__)
