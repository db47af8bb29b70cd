"""Does the one expected-answers builder give back every committed expected file, and does each
entry say whether its accuracy was measured?"""

from __future__ import annotations

import json

import pytest
import torch

from grader.manifest import load_manifest
from solutions.expected import (
    Measurement,
    ModelRun,
    TrainResult,
    accuracy_entry,
    answers,
    expected_file,
)
from solutions.paths import EXPECTED_DIR, WEIGHTS_DIR
from solutions.provenance import provenance
from solutions.registry import ASSIGNMENTS
from solutions.training import History

IDS = [a.id for a in ASSIGNMENTS]
# What the builder writes into every accuracy entry; the rest are the assignment's own details.
SHARED_ENTRY = {
    "test_accuracy",
    "threshold",
    "threshold_rule",
    "threshold_source",
    "measured",
    "reason",
    "epochs",
    "optimizer",
    "lr",
    "batch_size",
}
FILE_KEYS = {"assignment", "provenance", "accuracy", "weights", "quick"}


def _run(entry: dict) -> ModelRun:
    """The run an accuracy entry describes, as far as the entry tells it: the builder's input."""
    measurement = None
    if "measured" in entry:
        measurement = Measurement(entry["measured"], entry.get("reason", ""))
    accuracy = entry["test_accuracy"]
    return ModelRun(
        History(loss=[float("nan")] * entry["epochs"]),
        float("nan") if accuracy is None else accuracy,  # unmeasured: not in the file
        entry["optimizer"],
        entry["lr"],
        entry["batch_size"],
        measurement,
        details={k: v for k, v in entry.items() if k not in SHARED_ENTRY},
    )


def _result(assignment_id: str, committed: dict) -> TrainResult:
    """A result that holds what the committed file says, with the committed weights files."""
    standard = set(provenance(torch.device("cpu"), 0)) | {"epochs", "wall_time_s"}
    return TrainResult(
        runs={key: _run(entry) for key, entry in committed["accuracy"].items()},
        weights={name: WEIGHTS_DIR / assignment_id / name for name in committed["weights"]},
        seconds=committed["provenance"]["wall_time_s"],
        provenance={k: v for k, v in committed["provenance"].items() if k not in standard},
        answers={k: v for k, v in committed.items() if k not in FILE_KEYS},
    )


def test_does_every_assignment_have_committed_expected_answers():
    missing = [i for i in IDS if not (EXPECTED_DIR / f"{i}.json").is_file()]
    assert not missing, f"run `python -m solutions train` for {missing}"
    quick = [i for i in IDS if json.loads((EXPECTED_DIR / f"{i}.json").read_text())["quick"]]
    assert not quick, f"committed from a quick run: {quick}"


@pytest.mark.parametrize("assignment_id", IDS)
def test_does_the_builder_give_back_the_committed_expected_file(assignment_id):
    """Thresholds from the manifest, the measured flag and reason, the epochs, the weights'
    hashes (of the committed weights), the key order: all as the committed file has them."""
    committed = json.loads((EXPECTED_DIR / f"{assignment_id}.json").read_text())
    manifest = load_manifest(assignment_id)
    result = _result(assignment_id, committed)
    rebuilt = answers(manifest, result, committed["quick"])
    wanted = {k: v for k, v in committed.items() if k not in ("assignment", "provenance")}
    assert rebuilt == wanted
    assert list(rebuilt) == list(wanted)  # the same order: a retraining diff shows only values
    for key, entry in rebuilt["accuracy"].items():
        assert list(entry) == list(wanted["accuracy"][key]), key
    whole = expected_file(
        manifest, result, torch.device("cpu"), committed["provenance"]["seed"], committed["quick"]
    )
    assert list(whole) == list(committed)
    assert set(whole["provenance"]) == set(committed["provenance"])
    assert whole["provenance"]["epochs"] == committed["provenance"]["epochs"]


def _model_with_both_thresholds():
    """A manifest model that has a margin (measured runs) and a fixed threshold (the others)."""
    for a in ASSIGNMENTS:
        for spec in load_manifest(a.id).models:
            if spec.threshold_margin is not None and spec.threshold is not None:
                return spec
    pytest.fail("no manifest model declares both a threshold margin and a fixed threshold")


@pytest.mark.parametrize(
    "measurement", [None, Measurement(True), Measurement(True, "checked"), Measurement(False, "x")]
)
def test_does_an_entry_say_measured_only_when_the_run_says_and_threshold_accordingly(
    measurement,
):
    spec = _model_with_both_thresholds()
    run = ModelRun(History(loss=[1.0, 0.5, 0.2]), 0.91237, "adam", 0.001, 64, measurement)
    entry = accuracy_entry(spec, run)
    measured = measurement is None or measurement.measured
    assert entry["test_accuracy"] == (round(0.91237, 4) if measured else None)
    assert entry["threshold"] == (spec.measured_threshold(0.91237) if measured else spec.threshold)
    assert ("threshold_rule" in entry) is measured and ("threshold_source" in entry) is not measured
    assert ("measured" in entry) is (measurement is not None)
    assert entry.get("reason", "") == (measurement.reason if measurement else "")
    assert (entry["epochs"], entry["optimizer"], entry["lr"], entry["batch_size"]) == (
        3,
        "adam",
        0.001,
        64,
    )
