"""Does the reference search of `mlp_tuning` run end to end, and do several workers share one
Optuna study on a real PostgreSQL server without losing or repeating a trial?"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from solutions.data import write_mnist_like
from tests.conftest import run_cli

ID = "mlp_tuning"
FINISHED = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return write_mnist_like(tmp_path_factory.mktemp("fashion"), "fashion_mnist")


def _search(out: Path, root: Path, *extra: str):
    result = run_cli(
        "solutions", "search", ID, "--quick", "--output-dir", str(out), *extra,
        timeout=600, env={"DLGRADE_DATA": str(root)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads((out / "best_config.json").read_text())


def _stage_trials(url: str, record: dict) -> list[list[optuna.trial.FrozenTrial]]:
    return [
        optuna.load_study(study_name=name, storage=url).trials
        for name in record["provenance"]["studies"]
    ]


def test_does_a_quick_search_choose_its_best_validation_trial_and_draw_the_plots(
    tmp_path, fixture_root
):
    url = f"sqlite:///{tmp_path / 'search.db'}"
    record = _search(tmp_path / "out", fixture_root, "--trials", "5", "--storage", url)
    stages = _stage_trials(url, record)
    assert sum(len(trials) for trials in stages) == record["search"]["trials"] == 5
    last = [t for t in stages[-1] if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(last, key=lambda t: t.value)
    assert record["validation_accuracy"] == round(best.value, 4)
    assert record["seed"] == best.user_attrs["seed"]
    assert {k: v for k, v in record["config"].items() if k != "epochs"} == best.params
    assert record["quick"] is True and record["search"]["storage"] == "sqlite"
    # The coarse stage starts from the notebook's baseline configuration.
    assert stages[0][0].user_attrs["from"] == "baseline"
    for figure in ("search_parallel_coordinates", "search_importances", "search_stages"):
        assert (tmp_path / "out" / f"{figure}.png").stat().st_size > 10_000


def test_do_two_workers_share_a_postgresql_study_without_losing_or_repeating_a_trial(
    postgres, tmp_path, fixture_root
):
    record = _search(
        tmp_path / "out", fixture_root, "--storage", postgres, "--workers", "2", "--trials", "10"
    )
    assert record["search"]["storage"] == "postgresql" and record["search"]["workers"] == 2
    stages = _stage_trials(postgres, record)
    assert [len(trials) for trials in stages] == [s["trials"] for s in record["search"]["stages"]]
    assert sum(len(trials) for trials in stages) == 10  # none lost, none extra
    workers = set()
    for trials in stages:
        assert sorted(t.number for t in trials) == list(range(len(trials)))  # each run once
        assert {t.state for t in trials} <= FINISHED
        workers |= {t.user_attrs["worker"] for t in trials}
    assert len(workers) >= 2  # both processes ran trials
