"""The expected-answers file of every assignment (`grader/expected/<id>.json`), built once.

An assignment's `train` returns a `TrainResult`: per model key of the manifest, a `ModelRun`
(its history, test accuracy, how it was trained, whether the accuracy measures the real data
set) and the files the grader checks by hash. This module turns that into the file:

    {"assignment", "provenance", "accuracy": {key: entry}, <the assignment's own entries>,
     "weights": {file name: {"sha256"}}, "quick"}

Each accuracy entry holds the test accuracy, the threshold the grader uses (from the measured
accuracy and the manifest's margin, or the manifest's fixed threshold with its source when the
accuracy is not a measurement of the real data), `measured` and `reason` where the data could
have been a stand-in, the epochs and the optimiser, then the assignment's own details.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import torch

from grader.manifest import Manifest, ModelSpec
from solutions.provenance import provenance
from solutions.training import History

Own = TypeVar("Own")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Measurement:
    """Whether a test accuracy measures the real data set, and what says so.

    Unmeasured (the run saw a generated stand-in): the entry's `test_accuracy` is null and its
    threshold is the manifest's fixed one.
    """

    measured: bool
    reason: str = ""  # written as the entry's "reason" when not empty


@dataclass(frozen=True)
class ModelRun:
    """One trained reference model, as its accuracy entry describes it."""

    history: History
    test_accuracy: float
    optimizer: str
    lr: float
    batch_size: int
    # None: the data set is always the real one, and the entry says nothing about it.
    measurement: Measurement | None = None
    details: dict = field(default_factory=dict)  # the assignment's own entries, written last

    @property
    def measured(self) -> bool:
        return self.measurement is None or self.measurement.measured


@dataclass(frozen=True)
class TrainResult(Generic[Own]):
    """What an assignment's `train` hands to the shared code (expected answers, figures)."""

    runs: dict[str, ModelRun]  # manifest model key -> run, in the order the file lists them
    weights: dict[str, Path]  # files the grader checks by hash (weights, configuration files)
    seconds: float
    provenance: dict = field(default_factory=dict)  # which data the run saw, where it matters
    answers: dict = field(default_factory=dict)  # the assignment's own top-level entries
    own: Own | None = None  # what the assignment's own figures draw (sample images, analyses)

    @property
    def histories(self) -> dict[str, History]:
        return {key: run.history for key, run in self.runs.items()}

    @property
    def test_accuracy(self) -> dict[str, float]:
        return {key: run.test_accuracy for key, run in self.runs.items()}


def training_summary(history: History) -> dict:
    """The last epoch's training accuracy and the mean seconds per epoch, for an entry."""
    return {
        "train_accuracy": round(history.train_accuracy[-1], 4),
        "seconds_per_epoch": round(sum(history.seconds) / len(history.seconds), 2),
    }


def accuracy_entry(spec: ModelSpec, run: ModelRun) -> dict:
    """The expected-answers entry of one model: accuracy, threshold and where it came from."""
    acc = run.test_accuracy if run.measured else None
    entry = {"test_accuracy": None if acc is None else round(acc, 4)}
    entry |= spec.threshold_entry(acc)
    if run.measurement is not None:
        entry["measured"] = run.measurement.measured
        if run.measurement.reason:
            entry["reason"] = run.measurement.reason
    entry |= {
        "epochs": len(run.history.loss),
        "optimizer": run.optimizer,
        "lr": run.lr,
        "batch_size": run.batch_size,
    }
    return entry | run.details


def answers(manifest: Manifest, result: TrainResult, quick: bool) -> dict:
    """Everything the grader compares with, besides the assignment id and provenance."""
    return {
        "accuracy": {
            key: accuracy_entry(manifest.model(key), run) for key, run in result.runs.items()
        },
        **result.answers,
        "weights": {path.name: {"sha256": sha256(path)} for path in result.weights.values()},
        "quick": quick,
    }


def expected_file(
    manifest: Manifest, result: TrainResult, device: torch.device, seed: int, quick: bool
) -> dict:
    """The whole expected-answers file of one reference run."""
    return {
        "assignment": manifest.id,
        "provenance": provenance(
            device,
            seed,
            epochs={key: len(h.loss) for key, h in result.histories.items()},
            wall_time_s=round(result.seconds, 1),
            **result.provenance,
        ),
        **answers(manifest, result, quick),
    }
