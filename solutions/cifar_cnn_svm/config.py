"""Settings of `cifar_cnn_svm` (sheet 002): the notebook's text and the reference training read
them from here, so the two never disagree."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_circles

EPOCHS = 10  # both CIFAR-10 networks, Adam
LR = 1e-3
BATCH_SIZE = 50  # the sheet's DataLoaders
SVC_IMAGES = 10_000  # the first training images the SVC sees
DEEP_EPOCHS = 100
WIDTHS = (2, 4, 8, 16, 32, 64)
TARGET = 0.99
# The handed-out two-dimensional set, written beside the notebook (`files`).
X_FILE, Y_FILE = "X_classification.npy", "y_classification.npy"


def classification_set() -> tuple[np.ndarray, np.ndarray]:
    """X (1000, 2) float32 and y (1000,) int64: two noisy concentric circles, seeded. No line
    separates them; one hidden layer of a few units does."""
    X, y = make_circles(n_samples=1000, noise=0.05, factor=0.5, random_state=0)
    return X.astype(np.float32), y.astype(np.int64)
