"""Reference training and expected answers of `cnn_techniques`, computed, never typed.

`train` runs the notebook's own code (`student.fit`, `train_epoch`, `evaluate`, the networks,
`finetuning_setup`) on the tensor path: whole splits on the device, batches by index
(`TensorLoader`) and the training augmentations applied to whole batches (flip by `torch.where`,
crop by padding and random offsets). Five runs of 10 epochs, each keeping its best epoch:
the baseline `Net`, `Net` on augmented images, `BatchNormNet`, `Net` pretrained on MNIST, and
that network fine-tuned on Fashion-MNIST with everything but fc2 frozen. Then the baseline's fc1
features of the first training images go through t-SNE, activation maximisation draws an image
per class, and the confusion matrix of the test split is counted.

MNIST cannot be downloaded everywhere (not here): without it the pretraining runs on the
generated MNIST-format fixture (`python -m solutions data --fixtures DIR` writes the same), and
the expected answers mark the MNIST and fine-tuned accuracies unmeasured, with the reason, and
take their thresholds from the manifest. Structural expectations (parameter counts, shapes,
behaviour) are not written here: the grader computes them by running the reference code.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

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

FASHION, MNIST = DATASETS["fashion_mnist"], DATASETS["mnist"]
PRETRAINED = ("mnist", "finetuned")  # runs whose result depends on real MNIST
HISTORIES_FILE = "histories.json"
# `quick`: training and test images per data set, and images for t-SNE.
QUICK_SIZES = (1000, 500)
QUICK_TSNE = 300


@dataclass(frozen=True)
class Analysis:
    """What the figures of the analysed network show."""

    run: str
    tsne_points: np.ndarray  # (n, 2)
    tsne_labels: torch.Tensor  # (n,)
    dreams: dict[int, tuple[torch.Tensor, list[float]]]  # class -> (image, target logits)
    confusion: np.ndarray  # (10, 10), rows: true class


@dataclass(frozen=True)
class Curves:
    """What the figures draw besides the histories: `fit`'s dicts, the analysis, the data."""

    curves: dict[str, dict]  # what `student.fit` returned, per run
    analysis: Analysis = field(repr=False)
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


def _splits(dataset: str, root: Path | None, info, device: torch.device, quick: bool) -> dict:
    """{"train": (x, y), "test": (x, y)}: normalised float (N, 1, 28, 28) images, labels."""
    splits = {}
    for split, is_train in (("train", True), ("test", False)):
        x, y = load_split(dataset, is_train, root=root, device=device)
        splits[split] = (normalize(x, info.mean, info.std), y)
    if quick:
        sizes = dict(zip(("train", "test"), QUICK_SIZES, strict=True))
        splits = {k: (x[: sizes[k]], y[: sizes[k]]) for k, (x, y) in splits.items()}
    return splits


def augmentation(info=FASHION) -> Compose:
    """The notebook's training augmentation on whole normalised batches: flip with p = 0.5,
    then a random crop of the image padded with black (normalised: (0 - mean) / std)."""
    black = (0.0 - info.mean[0]) / info.std[0]
    return Compose([RandomHorizontalFlip(0.5), RandomCrop(config.CROP_PADDING, fill=black)])


def _fit(key, model, optimizer, scheduler, splits, device, seed, epochs, transform=None):
    """`student.fit` on tensor batches for `epochs`; returns (curves, seconds per epoch)."""
    cfg = config.RUNS[key]
    train = TensorLoader(
        *splits["train"],
        cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        transform=transform,
    )
    test = TensorLoader(*splits["test"], 1000)
    print(f"{key}: {epochs} epochs on {len(splits['train'][1])} images", flush=True)
    started = time.perf_counter()
    curves = student.fit(model, optimizer, train, test, epochs, device, scheduler)
    return curves, (time.perf_counter() - started) / epochs


def _save(model: nn.Module, path: Path) -> Path:
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, path)
    return path


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
    fashion = _splits("fashion_mnist", data_root, FASHION, device, quick)
    source = mnist_source(data_root)
    mnist = _splits("mnist", source.root, MNIST, device, quick)
    weights_dir.mkdir(parents=True, exist_ok=True)
    curves, per_epoch, models = {}, {}, {}
    for key, cls, transform in (
        ("baseline", student.Net, None),
        ("augmented", student.Net, augmentation()),
        ("batchnorm", student.BatchNormNet, None),
    ):
        torch.manual_seed(seed)
        model = cls().to(device)
        optimizer, scheduler = config.RUNS[key].make(model.parameters())
        curves[key], per_epoch[key] = _fit(
            key, model, optimizer, scheduler, fashion, device, seed, n_epochs, transform
        )
        models[key] = model
    torch.manual_seed(seed)
    pretrained = student.Net().to(device)
    optimizer, scheduler = config.RUNS["mnist"].make(pretrained.parameters())
    curves["mnist"], per_epoch["mnist"] = _fit(
        "mnist", pretrained, optimizer, scheduler, mnist, device, seed, n_epochs
    )
    models["mnist"] = pretrained
    torch.manual_seed(seed)
    mnist_state = {k: v.cpu() for k, v in pretrained.state_dict().items()}
    finetuned, optimizer = student.finetuning_setup(mnist_state, config.RUNS["finetuned"].lr)
    finetuned.to(device)  # moves the parameters in place: the optimiser keeps them
    scheduler = config.RUNS["finetuned"].scheduler_for(optimizer)
    curves["finetuned"], per_epoch["finetuned"] = _fit(
        "finetuned", finetuned, optimizer, scheduler, fashion, device, seed, n_epochs
    )
    models["finetuned"] = finetuned

    weights = {key: _save(models[key], weights_dir / manifest.model(key).weights) for key in curves}
    weights["histories"] = weights_dir / HISTORIES_FILE
    weights["histories"].write_text(json.dumps(curves, indent=1) + "\n")
    analysis = analyse(models[config.ANALYSED_RUN], fashion, device, quick)
    fashion_sizes = [len(fashion["train"][1]), len(fashion["test"][1])]
    return TrainResult(
        runs={key: _run(key, c, per_epoch[key], source, short) for key, c in curves.items()},
        weights=weights,
        seconds=time.perf_counter() - started,
        provenance={
            "fashion_mnist": _describe_fashion(data_root),
            "mnist": source.description,
            "mnist_evidence": source.evidence,
            "images": {
                "fashion_mnist": fashion_sizes,
                "mnist": [len(mnist["train"][1]), len(mnist["test"][1])],
            },
            "threads": torch.get_num_threads(),
        },
        own=Curves(curves, analysis, data_root),
    )


def _run(
    key: str, curves: dict, seconds_per_epoch: float, source: MnistSource, short: str
) -> ModelRun:
    """One run's accuracy entry: its best epoch, and whether it measures what the sheet asks
    (`short`: why the run is shorter than the sheet's, or "")."""
    cfg, acc = config.RUNS[key], curves["best_accuracy"]
    why = [short] if short else []
    if key in PRETRAINED and not source.real:
        why.append(f"no real MNIST where this ran: pretrained on a {source.description} "
                   f"({source.evidence})")  # fmt: skip
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
        "scheduler": cfg.scheduler,
        "seconds_per_epoch": round(seconds_per_epoch, 1),
        "test_accuracy_per_epoch": [round(a, 4) for a in curves["test_accuracy"]],
    }
    return ModelRun(_history(curves), acc, "adadelta", cfg.lr, cfg.batch_size, measurement, details)


def _history(curves: dict) -> History:
    return History(
        loss=curves["train_loss"],
        train_accuracy=curves["train_accuracy"],
        test_accuracy=curves["test_accuracy"],
    )


def _describe_fashion(data_root: Path | None) -> str:
    if data_root is not None:
        return f"given root {data_root}"
    found = resolve_root("fashion_mnist")
    return f"{found.root} (found via {found.source})"


def analyse(model: nn.Module, fashion: dict, device: torch.device, quick: bool) -> Analysis:
    """t-SNE of the fc1 features of the first training images, one activation-maximisation
    image per class, and the confusion matrix of the test split."""
    n = QUICK_TSNE if quick else config.TSNE_IMAGES
    images, labels = fashion["train"]
    features, tsne_labels = student.fc1_features(
        model, TensorLoader(images[:n], labels[:n], 1000), device
    )
    print(f"t-SNE of {n} fc1 feature vectors ({features.shape[1]} numbers each)", flush=True)
    points = student.tsne_points(features, config.TSNE_SEED)
    dreams = {
        c: student.activation_maximisation(
            model,
            c,
            FASHION.mean[0],
            FASHION.std[0],
            config.DREAM_STEPS,
            config.DREAM_LR,
            config.DREAM_DECAY,
            device,
        )
        for c in range(len(FASHION.classes))
    }
    matrix = student.confusion(model, TensorLoader(*fashion["test"], 1000), device)
    return Analysis(config.ANALYSED_RUN, points, tsne_labels, dreams, matrix)


def figures(
    manifest: Manifest, result: TrainResult, folder: Path, title: str, quick: bool
) -> list[Path]:
    """Every figure of the report (drawn by `plots`)."""
    from solutions.cnn_techniques import plots

    return plots.draw_all(result.own, folder, title, quick)
