"""The checks that are `cnn_techniques`' own, one module per part of the sheet (each says what it
judges): `inputs` (make_transforms, parameter_counts), `training` (fit, the handed-in curves,
BatchNormNet's modes, fine-tuning), `analysis` (fc1_features, activation_maximisation,
confusion). The observers run the student's code on models and data of the grader's, made for
this run; the rest comes from the families (manifest)."""

from __future__ import annotations

from grader.checks import kit
from grader.checks.cnn_techniques import analysis, inputs, training

# Observers are registered, and their settings drawn from the run's generator, in this order.
register = kit.register_all(inputs, training, analysis)
