"""`fnn_mnist` (sheet 004): dense layers, FNNs, a network trainer and a network user on MNIST."""

from solutions.assignment import Assignment
from solutions.fnn_mnist import notebook, reference, student

ASSIGNMENT = Assignment(
    id="fnn_mnist",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    figures=reference.figures,
)
