"""Final training of `mlp_tuning`, from the committed search result.

`python -m solutions train mlp_tuning` reads `solutions/mlp_tuning/best_config.json` (written by
`python -m solutions search mlp_tuning`), trains the chosen configuration once more on the
training split with the seed of its trial, measures the validation accuracy per epoch and the
test accuracy once, at the end, and writes the weights, the configuration file a student would
hand in and the figures; the expected answers (`solutions/expected.py`) add the search's summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from grader.manifest import Manifest
from solutions.data import DATASETS, load_split
from solutions.expected import ModelRun, TrainResult, training_summary
from solutions.mlp_tuning import config as settings
from solutions.mlp_tuning import plots
from solutions.mlp_tuning.search import BEST_CONFIG, ID, load_search_data, train_config
from solutions.mlp_tuning.student import ARCHITECTURE, SEARCH_SPACE
from solutions.paths import REPORTS_DIR
from solutions.plots import learning_curves
from solutions.training import accuracy

# The keys of final_config.json, in order: MLP's arguments first, then the rest of the search.
CONFIG_KEYS = (*ARCHITECTURE, *(k for k in SEARCH_SPACE if k not in ARCHITECTURE), "epochs")


# (images uint8 (10, 1, 28, 28), labels, predictions) of 10 random test images
Examples = tuple[torch.Tensor, list[int], list[int]]


def best_config_path(quick: bool) -> Path:
    """The search result to train from: a quick search's own when there is one (quick runs)."""
    quick_path = REPORTS_DIR / ID / "quick" / "best_config.json"
    return quick_path if quick and quick_path.is_file() else BEST_CONFIG


def final_config(record: dict) -> dict:
    """The file a student hands in: the chosen configuration, in a fixed key order."""
    return {key: record["config"][key] for key in CONFIG_KEYS}


def search_summary(record: dict) -> dict:
    """The expected answers' "search" entry: how the configuration was chosen."""
    return {
        **record["search"],
        "trial": record["trial"],
        "seed": record["seed"],
        "commit": record["provenance"]["commit"],
        "quick": record["quick"],
    }


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
) -> TrainResult[Examples]:
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
    model, history = train_config(config, data, epochs, seed=record["seed"], train_accuracy=True)
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
    run = ModelRun(
        history,
        test_accuracy,
        "adam",
        config["lr"],
        config["batch_size"],
        details={
            "config": config,
            "validation_accuracy": round(history.val_accuracy[-1], 4),
            "search_validation_accuracy": record["validation_accuracy"],
            **training_summary(history),
        },
    )
    return TrainResult(
        {"mlp": run},
        weights,
        time.perf_counter() - started,
        answers={"search": search_summary(record)},
        own=(test_u8[picks].cpu(), test_labels[picks].tolist(), guesses.tolist()),
    )


def figures(
    manifest: Manifest, result: TrainResult[Examples], folder: Path, title: str, quick: bool
) -> list[Path]:
    """Learning curves of the final model and its predictions on 10 random test images."""
    images, labels, guesses = result.own
    classes = DATASETS["fashion_mnist"].classes
    return [
        learning_curves(result.histories, folder / "learning_curves.png", title),
        plots.predictions(images, labels, guesses, classes, folder / "test_predictions.png", title),
    ]
