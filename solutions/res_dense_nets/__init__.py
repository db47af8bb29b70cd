"""`res_dense_nets` (sheet 000): a residual MLP and a small DenseNet on Fashion-MNIST."""

from pathlib import Path

from solutions.assignment import Assignment
from solutions.res_dense_nets import config, notebook, reference, student


def _training_code():
    for cfg, model in (
        (config.RESMLP, student.ResMLP()),
        (config.DENSENET, student.DenseNet(config.DENSENET_GROWTH_RATE)),
    ):
        optimizer, scheduler = cfg.make(model)
        made = {"optimizer": optimizer, "scheduler": scheduler, "epochs": cfg.epochs}
        yield cfg.code("model"), model, made


ASSIGNMENT = Assignment(
    id="res_dense_nets",
    student=student,
    notebook=notebook.cells,
    train=reference.train,
    alternatives=Path(__file__).with_name("alternatives.py"),
    training_code=_training_code,
)
