"""Reference training of `res_dense_nets`: both models on the real training split.

Everything structural (shapes, parameters, behaviour, the shape answers) the grader computes
itself, by running its observers on `student.py` with the settings of each grading run; the
expected answers (`solutions/expected.py`) hold the test accuracies, thresholds and hashes.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from grader.manifest import Manifest
from solutions.data import load_split, normalize
from solutions.expected import ModelRun, TrainResult, training_summary
from solutions.res_dense_nets import config
from solutions.res_dense_nets.student import DenseNet, ResMLP
from solutions.training import fit

MODELS = {"resmlp": (ResMLP, config.RESMLP), "densenet": (DenseNet, config.DENSENET)}


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
    runs, weights = {}, {}
    weights_dir.mkdir(parents=True, exist_ok=True)
    for key, (cls, cfg) in MODELS.items():
        spec = manifest.model(key)
        torch.manual_seed(seed)
        model = cls(*spec.args).to(device)
        optimizer, scheduler = cfg.make(model)
        history = fit(
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
        runs[key] = ModelRun(
            history,
            history.test_accuracy[-1],
            cfg.optimizer,
            cfg.lr,
            cfg.batch_size,
            details=training_summary(history),
        )
        weights[key] = weights_dir / spec.weights
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights[key])
    return TrainResult(runs, weights, time.perf_counter() - started)


def _head(split, n):
    return split[0][:n], split[1][:n]
