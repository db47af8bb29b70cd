"""Figures of the `cnn_techniques` reference run, drawn by the notebook's own plotting code.

Each figure is what a student's notebook shows, with a title that says which run made it (a
quick run says so).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import torch  # noqa: E402
from torchvision import transforms  # noqa: E402

from solutions.cnn_techniques import config, student  # noqa: E402
from solutions.data import DATASETS, torchvision_dataset  # noqa: E402

CLASSES = DATASETS["fashion_mnist"].classes
# The classes the sheet suggests for activation maximisation: they are shown first.
DREAM_FIRST = ("T-shirt/top", "Trouser", "Ankle boot")


def _save(fig, path: Path, title: str) -> Path:
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def samples(root: Path | None, folder: Path, title: str) -> Path:
    dataset = torchvision_dataset("fashion_mnist", True, root=root)
    fig = student.show_samples(dataset)
    return _save(fig, folder / "samples.png", f"{title}\nthe first training image of each class")


def augmentations(root: Path | None, folder: Path, title: str) -> Path:
    """The training augmentations of the notebook (torchvision, PIL images) on one sample."""
    image = torchvision_dataset("fashion_mnist", True, root=root)[0][0]  # a PIL image
    crop = transforms.RandomCrop(28, padding=config.CROP_PADDING)
    both = transforms.Compose([transforms.RandomHorizontalFlip(p=0.5), crop])
    torch.manual_seed(0)  # the same draws every time
    fig = student.show_augmentations(
        image,
        {
            "horizontal flip": transforms.RandomHorizontalFlip(p=1.0),
            f"random crop, padding {config.CROP_PADDING}": crop,
            "flip (p = 0.5), crop": both,
        },
        draws=4,
    )
    return _save(fig, folder / "augmentations.png", f"{title}\ntraining augmentations")


def learning_curves(curves: dict, folder: Path, title: str) -> list[Path]:
    """Training and test curves of the sheet's four runs, one figure each."""
    shown = {key: curves[key] for key in config.CURVE_RUNS}
    fig_train, fig_test = student.plot_learning_curves(shown)
    return [
        _save(fig_train, folder / "curves_train.png", f"{title}\ntraining set"),
        _save(fig_test, folder / "curves_test.png", f"{title}\ntest set (best epoch kept)"),
    ]


def tsne(analysis, folder: Path, title: str) -> Path:
    fig = student.plot_tsne(analysis.tsne_points, analysis.tsne_labels, CLASSES)
    n = len(analysis.tsne_labels)
    subtitle = f"t-SNE of the fc1 features (128 per image) of the first {n:,} training images"
    return _save(fig, folder / "tsne.png", f"{title}\n{subtitle}, {analysis.run} network")


def per_class_accuracy(matrix) -> list[float]:
    """Accuracy of each true class: the diagonal over the row sums of a confusion matrix."""
    return [float(matrix[c, c] / max(1, matrix[c].sum())) for c in range(len(matrix))]


def dreams(analysis, folder: Path, title: str) -> Path:
    """One activation-maximisation image per class, the sheet's three first, each titled
    with its class's test accuracy and how far the target logit rose."""
    accuracy = per_class_accuracy(analysis.confusion)
    order = [CLASSES.index(n) for n in DREAM_FIRST]
    order += [c for c in range(len(CLASSES)) if c not in order]
    images, titles = [], []
    for c in order:
        image, scores = analysis.dreams[c]
        images.append(image)
        titles.append(
            f"{CLASSES[c]}\ntest accuracy {accuracy[c]:.2f}\nlogit {scores[0]:.1f} -> "
            f"{scores[-1]:.1f}"
        )
    fig = student.show_images(images, titles)
    fig.set_size_inches(20, 3.0)
    subtitle = (
        f"activation maximisation ({config.DREAM_STEPS} gradient-ascent steps from a black "
        f"image), {analysis.run} network"
    )
    return _save(fig, folder / "activation_maximisation.png", f"{title}\n{subtitle}")


def confusion(analysis, folder: Path, title: str) -> Path:
    fig = student.plot_confusion(analysis.confusion, CLASSES)
    subtitle = f"confusion matrix of the test split, {analysis.run} network"
    return _save(fig, folder / "confusion_matrix.png", f"{title}\n{subtitle}")


def draw_all(result, folder: Path, title: str, quick: bool) -> list[Path]:
    """Every figure: samples, augmentations, the two curve figures, t-SNE, dreams, confusion."""
    del quick  # `title` already says whether this is a quick run
    return [
        samples(result.fashion_root, folder, title),
        augmentations(result.fashion_root, folder, title),
        *learning_curves(result.curves, folder, title),
        tsne(result.analysis, folder, title),
        dreams(result.analysis, folder, title),
        confusion(result.analysis, folder, title),
    ]
