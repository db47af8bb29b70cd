"""Reference training and expected answers of `cnn_techniques`, computed, never typed.

`train` runs the notebook's own code (`student.fit`, `train_epoch`, `evaluate`, the networks,
`finetuning_setup`) on the tensor path: whole splits on the device, batches by index
(`TensorLoader`), the training augmentations applied to whole batches. Without MNIST (no download
here) the pretraining runs on the generated MNIST-format fixture, and the expected answers mark
the MNIST and fine-tuned accuracies unmeasured, with the reason, and take their thresholds from
the manifest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grader.manifest import Manifest
from solutions.cnn_techniques import config, student
from solutions.data import (
    DATASETS,
    FIXTURE_SIZES,
    Compose,
    DataNotFoundError,
    RandomCrop,
    RandomHorizontalFlip,
    TensorLoader,
    load_split,
    normalize,
    resolve_root,
    write_mnist_like,
)
from solutions.data.mnist import MnistSource, describe_mnist, find_mnist
from solutions.data.roots import cache_dir
from solutions.expected import Measurement, ModelRun, TrainResult
from solutions.training import History

FASHION = DATASETS["fashion_mnist"]
PRETRAINED = ("mnist", "finetuned")  # runs whose result depends on real MNIST
HISTORIES_FILE = "histories.json"
QUICK_SIZES = (1000, 500)  # `quick`: training and test images per data set
QUICK_TSNE = 300  # `quick`: images for t-SNE


@dataclass(frozen=True)
class Analysis:
    """What the figures draw besides the histories, for the analysed network."""

    curves: dict[str, dict]  # what `student.fit` returned, per run
    tsne_points: np.ndarray  # (n, 2)
    tsne_labels: torch.Tensor  # (n,)
    dreams: dict[int, tuple[torch.Tensor, list[float]]]  # class -> (image, target logits)
    confusion: np.ndarray  # (10, 10), rows: true class
    fashion_root: Path | None = None  # None: the root `resolve_root` finds


def mnist_source(data_root: Path | None) -> MnistSource:
    """Real MNIST where it can be had (`data_root`, or found or downloaded by the usual rules);
    otherwise the generated fixture, written once into the data cache (seed 0, the sizes
    `python -m solutions data --fixtures` writes)."""
    try:
        return find_mnist(data_root)
    except DataNotFoundError as err:
        root = cache_dir() / "fixtures"
        n_train, n_test = FIXTURE_SIZES["mnist"]
        write_mnist_like(root, "mnist", n_train=n_train, n_test=n_test, seed=0)
        reason = str(err).splitlines()[0]
        print(f"MNIST not found ({reason}); pretraining on the generated fixture in {root}")
        return describe_mnist(root)


def _splits(dataset: str, root: Path | None, device: torch.device, quick: bool) -> dict:
    """{"train": (x, y), "test": (x, y)}: normalised float (N, 1, 28, 28) images, labels."""
    info, splits = DATASETS[dataset], {}
    for split, size in zip(("train", "test"), QUICK_SIZES, strict=True):
        x, y = load_split(dataset, split == "train", root=root, device=device)
        n = size if quick else len(y)
        splits[split] = (normalize(x, info.mean, info.std)[:n], y[:n])
    return splits


def augmentation() -> Compose:
    """The notebook's training augmentation on whole normalised batches: flip with p = 0.5,
    then a random crop of the image padded with black (normalised: (0 - mean) / std)."""
    black = (0.0 - FASHION.mean[0]) / FASHION.std[0]
    return Compose([RandomHorizontalFlip(0.5), RandomCrop(config.CROP_PADDING, fill=black)])


def _fit(key, model, optimizer, scheduler, splits, device, seed, epochs, transform=None):
    """`student.fit` on tensor batches for `epochs`; returns (curves, seconds per epoch)."""
    generator = torch.Generator().manual_seed(seed)
    train = TensorLoader(
        *splits["train"],
        config.RUN.batch_size,
        shuffle=True,
        generator=generator,
        transform=transform,
    )
    test = TensorLoader(*splits["test"], 1000)
    print(f"{key}: {epochs} epochs on {len(splits['train'][1])} images", flush=True)
    started = time.perf_counter()
    curves = student.fit(model, optimizer, train, test, epochs, device, scheduler)
    return curves, (time.perf_counter() - started) / epochs


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
    epochs: int | None = None,
) -> TrainResult:
    """Train the five runs, save each best epoch's weights and the curves; analyse the baseline.

    `data_root` holds both data sets (tests: the fixtures); None finds each by the usual rules.
    `quick` trains one epoch on 1,000 images, tests on 500 and embeds 300: every code path,
    none of the accuracy. `epochs`: fewer epochs than the sheet's (a machine too slow for the
    full run); such a run, like a quick one, writes no measured threshold: each entry is marked
    unmeasured with the reason, and its threshold is the manifest's.
    """
    started = time.perf_counter()
    n_epochs = 1 if quick else epochs or config.EPOCHS
    short = ""
    if n_epochs < config.EPOCHS:
        what = "a quick run on a few images" if quick else "a short run"
        short = f"{what}, {n_epochs} of the sheet's {config.EPOCHS} epochs per run"
    source = mnist_source(data_root)
    data = {
        "fashion_mnist": _splits("fashion_mnist", data_root, device, quick),
        "mnist": _splits("mnist", source.root, device, quick),
    }
    weights_dir.mkdir(parents=True, exist_ok=True)
    curves, per_epoch, models, weights = {}, {}, {}, {}
    for spec in manifest.models:  # baseline, augmented, batchnorm, mnist, finetuned
        torch.manual_seed(seed)
        if spec.key == "finetuned":
            mnist_state = {k: v.cpu() for k, v in models["mnist"].state_dict().items()}
            model, optimizer = student.finetuning_setup(mnist_state, config.RUN.lr)
            model.to(device)  # moves the parameters in place: the optimiser keeps them
            optimizer, scheduler = config.RUN.scheduled(optimizer)
        else:
            model = spec.build(student).to(device)
            optimizer, scheduler = config.RUN.make(model.parameters())
        splits = data["mnist" if spec.key == "mnist" else "fashion_mnist"]
        transform = augmentation() if spec.key == "augmented" else None
        curves[spec.key], per_epoch[spec.key] = _fit(
            spec.key, model, optimizer, scheduler, splits, device, seed, n_epochs, transform
        )
        models[spec.key], weights[spec.key] = model, weights_dir / spec.weights
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights[spec.key])
    weights["histories"] = weights_dir / HISTORIES_FILE
    weights["histories"].write_text(json.dumps(curves, indent=1) + "\n")
    fashion = data["fashion_mnist"]
    return TrainResult(
        runs={key: _run(key, c, per_epoch[key], source, short) for key, c in curves.items()},
        weights=weights,
        seconds=time.perf_counter() - started,
        provenance={
            "fashion_mnist": _describe_fashion(data_root),
            "mnist": source.description,
            "mnist_evidence": source.evidence,
            "images": {name: [len(s["train"][1]), len(s["test"][1])] for name, s in data.items()},
            "threads": torch.get_num_threads(),
        },
        own=analyse(models[config.ANALYSED_RUN], fashion, device, quick, curves, data_root),
    )


def _run(key: str, curves: dict, seconds_per_epoch: float, source: MnistSource, short: str):
    """One run's `ModelRun`: its best epoch, and whether it measures what the sheet asks
    (`short`: why the run is shorter than the sheet's, or "")."""
    acc = curves["best_accuracy"]
    why = [short] if short else []
    if key in PRETRAINED and not source.real:
        why.append(
            f"no real MNIST where this ran: pretrained on a {source.description} "
            f"({source.evidence})"
        )
    on = "that data's test split" if key == "mnist" else "the Fashion-MNIST test split"
    measurement = None
    if why:
        measurement = Measurement(
            False,
            f"{'; '.join(why)}: the reference reached {acc:.4f} on {on}, which does not "
            "measure the sheet's training, so the threshold is the manifest's",
        )
    elif key in PRETRAINED:
        measurement = Measurement(True, f"pretrained on real MNIST ({source.evidence})")
    details = {
        "best_epoch": curves["best_epoch"],
        "data": "MNIST test split" if key == "mnist" else "Fashion-MNIST test split",
        "scheduler": config.RUN.scheduler,
        "seconds_per_epoch": round(seconds_per_epoch, 1),
        "test_accuracy_per_epoch": [round(a, 4) for a in curves["test_accuracy"]],
    }
    history = History(curves["train_loss"], curves["train_accuracy"], curves["test_accuracy"])
    cfg = config.RUN
    return ModelRun(history, acc, "adadelta", cfg.lr, cfg.batch_size, measurement, details)


def _describe_fashion(data_root: Path | None) -> str:
    if data_root is not None:
        return f"given root {data_root}"
    found = resolve_root("fashion_mnist")
    return f"{found.root} (found via {found.source})"


def analyse(model, fashion: dict, device, quick: bool, curves: dict, root: Path | None):
    """t-SNE of the fc1 features of the first training images, one activation-maximisation
    image per class, and the confusion matrix of the test split."""
    n = QUICK_TSNE if quick else config.TSNE_IMAGES
    images, labels = fashion["train"]
    loader = TensorLoader(images[:n], labels[:n], 1000)
    features, tsne_labels = student.fc1_features(model, loader, device)
    print(f"t-SNE of {n} fc1 feature vectors ({features.shape[1]} numbers each)", flush=True)
    mean, std = FASHION.mean[0], FASHION.std[0]
    return Analysis(
        curves,
        student.tsne_points(features),
        tsne_labels,
        {
            c: student.activation_maximisation(model, c, mean, std, device=device)
            for c in range(len(FASHION.classes))
        },
        student.confusion(model, TensorLoader(*fashion["test"], 1000), device),
        root,
    )
