"""Reference training of `cifar_cnn_svm`: both CIFAR-10 networks, the SVC and all of part 2.

Without CIFAR-10 (no download) the same code reads a generated stand-in in its format, told from
the real files by torchvision's MD5 sums; the expected answers then mark the CIFAR-10 accuracies
and the SVC figures unmeasured, with what the stand-in gave. Part 2 is always measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch.utils.data import TensorDataset
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from grader.manifest import Manifest
from solutions.cifar_cnn_svm import config, student
from solutions.data import (
    RandomCrop,
    RandomHorizontalFlip,
    downloaded_root,
    load_split,
    normalize,
)
from solutions.expected import Measurement, ModelRun, TrainResult, training_summary
from solutions.plots import learning_curves, save
from solutions.training import fit

QUICK = {"train": 1000, "test": 500, "svc": 300, "deep_epochs": 5}


@dataclass(frozen=True)
class Part2:
    """What the part 2 figures draw: the data, the fitted models, the accuracy per width."""

    X: object
    y: object
    logistic: object
    deep: dict  # width -> trained DeepClassifier
    accuracies: dict  # width -> test accuracy
    smallest: int | None


def cifar10_root(data_root: Path | None) -> tuple[Path, bool, str]:
    """(root, real CIFAR-10?, how that was told): real when every batch file matches the MD5
    sum torchvision publishes for it (`torchvision.datasets.CIFAR10.train_list/test_list`)."""
    root = downloaded_root("cifar10", data_root)
    files = CIFAR10.train_list + CIFAR10.test_list
    if all(check_integrity(str(root / CIFAR10.base_folder / name), md5) for name, md5 in files):
        return root, True, "real CIFAR-10 (published MD5 sums verified)"
    return root, False, "a CIFAR-10-format stand-in (not the published MD5 sums)"


def _augment(mean, std):
    """The sheet's random flip and 4-pixel crop on normalised batches: un-normalised first, so
    the padding is black, as torchvision pads the PIL image."""
    m, s = (torch.tensor(v).view(1, -1, 1, 1) for v in (mean, std))
    flip, crop = RandomHorizontalFlip(), RandomCrop(4)

    def transform(x):
        m_, s_ = m.to(x.device), s.to(x.device)
        return (crop(flip(x * s_ + m_)) - m_) / s_

    return transform


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
) -> TrainResult[Part2]:
    """Train Dense and CNN on CIFAR-10 (augmented, Adam, batches of 50), fit the SVC on the
    first 10,000 training images, then part 2 on CPU. `quick`: 1,000 training and 500 test
    images, one epoch, an SVC on 300 images, 5 epochs per width: every path, no figure."""
    started = time.perf_counter()
    root, real, data = cifar10_root(data_root)
    splits = {}
    for split, is_train in (("train", True), ("test", False)):
        images, labels = load_split("cifar10", is_train, root=root, device=device, verify=real)
        if quick:
            images, labels = images[: QUICK[split]], labels[: QUICK[split]]
        splits[split] = (normalize(images, manifest.mean, manifest.std), labels)

    def unmeasured(what: str, why: str = "") -> Measurement:
        if real:
            return Measurement(True, f"measured on {data}")
        return Measurement(
            False,
            f"no CIFAR-10 where this ran: the data was {data}{why}; the reference reached "
            f"{what} on that data's test split",
        )

    runs, weights = {}, {}
    weights_dir.mkdir(parents=True, exist_ok=True)
    for spec in manifest.models:  # Dense, then CNN
        key = spec.key
        torch.manual_seed(seed)
        model = spec.build(student).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.LR)
        history = fit(
            model,
            optimizer,
            None,
            splits["train"],
            splits["test"],
            name=key,
            seed=seed,
            epochs=1 if quick else config.EPOCHS,
            batch_size=config.BATCH_SIZE,
            transform=_augment(manifest.mean, manifest.std),
        )
        acc = history.test_accuracy[-1]
        loss = "nll" if key == "dense" else "cross_entropy"
        details = {"loss": loss, "augmentation": "flip, crop 4", **training_summary(history)}
        measured = unmeasured(f"{acc:.4f}", ", so the threshold is the manifest's")
        runs[key] = ModelRun(history, acc, "adam", config.LR, config.BATCH_SIZE, measured, details)
        weights[key] = weights_dir / spec.weights
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights[key])

    # The SVC on the first images, normalised as test_transform does: (N, 3072) numpy rows.
    (x_train, y_train), (x_test, y_test) = (
        (x.cpu(), y.cpu()) for x, y in (splits["train"], splits["test"])
    )
    n = min(QUICK["svc"] if quick else config.SVC_IMAGES, len(y_train))
    svc = student.fit_svc(TensorDataset(x_train, y_train), n)
    svc_acc = svc.score(x_test.flatten(1).numpy(), y_test.numpy())
    svc_entry = {"train_images": n, "kernel": "rbf", "test_accuracy": None, "support_vectors": None}
    measured = unmeasured(f"{svc_acc:.4f} with {len(svc.support_)} support vectors")
    if measured.measured:
        svc_entry |= {"test_accuracy": round(svc_acc, 4), "support_vectors": len(svc.support_)}
    svc_entry |= {"measured": measured.measured, "reason": measured.reason}

    part2, part2_entry = _part2(seed, QUICK["deep_epochs"] if quick else config.DEEP_EPOCHS)
    return TrainResult(
        runs,
        weights,
        time.perf_counter() - started,
        provenance={"data": data, "images": {k: len(v[1]) for k, v in splits.items()}},
        answers={"svc": svc_entry, "part2": part2_entry},
        own=part2,
    )


def _part2(seed: int, epochs: int) -> tuple[Part2, dict]:
    """Logistic regression and DeepClassifier(1, width) per width on the handed-out set."""
    X, y = config.classification_set()
    X_train, X_test, y_train, y_test = student.split_data(X, y)
    logistic = student.fit_logistic(X_train, y_train)
    train_split = (torch.from_numpy(X_train), torch.from_numpy(y_train))
    test_split = (torch.from_numpy(X_test), torch.from_numpy(y_test))
    deep, accuracies = {}, {}
    for width in config.WIDTHS:
        model = student.DeepClassifier(n_hidden=1, hidden_dim=width)  # seeds itself (42)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.LR)
        history = fit(
            model,
            optimizer,
            None,
            train_split,
            test_split,
            epochs=epochs,
            batch_size=config.BATCH_SIZE,
            seed=seed,
            name=f"width {width}",
        )
        deep[width], accuracies[width] = model.eval(), history.test_accuracy[-1]
    smallest = student.smallest_width(accuracies, config.TARGET)
    entry = {
        "data": f"{config.X_FILE}, {config.Y_FILE}: {len(y)} points, split 50:50",
        "logistic_regression_accuracy": round(logistic.score(X_test, y_test), 3),
        "deep_classifier_accuracy": {str(w): round(a, 3) for w, a in accuracies.items()},
        "smallest_width_reaching": {"target": config.TARGET, "width": smallest},
        "epochs": epochs,
        "loss": "nll",
        "optimizer": "adam",
        "lr": config.LR,
        "batch_size": config.BATCH_SIZE,
    }
    return Part2(X, y, logistic, deep, accuracies, smallest), entry


def figures(
    manifest: Manifest, result: TrainResult[Part2], folder: Path, title: str, quick: bool
) -> list[Path]:
    """Learning curves of both CIFAR-10 networks; part 2's decision boundaries (logistic
    regression, width 2, the smallest width reaching the target); accuracy against width."""
    if "stand-in" in result.provenance["data"]:
        title += "\non a generated CIFAR-10-format stand-in, not CIFAR-10"
    written = [learning_curves(result.histories, folder / "learning_curves.png", title)]
    part2, note = result.own, " (quick run)" if quick else ""
    acc, logistic = part2.accuracies, result.answers["part2"]["logistic_regression_accuracy"]

    def predict(model):
        return lambda grid: model(torch.from_numpy(grid)).argmax(1).numpy()

    panels = [(part2.logistic.predict, f"logistic regression: {logistic}")] + [
        (predict(part2.deep[w]), f"one hidden layer of width {w}: {acc[w]:.3f}")
        for w in (2, part2.smallest or max(acc))
    ]
    with torch.no_grad():
        fig = Figure(figsize=(13, 4.2))
        for ax, (predicts, label) in zip(fig.subplots(1, 3), panels, strict=True):
            student.plot_boundary(predicts, part2.X, part2.y, ax, label)
        fig.suptitle(f"Decision boundaries and test accuracy{note}")
        fig.tight_layout()
        written.append(save(fig, folder / "decision_boundaries.png"))

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(list(acc), list(acc.values()), marker="o", label="DeepClassifier(1, width)")
    ax.axhline(config.TARGET, color="grey", linestyle=":", label=f"target {config.TARGET}")
    ax.set_xscale("log", base=2)
    ax.set(xticks=list(acc), xticklabels=[str(w) for w in acc], xlabel="hidden width")
    ax.set(ylabel="test accuracy", title=f"Accuracy against width{note}")
    ax.legend()
    fig.tight_layout()
    written.append(save(fig, folder / "width_sweep.png"))
    return written
