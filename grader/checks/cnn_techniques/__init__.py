"""The checks that are `cnn_techniques`' own; the networks' shapes, parameters and behaviour,
the training and evaluation functions, device placement and accuracy come from the families
(manifest). One module per part of the sheet, each declaring its observers and checks in its
own `OWN`, each probing the student's code on models and data the grader makes for this run:
- `inputs`: `make_transforms` (flip and padded crop for training only) and `parameter_counts`;
- `training`: `fit` keeps its best epoch, the submitted curves, `BatchNormNet`'s two modes,
  fine-tuning (what trains, what the optimiser holds, the submitted weights against MNIST's);
- `analysis`: `fc1_features`, `activation_maximisation`, `confusion`.
"""

from __future__ import annotations

from grader.checks.cnn_techniques import analysis, inputs, training
from grader.spec import CheckSet

# Observers are registered, and their settings drawn from the run's generator, in this order.
PARTS = (inputs, training, analysis)


def register(checks: CheckSet, manifest=None) -> None:
    """Every part's observers and checks."""
    for part in PARTS:
        part.OWN.register(checks, manifest)
