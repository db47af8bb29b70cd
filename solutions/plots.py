"""Figures for people: learning curves of the reference runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402 - the backend must be chosen first
from matplotlib.ticker import MaxNLocator  # noqa: E402

from solutions.training import History  # noqa: E402

# Up to this many epochs every point gets a marker: a one-epoch curve is then a dot, not blank.
MARKED_EPOCHS = 15


def run_title(title: str, histories: dict[str, History], quick: bool) -> str:
    """The figure title: says "(reference)", or that a quick run is not the reference."""
    if not quick:
        return f"{title} (reference)"
    epochs = max((len(h.loss) for h in histories.values()), default=0)
    return (
        f"{title}\n(quick run: {epochs} epoch{'s' if epochs != 1 else ''} on a subset, "
        "not the reference)"
    )


def learning_curves_figure(histories: dict[str, History], title: str) -> Figure:
    """Loss and accuracy per epoch, one colour per model.

    Loss: training solid, validation dotted; accuracy: test solid, validation dotted, training
    dashed. A series is drawn when the history has one value per epoch of it.
    """
    fig = Figure(figsize=(10, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    colours = matplotlib.colormaps["tab10"].colors
    for (name, h), colour in zip(histories.items(), colours, strict=False):
        epochs = range(1, len(h.loss) + 1)
        marked = len(h.loss) <= MARKED_EPOCHS
        test = {"color": colour, "marker": "o" if marked else None}
        train = {**test, "marker": "s" if marked else None, "markerfacecolor": "none"}
        ax_loss.plot(epochs, h.loss, label=name, **test)
        if len(h.val_loss) == len(h.loss):
            ax_loss.plot(epochs, h.val_loss, linestyle=":", label=f"{name} val", **test)
        if len(h.test_accuracy) == len(h.loss):
            ax_acc.plot(epochs, h.test_accuracy, label=f"{name} test", **test)
        if len(h.val_accuracy) == len(h.loss):
            ax_acc.plot(epochs, h.val_accuracy, linestyle=":", label=f"{name} val", **test)
        ax_acc.plot(epochs, h.train_accuracy, linestyle="--", label=f"{name} train", **train)
    ax_loss.set(xlabel="epoch", ylabel="loss (cross-entropy)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    most = max((len(h.loss) for h in histories.values()), default=1)
    for ax in (ax_loss, ax_acc):
        if most <= MARKED_EPOCHS:
            ax.set_xticks(range(1, most + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 1.5"
        ax.set_xlim(0.5, most + 0.5)  # one epoch: a point in the middle, not on an edge
    ax_loss.legend()
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path) -> Path:
    """`fig` saved as a PNG file at `path` (120 dpi), its folder made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def learning_curves(histories: dict[str, History], path: Path, title: str) -> Path:
    """`learning_curves_figure` saved as a PNG file at `path`."""
    return save(learning_curves_figure(histories, title), path)
