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

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

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
from solutions.manifest import Manifest
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
class TrainResult:
    histories: dict[str, History]
    curves: dict[str, dict]  # what `student.fit` returned, per run
    test_accuracy: dict[str, float]  # the best epoch's; "mnist" on MNIST's test split
    weights: dict[str, Path]
    seconds: float
    seconds_per_epoch: dict[str, float]
    mnist: MnistSource
    fashion: str  # where Fashion-MNIST came from
    sizes: dict[str, list[int]]  # data set -> [training images, test images]
    analysis: Analysis = field(repr=False)
    fashion_root: Path | None = None  # None: the root `resolve_root` finds

    @property
    def provenance(self) -> dict:
        """Extra provenance of the run: which data it saw."""
        return {
            "fashion_mnist": self.fashion,
            "mnist": self.mnist.description,
            "mnist_evidence": self.mnist.evidence,
            "images": dict(self.sizes),
            "threads": torch.get_num_threads(),
        }


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


def _fit(key, model, optimizer, scheduler, splits, device, seed, quick, transform=None):
    """`student.fit` on tensor batches; returns (curves, seconds per epoch)."""
    cfg = config.RUNS[key]
    train = TensorLoader(
        *splits["train"],
        cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        transform=transform,
    )
    test = TensorLoader(*splits["test"], 1000)
    epochs = 1 if quick else cfg.epochs
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
) -> TrainResult:
    """Train the five runs, save each best epoch's weights and the curves; analyse the baseline.

    `data_root` holds both data sets (tests: the fixtures); None finds each by the usual rules.
    `quick` trains one epoch on 1,000 images, tests on 500 and embeds 300: every code path,
    none of the accuracy.
    """
    started = time.perf_counter()
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
            key, model, optimizer, scheduler, fashion, device, seed, quick, transform
        )
        models[key] = model
    torch.manual_seed(seed)
    pretrained = student.Net().to(device)
    optimizer, scheduler = config.RUNS["mnist"].make(pretrained.parameters())
    curves["mnist"], per_epoch["mnist"] = _fit(
        "mnist", pretrained, optimizer, scheduler, mnist, device, seed, quick
    )
    models["mnist"] = pretrained
    torch.manual_seed(seed)
    mnist_state = {k: v.cpu() for k, v in pretrained.state_dict().items()}
    finetuned, optimizer = student.finetuning_setup(mnist_state, config.RUNS["finetuned"].lr)
    finetuned.to(device)  # moves the parameters in place: the optimiser keeps them
    scheduler = config.RUNS["finetuned"].scheduler_for(optimizer)
    curves["finetuned"], per_epoch["finetuned"] = _fit(
        "finetuned", finetuned, optimizer, scheduler, fashion, device, seed, quick
    )
    models["finetuned"] = finetuned

    weights = {key: _save(models[key], weights_dir / manifest.model(key).weights) for key in curves}
    weights["histories"] = weights_dir / HISTORIES_FILE
    weights["histories"].write_text(json.dumps(curves, indent=1) + "\n")
    analysis = analyse(models[config.ANALYSED_RUN], fashion, device, quick)
    return TrainResult(
        histories={key: _history(c) for key, c in curves.items()},
        curves=curves,
        test_accuracy={key: c["best_accuracy"] for key, c in curves.items()},
        weights=weights,
        seconds=time.perf_counter() - started,
        seconds_per_epoch=per_epoch,
        mnist=source,
        fashion=_describe_fashion(data_root),
        sizes={
            "fashion_mnist": [len(fashion["train"][1]), len(fashion["test"][1])],
            "mnist": [len(mnist["train"][1]), len(mnist["test"][1])],
        },
        analysis=analysis,
        fashion_root=data_root,
    )


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


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def accuracy_entry(manifest: Manifest, key: str, result: TrainResult) -> dict:
    """The expected-answers entry of one run: its best epoch, threshold and how it was set."""
    spec, cfg, curves = manifest.model(key), config.RUNS[key], result.curves[key]
    acc = result.test_accuracy[key]
    measured = key not in PRETRAINED or result.mnist.real
    entry: dict = {"test_accuracy": round(acc, 4) if measured else None}
    entry |= spec.threshold_entry(acc if measured else None)
    entry["measured"] = measured
    if not measured:
        data = f"a {result.mnist.description} ({result.mnist.evidence})"
        entry["reason"] = (
            f"no real MNIST where this ran: pretrained on {data}; the reference reached {acc:.4f}"
            + (
                " on that data's test split"
                if key == "mnist"
                else " on the Fashion-MNIST test split after that pretraining, which is not "
                "the sheet's fine-tuning"
            )
            + ", so the threshold is the manifest's"
        )
    entry |= {
        "best_epoch": curves["best_epoch"],
        "epochs": len(curves["test_accuracy"]),
        "data": "MNIST test split" if key == "mnist" else "Fashion-MNIST test split",
        "optimizer": "adadelta",
        "lr": cfg.lr,
        "scheduler": cfg.scheduler,
        "batch_size": cfg.batch_size,
        "seconds_per_epoch": round(result.seconds_per_epoch[key], 1),
    }
    if measured:
        entry["test_accuracy_per_epoch"] = [round(a, 4) for a in curves["test_accuracy"]]
    return entry


def expected_answers(manifest: Manifest, result: TrainResult, quick: bool) -> dict:
    """Everything the grader compares with, besides provenance: accuracy, files' hashes."""
    return {
        "accuracy": {key: accuracy_entry(manifest, key, result) for key in result.test_accuracy},
        "weights": {p.name: {"sha256": sha256(p)} for p in result.weights.values()},
        "quick": quick,
    }


def figures(
    manifest: Manifest, result: TrainResult, folder: Path, title: str, quick: bool
) -> list[Path]:
    """Every figure of the report (drawn by `plots`)."""
    from solutions.cnn_techniques import plots

    return plots.draw_all(result, folder, title, quick)
