"""`cnn_techniques` (sheet 003): the pytorch/examples MNIST CNN on Fashion-MNIST, augmentation,
batch norm, fine-tuning from MNIST, t-SNE of fc1 features, activation maximisation."""

from solutions.assignment import Assignment
from solutions.cnn_techniques import config, notebook, plots, reference, student


def _training_code():
    model = student.Net()
    optimizer, scheduler = config.RUN.make(model.parameters())
    made = {"optimizer": optimizer, "scheduler": scheduler}
    return [(config.RUN.code("model.parameters()"), model, made)]


ASSIGNMENT = Assignment(
    id="cnn_techniques",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    figures=plots.figures,
    training_code=_training_code,
)
