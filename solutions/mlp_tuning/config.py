"""Settings of the `mlp_tuning` reference search and final training.

The search space and the stages are the notebook's own (`student.SEARCH_SPACE`, `STAGES`), so
the reference searches exactly what students search; only the budget and the data path differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from solutions.mlp_tuning.student import STAGES

# make_transforms' augmentation parameters (student.py), for the reference's batched tensors.
ROTATION_DEGREES = 10.0
CROP_SCALE = (0.7, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)

VALIDATION_SIZE = 5000  # the sheet's 55,000 / 5,000 split of the 60,000 training images
SPLIT_SEED = 0


@dataclass(frozen=True)
class SearchBudget:
    """How much searching one run does: trials in all, stages, and how much data."""

    n_trials: int
    stages: tuple[dict, ...]
    train_images: int | None = None  # None: the whole training split
    validation_size: int = VALIDATION_SIZE


# The real reference search, on 2 CPU cores with 2 workers (wall time: benchmarks/README.md).
FULL = SearchBudget(n_trials=90, stages=STAGES)

# --quick: every code path on a few thousand images (the fixtures or a slice of the real data).
QUICK = SearchBudget(
    n_trials=6,
    stages=(
        {"share": 0.5, "epochs": 1, "reports": 2, "keep": 2},
        {"share": 0.5, "epochs": 2, "reports": 1, "keep": 0},
    ),
    train_images=1500,
    validation_size=300,
)
