"""Figures for people: learning curves of the reference runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from solutions.training import History  # noqa: E402


def learning_curves(histories: dict[str, History], path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, one colour per model.

    Loss: training solid, validation dotted; accuracy: test solid, validation dotted, training
    dashed. A series is drawn when the history has one value per epoch of it.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (name, h), colour in zip(histories.items(), plt.cm.tab10.colors, strict=False):
        epochs = range(1, len(h.loss) + 1)
        ax_loss.plot(epochs, h.loss, color=colour, label=name)
        if len(h.val_loss) == len(h.loss):
            ax_loss.plot(epochs, h.val_loss, color=colour, linestyle=":", label=f"{name} val")
        if len(h.test_accuracy) == len(h.loss):
            ax_acc.plot(epochs, h.test_accuracy, color=colour, label=f"{name} test")
        if len(h.val_accuracy) == len(h.loss):
            ax_acc.plot(epochs, h.val_accuracy, color=colour, linestyle=":", label=f"{name} val")
        ax_acc.plot(epochs, h.train_accuracy, color=colour, linestyle="--", label=f"{name} train")
    ax_loss.set(xlabel="epoch", ylabel="loss (cross-entropy)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    ax_loss.legend()
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
