"""Does the `mlp_tuning` reference code do what its notebook says, does its search run end to
end (two workers sharing one study on a real PostgreSQL server without losing or repeating a
trial), and do the committed configuration, search result and expected answers agree with it?

The committed weights' hashes, thresholds and provenance are tested for every assignment by
tests/solutions/test_expected.py; the variants, and that the search picks its best validation
trial, by grading them (tests/grader/test_variants.py); the MLP's parameter counts and shapes by
the notebook's visible test (tests/test_release.py), its activation and dropout by the
grader's independent judges on the reference."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import sqlalchemy
import torch
from torch.nn import functional as F
from torch.utils.data import Subset
from torchvision.datasets import FashionMNIST

from grader.checks.families.images import ImageSet
from solutions.data import write_mnist_like
from solutions.mlp_tuning import config as settings
from solutions.mlp_tuning import reference, search
from solutions.mlp_tuning.student import (
    MLP,
    SEARCH_SPACE,
    STAGES,
    evaluate,
    make_transforms,
    narrow_space,
    run_search,
    split_train_validation,
    stage_sizes,
    standardisation_images,
    train_epoch,
)
from solutions.paths import EXPECTED_DIR, WEIGHTS_DIR
from tests.conftest import run_cli

ID = "mlp_tuning"
EXPECTED = EXPECTED_DIR / f"{ID}.json"
FINISHED = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return write_mnist_like(tmp_path_factory.mktemp("fashion"), "fashion_mnist", n_test=300)


def _subset(n: int = 40, seed: int = 0):
    """Every third image of a FashionMNIST-like set: `.data` uint8 (n, 28, 28), PIL items."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    return Subset(ImageSet(data), list(range(0, n, 3)))


# ---------------------------------------------------------------- split and statistics


def test_does_the_split_give_the_sheet_s_sizes_and_repeat_with_its_seed():
    train, val = split_train_validation(range(60_000))
    assert (len(train), len(val)) == (55_000, 5_000)
    again, _ = split_train_validation(range(60_000))
    other, _ = split_train_validation(range(60_000), seed=1)
    assert list(train.indices) == list(again.indices) != list(other.indices)
    assert not set(train.indices) & set(val.indices)


def test_are_the_statistics_those_of_the_subset_s_images_only():
    subset = _subset()
    subset.dataset.data[:, 0, 0] = 7  # a constant pixel: its std is exactly the sheet's 1e-5
    mean, std = standardisation_images(subset)
    pixels = subset.dataset.data.numpy()[subset.indices].astype(np.float64) / 255
    assert mean.shape == std.shape == (28, 28) and mean.dtype == std.dtype == torch.float32
    np.testing.assert_allclose(mean.numpy(), pixels.mean(0), atol=1e-6)
    np.testing.assert_allclose(std.numpy(), pixels.std(0, ddof=0) + 1e-5, atol=1e-6)
    assert float(std[0, 0]) == pytest.approx(1e-5, abs=1e-9)
    everything = subset.dataset.data.float().mean(0) / 255
    assert not torch.allclose(mean, everything, atol=1e-3)


def test_does_the_reference_search_use_the_notebook_s_split_and_statistics(fixture_root):
    dataset = FashionMNIST(str(fixture_root), train=True)
    train, val = split_train_validation(dataset, 300)
    budget = settings.SearchBudget(1, STAGES, validation_size=300)
    data = search.load_search_data(budget, root=fixture_root)
    mean, std = standardisation_images(train)
    assert torch.equal(data.mean_image, mean) and torch.equal(data.std_image, std)
    assert torch.equal(data.val_images[:, 0], dataset.data[val.indices].float() / 255)


# ---------------------------------------------------------------- transforms


def test_are_augmentations_switchable_training_only_and_evaluation_deterministic():
    image = _subset()[0][0]
    mean, std = torch.full((28, 28), 0.3), torch.full((28, 28), 0.2)
    plain_train, plain_eval = make_transforms(mean, std)
    assert torch.equal(plain_train(image), plain_eval(image))
    # Standardise, pixel by pixel.
    assert torch.allclose(plain_eval(image), (torch.tensor(np.array(image)) / 255 - 0.3) / 0.2)
    raw_train, raw_eval = make_transforms(mean, std, normalise=False)
    assert float(raw_eval(image).min()) >= 0 and float(raw_eval(image).max()) <= 1
    for switch in ("flip", "rotation", "resized_crop"):
        train_tf, eval_tf = make_transforms(mean, std, **{switch: True})
        torch.manual_seed(0)
        outputs = [train_tf(image) for _ in range(8)]
        assert any(not torch.equal(outputs[0], o) for o in outputs), switch
        assert all(torch.equal(eval_tf(image), plain_eval(image)) for _ in range(3)), switch
        assert outputs[0].shape == (1, 28, 28)


def test_does_the_batched_transform_follow_the_configuration_switches():
    data = SimpleNamespace(standardise=lambda x: (x - 0.5) / 0.25)
    x = torch.rand(16, 1, 28, 28)
    off = dict.fromkeys(("flip", "rotation", "resized_crop"), False)
    assert torch.equal(search.batch_transform({**off, "normalise": False}, data)(x), x)
    assert torch.allclose(
        search.batch_transform({**off, "normalise": True}, data)(x), (x - 0.5) / 0.25
    )
    torch.manual_seed(0)
    flipped = search.batch_transform({**off, "flip": True, "normalise": False}, data)(x)
    assert any(
        torch.equal(f, i.flip(-1)) and not torch.equal(f, i)
        for f, i in zip(flipped, x, strict=True)
    )


# ---------------------------------------------------------------- the MLP and the loops


def test_does_an_unknown_activation_fail_loudly():
    with pytest.raises(ValueError, match="activation"):
        MLP(activation="gelu")


def test_are_the_loop_figures_per_image_and_counted():
    torch.manual_seed(0)
    model = MLP(1, 8)
    batches = [(torch.randn(n, 784), torch.randint(0, 10, (n,))) for n in (5, 3)]
    # lr 0: the weights stay as they are, so the loss can be recomputed afterwards.
    loss = train_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.0), "cpu")
    with torch.no_grad():
        total = sum(F.cross_entropy(model(x), y, reduction="sum") for x, y in batches)
    assert loss == pytest.approx(float(total) / 8, rel=1e-5)
    correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
    assert evaluate(model, batches, "cpu") == pytest.approx(correct / 8)


# ---------------------------------------------------------------- the search's pieces


def test_do_stage_sizes_add_up_and_give_every_stage_a_trial():
    for n in (1, 2, 3, 7, 40, 90):
        sizes = [size for _, size in stage_sizes(n, STAGES)]
        assert sum(sizes) == n and min(sizes) >= 1 and len(sizes) == min(n, len(STAGES))


def test_does_narrowing_keep_the_best_trials_inside_a_smaller_space():
    first = {k: v["choices"][0] for k, v in SEARCH_SPACE.items() if "choices" in v}
    trials = [
        SimpleNamespace(params={**first, "dropout": d, "lr": lr})
        for d, lr in ((0.1, 1e-3), (0.3, 3e-3))
    ]
    narrow = narrow_space(SEARCH_SPACE, trials)
    assert narrow["width"]["choices"] == [SEARCH_SPACE["width"]["choices"][0]]
    assert SEARCH_SPACE["lr"]["low"] <= narrow["lr"]["low"] <= 1e-3 < 3e-3 <= narrow["lr"]["high"]
    assert narrow["lr"]["log"]
    assert 0.0 <= narrow["dropout"]["low"] <= 0.1 < 0.3 <= narrow["dropout"]["high"]
    assert narrow_space(SEARCH_SPACE, []) == SEARCH_SPACE


def test_does_a_small_search_rerun_on_one_database_and_leave_no_trial_waiting(
    fixture_root, tmp_path
):
    dataset = FashionMNIST(str(fixture_root), train=True)
    # As the notebook suggests for a first try: subsets of the dataset itself.
    train_part, val_part = split_train_validation(dataset, 300)
    train = Subset(dataset, train_part.indices[:200])
    val = Subset(dataset, val_part.indices[:100])
    # Stage sizes 2, 1, 1: the coarse stage keeps more trials than the next one runs.
    short = tuple({**s, "epochs": 1, "reports": 1} for s in STAGES)
    assert [n for _, n in stage_sizes(4, short)] == [2, 1, 1]
    assert short[0]["keep"] > 1
    storage = f"sqlite:///{tmp_path / 'mlp_tuning.db'}"
    runs = [
        run_search(train, val, 4, stages=short, storage=storage, device=torch.device("cpu"))
        for _ in range(2)  # as a student reruns the cell: no DuplicatedStudyError
    ]
    for study in runs:
        assert len(study.user_attrs["stage_studies"]) == len(short)
        assert set(study.best_params) == set(SEARCH_SPACE)
        for name in study.user_attrs["stage_studies"]:
            trials = optuna.load_study(study_name=name, storage=storage).trials
            assert optuna.trial.TrialState.WAITING not in {t.state for t in trials}, name


# ---------------------------------------------------------------- the reference search


def _search(out: Path, root: Path, *extra: str):
    result = run_cli(
        "solutions",
        "search",
        ID,
        "--quick",
        "--output-dir",
        str(out),
        *extra,
        timeout=600,
        env={"DLGRADE_DATA": str(root)},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads((out / "best_config.json").read_text()), result.stdout


def _stage_trials(url: str, record: dict) -> list[list[optuna.trial.FrozenTrial]]:
    return [
        optuna.load_study(study_name=name, storage=url).trials
        for name in record["provenance"]["studies"]
    ]


def test_does_a_quick_search_choose_its_best_validation_trial_and_draw_the_plots(
    tmp_path, fixture_root
):
    url = f"sqlite:///{tmp_path / 'search.db'}"
    record, printed = _search(tmp_path / "out", fixture_root, "--trials", "5", "--storage", url)
    # Where the trials are kept, for inspection: the database and the studies.
    assert f"trials kept in {url}, studies {', '.join(record['provenance']['studies'])}" in printed
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
    record, _ = _search(
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


def test_does_a_plain_postgresql_url_reach_the_installed_driver():
    """Seen by an instructor: SQLAlchemy 2 reads postgresql:// with psycopg 3, which was not
    installed, and Optuna said only "Failed to import DB access module for the storage URL"."""
    with pytest.raises(sqlalchemy.exc.OperationalError):  # the driver found no server there
        search.open_storage("postgresql://nobody@127.0.0.1:1/none")


# ---------------------------------------------------------------- committed files


def test_are_the_expected_answers_and_configuration_those_of_the_committed_search_result():
    expected = json.loads(EXPECTED.read_text())
    record = json.loads(search.BEST_CONFIG.read_text())
    mlp = expected["accuracy"]["mlp"]
    assert expected["quick"] is False and mlp["test_accuracy"] >= 0.895  # the target
    assert expected["search"] == reference.search_summary(record)
    s = expected["search"]
    assert s["trials"] == s["complete"] + s["pruned"] + s["failed"] and s["quick"] is False
    assert s["best_validation_accuracy"] == s["stages"][-1]["best_validation_accuracy"]
    assert mlp["config"] == reference.final_config(record)
    assert mlp["search_validation_accuracy"] == record["validation_accuracy"]
    assert (mlp["lr"], mlp["batch_size"]) == (mlp["config"]["lr"], mlp["config"]["batch_size"])
    config = json.loads((WEIGHTS_DIR / ID / "final_config.json").read_text())
    assert config == mlp["config"] and tuple(config) == reference.CONFIG_KEYS
