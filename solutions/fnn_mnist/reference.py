"""Reference training of `fnn_mnist`: the two submitted models (FNN without and with batch norm)
trained by the reference `NetworkTrainer` on tensor batches of MNIST, split and normalised as the
grader evaluates. Without MNIST (no download here) the same code runs on the generated
MNIST-format fixture, and each run says that its accuracy was not measured on real MNIST."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from grader.manifest import Manifest
from solutions.data import TensorLoader, load_split, normalize
from solutions.data.mnist import MnistSource, find_mnist
from solutions.expected import Measurement, ModelRun, TrainResult
from solutions.fnn_mnist import config, student
from solutions.plots import learning_curves, save
from solutions.training import History, accuracy

SAMPLE = 8  # images shown in the predictions figure


@dataclass(frozen=True)
class Sample:
    """A few test images for the predictions figure, and what data they come from."""

    images: torch.Tensor  # (SAMPLE, 784), normalised
    labels: torch.Tensor  # (SAMPLE,)
    data: str  # "real MNIST" or the stand-in's description


def measurement(source: MnistSource, acc: float) -> Measurement:
    """Whether `acc` measures real MNIST, and how that was told."""
    if source.real:
        return Measurement(True, f"measured on real MNIST ({source.evidence})")
    return Measurement(
        False,
        f"no real MNIST where this ran: the data was a {source.description} "
        f"({source.evidence}), so the threshold is the manifest's; the reference "
        f"reached {acc:.4f} on that data's test split",
    )


def split_indices(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices of n training images: the notebook's seeded split.

    `make_loaders(..., seed=seed)` keeps the first `validation_size` images of the same
    permutation for validation.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = config.validation_size(n)
    return order[n_val:], order[:n_val]


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
) -> TrainResult[Sample]:
    """Train both models with the reference NetworkTrainer; save weights; test accuracy.

    Images are normalised with the manifest's mean and standard deviation and flattened to
    (N, 784), as the grader feeds them. `quick` trains one epoch on 2,000 images, validates on
    500 and tests on 1,000: every code path, none of the accuracy.
    """
    started = time.perf_counter()
    source = find_mnist(data_root)
    images, labels = {}, {}
    for split, is_train in (("train", True), ("test", False)):
        x, y = load_split("mnist", is_train, root=source.root, device=device)
        images[split] = normalize(x, manifest.mean, manifest.std).flatten(1)  # (N, 784)
        labels[split] = y
    train_idx, val_idx = (i.to(device) for i in split_indices(len(labels["train"]), seed))
    n_test = len(labels["test"])
    if quick:  # the docstring's sizes
        train_idx, val_idx, n_test = train_idx[:2000], val_idx[:500], min(n_test, 1000)
    splits = {
        "train": (images["train"][train_idx], labels["train"][train_idx]),
        "val": (images["train"][val_idx], labels["train"][val_idx]),
        "test": (images["test"][:n_test], labels["test"][:n_test]),
    }
    runs, weights = {}, {}
    weights_dir.mkdir(parents=True, exist_ok=True)
    cfg = config.RUN
    for spec in manifest.models:  # FNN, then FNN with batch norm
        key = spec.key
        torch.manual_seed(seed)
        model = spec.build(student)
        student.init_weights(model)
        model.to(device)
        trainer = student.NetworkTrainer(
            model,
            TensorLoader(
                *splits["train"],
                cfg.batch_size,
                shuffle=True,
                generator=torch.Generator().manual_seed(seed),
            ),
            TensorLoader(*splits["val"], 1000),
            nn.CrossEntropyLoss(),
            cfg.make(model),
            device,
        )
        print(f"{key}:", flush=True)  # the trainer's own epoch lines follow, unnamed
        history = _fit(trainer, 1 if quick else cfg.epochs)
        acc = accuracy(model, *splits["test"])
        runs[key] = ModelRun(
            history, acc, cfg.optimizer, cfg.lr, cfg.batch_size, measurement(source, acc)
        )
        weights[key] = weights_dir / spec.weights
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights[key])
    return TrainResult(
        runs,
        weights,
        time.perf_counter() - started,
        provenance={
            "data": source.description,
            "data_evidence": source.evidence,
            "images": {name: len(split[1]) for name, split in splits.items()},
        },
        own=Sample(
            splits["test"][0][:SAMPLE].cpu(), splits["test"][1][:SAMPLE].cpu(), source.description
        ),
    )


def _fit(trainer: student.NetworkTrainer, epochs: int) -> History:
    """The trainer's own `train_network` (the notebook's training cells call it), as a History."""
    curves = trainer.train_network(epochs)
    return History(
        loss=curves["train_loss"],
        train_accuracy=curves["train_accuracy"],
        val_loss=curves["val_loss"],
        val_accuracy=curves["val_accuracy"],
    )


def figures(
    manifest: Manifest, result: TrainResult[Sample], folder: Path, title: str, quick: bool
) -> list[Path]:
    """The learning curves, and the predictions figure: the saved FNN, loaded by a
    NetworkUser, on a few test images."""
    curves = learning_curves(result.histories, folder / "learning_curves.png", title)
    spec = manifest.model("fnn")
    user = student.NetworkUser(spec.build(student), "cpu")
    user.load(result.weights["fnn"])
    fig = user.show_predictions(result.own.images, result.own.labels, n=SAMPLE)
    fig.suptitle(f"FNN predictions on {result.own.data}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.86))  # room for the title above the panels' own
    path = save(fig, folder / "predictions.png")
    plt.close(fig)
    return [curves, path]
