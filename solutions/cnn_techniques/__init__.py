"""`cnn_techniques` (sheet 003): the pytorch/examples MNIST CNN on Fashion-MNIST, augmentation,
batch norm, fine-tuning from MNIST, t-SNE of fc1 features, activation maximisation."""

from solutions.assignment import Assignment
from solutions.cnn_techniques import notebook, plots, reference, student

ASSIGNMENT = Assignment(
    id="cnn_techniques",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    figures=plots.figures,
)
