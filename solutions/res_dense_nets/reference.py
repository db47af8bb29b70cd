"""Expected answers of `res_dense_nets`: the accuracy of the reference models, never typed.

`train` trains both reference models on the real training split and measures test accuracy;
`expected_answers` turns that into thresholds. Everything structural (shapes, parameters,
behaviour, the shape answers) the grader computes itself, by running its observers on
`student.py` with the settings of each grading run.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from grader.manifest import Manifest
from solutions.data import load_split, normalize
from solutions.res_dense_nets import config
from solutions.res_dense_nets.student import DenseNet, ResMLP
from solutions.training import History, fit

MODELS = {"resmlp": (ResMLP, config.RESMLP), "densenet": (DenseNet, config.DENSENET)}


@dataclass(frozen=True)
class TrainResult:
    histories: dict[str, History]
    test_accuracy: dict[str, float]
    weights: dict[str, Path]
    seconds: float


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
) -> TrainResult:
    """Train both reference models on the training split; save weights; test accuracy.

    `quick` trains one epoch on 2,000 training images and tests on 1,000: every code path,
    none of the accuracy.
    """
    started = time.perf_counter()
    splits = {}
    for split, is_train in (("train", True), ("test", False)):
        images, labels = load_split(manifest.dataset, is_train, root=data_root, device=device)
        splits[split] = (normalize(images, manifest.mean, manifest.std), labels)
    if quick:
        splits = {"train": _head(splits["train"], 2000), "test": _head(splits["test"], 1000)}
    histories, accuracies, weights = {}, {}, {}
    weights_dir.mkdir(parents=True, exist_ok=True)
    for key, (cls, cfg) in MODELS.items():
        spec = manifest.model(key)
        torch.manual_seed(seed)
        model = cls(*spec.args).to(device)
        optimizer, scheduler = cfg.make(model)
        histories[key] = fit(
            model,
            optimizer,
            scheduler,
            splits["train"],
            splits["test"],
            epochs=1 if quick else cfg.epochs,
            batch_size=cfg.batch_size,
            seed=seed,
            name=key,
        )
        accuracies[key] = histories[key].test_accuracy[-1]
        weights[key] = weights_dir / spec.weights
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights[key])
    return TrainResult(histories, accuracies, weights, time.perf_counter() - started)


def _head(split, n):
    return split[0][:n], split[1][:n]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_answers(manifest: Manifest, result: TrainResult, quick: bool) -> dict:
    """Everything the grader compares with, besides provenance."""
    accuracy = {}
    for key, acc in result.test_accuracy.items():
        spec = manifest.model(key)
        cfg = MODELS[key][1]
        accuracy[key] = {
            "test_accuracy": round(acc, 4),
            "threshold": spec.measured_threshold(acc),
            "threshold_rule": f"floor((test_accuracy - {spec.threshold_margin}) * 100) / 100",
            "epochs": len(result.histories[key].loss),
            "optimizer": cfg.optimizer,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "train_accuracy": round(result.histories[key].train_accuracy[-1], 4),
            "seconds_per_epoch": round(
                sum(result.histories[key].seconds) / len(result.histories[key].seconds), 2
            ),
        }
    return {
        "accuracy": accuracy,
        "weights": {p.name: {"sha256": sha256(p)} for p in result.weights.values()},
        "quick": quick,
    }
