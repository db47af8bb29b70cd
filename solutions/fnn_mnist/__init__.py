"""`fnn_mnist` (sheet 004): dense layers, FNNs, a network trainer and a network user on MNIST."""

from torch import nn

from solutions.assignment import Assignment
from solutions.fnn_mnist import config, notebook, reference, student


def _training_code():
    model, cfg = student.FNN(), config.RUN
    made = {"optimizer": cfg.make(model), "criterion": nn.CrossEntropyLoss(), "epochs": cfg.epochs}
    return [(cfg.code("model"), model, made)]


ASSIGNMENT = Assignment(
    id="fnn_mnist",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    figures=reference.figures,
    training_code=_training_code,
)
