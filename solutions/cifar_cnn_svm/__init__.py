"""`cifar_cnn_svm` (sheet 002): a dense network, a CNN and an SVC on CIFAR-10, and what hidden
layers add to logistic regression on a two-dimensional set."""

from pathlib import Path

import numpy as np

from solutions.assignment import Assignment
from solutions.cifar_cnn_svm import config, notebook, reference, student


def handed_out(folder: Path) -> list[Path]:
    """Write the two-dimensional set beside the source notebook (nbgrader copies it into the
    release)."""
    paths = [folder / config.X_FILE, folder / config.Y_FILE]
    for path, array in zip(paths, config.classification_set(), strict=True):
        np.save(path, array)
    return paths


ASSIGNMENT = Assignment(
    id="cifar_cnn_svm",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    figures=reference.figures,
    files=handed_out,
)
