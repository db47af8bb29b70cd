"""`res_dense_nets` (sheet 000): a residual MLP and a small DenseNet on Fashion-MNIST."""

from pathlib import Path

from solutions.assignment import Assignment
from solutions.res_dense_nets import notebook, reference, student

ASSIGNMENT = Assignment(
    id="res_dense_nets",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    alternatives=Path(__file__).with_name("alternatives.py"),
)
