"""Final training and expected answers of `mlp_tuning`, from the committed search result.

`python -m solutions train mlp_tuning` reads `solutions/mlp_tuning/best_config.json` (written by
`python -m solutions search mlp_tuning`), trains the chosen configuration once more on the
training split with the seed of its trial, measures the validation accuracy per epoch and the
test accuracy once, at the end, and writes the weights, the configuration file a student would
hand in, the expected answers and the figures. Structural expectations (parameter counts,
shapes) are not written here: the grader computes them by running the reference code.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from grader.manifest import Manifest
from solutions.data import DATASETS, load_split
from solutions.mlp_tuning import config as settings
from solutions.mlp_tuning import plots
from solutions.mlp_tuning.search import BEST_CONFIG, Curve, load_search_data, train_config
from solutions.paths import REPORTS_DIR
from solutions.training import accuracy

ID = "mlp_tuning"
CONFIG_KEYS = (
    "hidden_layers", "width", "activation", "dropout", "normalise", "flip", "rotation",
    "resized_crop", "lr", "batch_size", "epochs",
)  # fmt: skip


@dataclass(frozen=True)
class TrainResult:
    histories: dict[str, Curve]
    test_accuracy: dict[str, float]
    weights: dict[str, Path]
    seconds: float
    record: dict  # the best_config.json the run started from
    final_config: dict
    examples: tuple  # (images uint8 (10, 1, 28, 28), labels, predictions) of 10 test images


def best_config_path(quick: bool) -> Path:
    """The search result to train from: a quick search's own when there is one (quick runs)."""
    quick_path = REPORTS_DIR / ID / "quick" / "best_config.json"
    return quick_path if quick and quick_path.is_file() else BEST_CONFIG


def final_config(record: dict) -> dict:
    """The file a student hands in: the chosen configuration, in a fixed key order."""
    return {key: record["config"][key] for key in CONFIG_KEYS}


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
) -> TrainResult:
    """Train the chosen configuration; save `mlp_final.pt` and `final_config.json`.

    `seed` is not used for the model: the run reuses the seed of the chosen trial, so that it
    reproduces that trial. `quick` trains one epoch on the quick search's few images.
    """
    del seed  # the trial's own seed is in the record
    started = time.perf_counter()
    record = json.loads(best_config_path(quick).read_text())
    config = final_config(record)
    budget = settings.QUICK if quick else settings.FULL
    data = load_search_data(budget, root=data_root, device=device)
    epochs = 1 if quick else config["epochs"]
    model, curve = train_config(config, data, epochs, seed=record["seed"], train_accuracy=True)
    # The test split, once, with the evaluation transform: ToTensor (+ Standardise).
    test_u8, test_labels = load_split(manifest.dataset, False, root=data_root, device=device)
    test = test_u8.float() / 255
    if config["normalise"]:
        test = data.standardise(test)
    test_accuracy = accuracy(model, test, test_labels)
    picks = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(0))[:10]
    with torch.no_grad():
        guesses = model.eval()(test[picks]).argmax(1)
    spec = manifest.model("mlp")
    weights_dir.mkdir(parents=True, exist_ok=True)
    weights = {"mlp": weights_dir / spec.weights, "config": weights_dir / spec.config}
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights["mlp"])
    weights["config"].write_text(json.dumps(config, indent=2) + "\n")
    return TrainResult(
        histories={"mlp": curve},
        test_accuracy={"mlp": test_accuracy},
        weights=weights,
        seconds=time.perf_counter() - started,
        record=record,
        final_config=config,
        examples=(test_u8[picks].cpu(), test_labels[picks].tolist(), guesses.tolist()),
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_answers(manifest: Manifest, result: TrainResult, quick: bool) -> dict:
    """Accuracy with its threshold, the search summary and the files' hashes."""
    spec = manifest.model("mlp")
    curve, config = result.histories["mlp"], result.final_config
    acc = result.test_accuracy["mlp"]
    return {
        "accuracy": {
            "mlp": {
                "test_accuracy": round(acc, 4),
                "threshold": spec.measured_threshold(acc),
                "threshold_rule": f"floor((test_accuracy - {spec.threshold_margin}) * 100) / 100",
                "epochs": len(curve.loss),
                "optimizer": "adam",
                "lr": config["lr"],
                "batch_size": config["batch_size"],
                "config": config,
                "validation_accuracy": round(curve.val_accuracy[-1], 4),
                "search_validation_accuracy": result.record["validation_accuracy"],
                "train_accuracy": round(curve.train_accuracy[-1], 4),
                "seconds_per_epoch": round(sum(curve.seconds) / len(curve.seconds), 2),
            }
        },
        "search": {
            **result.record["search"],
            "trial": result.record["trial"],
            "seed": result.record["seed"],
            "commit": result.record["provenance"]["commit"],
            "quick": result.record["quick"],
        },
        "weights": {p.name: {"sha256": sha256(p)} for p in result.weights.values()},
        "quick": quick,
    }


def figures(
    manifest: Manifest, result: TrainResult, folder: Path, title: str, quick: bool
) -> list[Path]:
    """Learning curves of the final model and its predictions on 10 random test images."""
    images, labels, guesses = result.examples
    return [
        plots.learning_curves(
            result.histories["mlp"], folder / "learning_curves.png", title=title, quick=quick
        ),
        plots.predictions(
            images,
            labels,
            guesses,
            DATASETS["fashion_mnist"].classes,
            folder / "test_predictions.png",
            quick=quick,
        ),  # fmt: skip
    ]
