"""Figures of the `cnn_techniques` reference run, drawn by the notebook's own plotting code,
each titled with the run that made it (a quick run says so)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import torch  # noqa: E402

from solutions.cnn_techniques import config, student  # noqa: E402
from solutions.data import DATASETS, torchvision_dataset  # noqa: E402
from solutions.plots import save  # noqa: E402

CLASSES = DATASETS["fashion_mnist"].classes
# The classes the sheet suggests for activation maximisation: they are shown first.
DREAM_FIRST = ("T-shirt/top", "Trouser", "Ankle boot")
NETWORK = f"{config.ANALYSED_RUN} network"


def _save(fig, path: Path, title: str) -> Path:
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
    return path


def dreams(analysis) -> plt.Figure:
    """One activation-maximisation image per class, the sheet's three first, each titled
    with its class's test accuracy (the confusion matrix's diagonal over its row sums) and how
    far the target logit rose."""
    matrix = analysis.confusion
    order = [CLASSES.index(n) for n in DREAM_FIRST]
    order += [c for c in range(len(CLASSES)) if c not in order]
    images, titles = [], []
    for c in order:
        image, scores = analysis.dreams[c]
        images.append(image)
        accuracy = matrix[c, c] / max(1, matrix[c].sum())
        titles.append(
            f"{CLASSES[c]}\ntest accuracy {accuracy:.2f}\nlogit {scores[0]:.1f} -> {scores[-1]:.1f}"
        )
    fig = student.show_images(images, titles)
    fig.set_size_inches(20, 3.0)
    return fig


def figures(manifest, result, folder: Path, title: str, quick: bool) -> list[Path]:
    """Every figure: samples, augmentations, the two curve figures, t-SNE, dreams, confusion."""
    analysis = result.own
    dataset = torchvision_dataset("fashion_mnist", True, root=analysis.fashion_root)
    train, test = student.plot_learning_curves({k: analysis.curves[k] for k in config.CURVE_RUNS})
    n = len(analysis.tsne_labels)
    torch.manual_seed(0)  # the same augmentations every time
    steps = len(analysis.dreams[0][1]) - 1
    first = dataset[0][0]  # the first training image, a PIL image
    drawn = {
        "samples": (student.show_samples(dataset), "the first training image of each class"),
        "augmentations": (student.show_augmentations(first, draws=4), "training augmentations"),
        "curves_train": (train, "training set"),
        "curves_test": (test, "test set (best epoch kept)"),
        "tsne": (
            student.plot_tsne(analysis.tsne_points, analysis.tsne_labels, CLASSES),
            f"t-SNE of the fc1 features (128 per image) of the first {n:,} training images, "
            f"{NETWORK}",
        ),
        "activation_maximisation": (
            dreams(analysis),
            f"activation maximisation ({steps} gradient-ascent steps from a black image), "
            f"{NETWORK}",
        ),
        "confusion_matrix": (
            student.plot_confusion(analysis.confusion, CLASSES),
            f"confusion matrix of the test split, {NETWORK}",
        ),
    }
    return [
        _save(fig, folder / f"{name}.png", f"{title}\n{sub}") for name, (fig, sub) in drawn.items()
    ]
