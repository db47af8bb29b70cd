"""The reference training loop: whole splits on the device, index batches, a tqdm bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from solutions.data import TensorLoader


@dataclass
class History:
    """Per-epoch training loss, train and test accuracy, and seconds.

    A run with a validation split also fills `val_loss` and `val_accuracy`; one that measures
    the test split only at the end leaves `test_accuracy` empty.
    """

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


@torch.no_grad()
def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000
) -> float:
    """Fraction of correct predictions, in eval mode. images: (N, C, H, W) float."""
    model.eval()
    correct = sum(
        int((model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())
        for i in range(0, len(labels), batch)
    )
    return correct / len(labels)


def train_pass(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: TensorLoader,
    after_batch: Callable[[], object] | None = None,
) -> float:
    """One pass over `loader` with cross-entropy, in training mode; the mean loss per image.
    `after_batch()` is called after each optimiser step (a progress bar's update)."""
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total = total + loss.detach() * len(labels)  # stays on the device: no sync per batch
        count += len(labels)
        if after_batch is not None:
            after_batch()
    return float(total) / count


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    name: str = "model",
    transform=None,
) -> History:
    """Train with cross-entropy; step the scheduler (None: a constant rate) once per epoch, as
    the notebook's fit does. `transform`: applied to each training batch (augmentation)."""
    loader = TensorLoader(
        *train,
        batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        transform=transform,
    )
    history = History()
    bar = tqdm(total=epochs * len(loader), desc=name, unit="batch", leave=False)
    for epoch in range(epochs):
        started = time.perf_counter()
        history.loss.append(train_pass(model, optimizer, loader, bar.update))
        if scheduler is not None:
            scheduler.step()
        history.train_accuracy.append(accuracy(model, *train))
        history.test_accuracy.append(accuracy(model, *test))
        history.seconds.append(time.perf_counter() - started)
        bar.set_postfix(epoch=epoch + 1, test_acc=f"{history.test_accuracy[-1]:.4f}")
    bar.close()
    return history
