"""Does the `mlp_tuning` reference code do what its notebook says, and do the committed files
(expected answers, weights, configuration, notebooks, variants) agree with it?"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import Subset

from grader.manifest import load_manifest
from solutions.data import write_mnist_like
from solutions.expected import sha256
from solutions.mlp_tuning import config as settings
from solutions.mlp_tuning import reference, search
from solutions.mlp_tuning.student import (
    MLP,
    SEARCH_SPACE,
    STAGES,
    Standardise,
    evaluate,
    make_transforms,
    narrow_space,
    split_train_validation,
    stage_sizes,
    standardisation_images,
    train_epoch,
)
from solutions.paths import EXPECTED_DIR, SOURCE_DIR, WEIGHTS_DIR
from tests.conftest import run_cli
from tests.fixtures.variants import apply_cells, model_namespace, variants_of

ID = "mlp_tuning"
EXPECTED = EXPECTED_DIR / f"{ID}.json"
needs_expected = pytest.mark.skipif(not EXPECTED.is_file(), reason="no expected answers yet")


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(ID)


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return write_mnist_like(tmp_path_factory.mktemp("fashion"), "fashion_mnist", n_test=300)


def _subset(n: int = 40, seed: int = 0, indices=None):
    """A Subset of a FashionMNIST-like object: `.data` uint8 (n, 28, 28), PIL items."""
    data = torch.randint(
        0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )

    class Images(torch.utils.data.Dataset):
        def __init__(self):
            self.data = data

        def __len__(self):
            return n

        def __getitem__(self, i):
            return Image.fromarray(self.data[i].numpy(), mode="L"), i % 10

    return Subset(Images(), indices if indices is not None else list(range(0, n, 3)))


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
    mean, std = standardisation_images(subset)
    pixels = subset.dataset.data.numpy()[subset.indices].astype(np.float64) / 255
    assert mean.shape == std.shape == (28, 28) and mean.dtype == std.dtype == torch.float32
    np.testing.assert_allclose(mean.numpy(), pixels.mean(0), atol=1e-6)
    np.testing.assert_allclose(std.numpy(), pixels.std(0, ddof=0) + 1e-5, atol=1e-6)
    everything = subset.dataset.data.float().mean(0) / 255
    assert not torch.allclose(mean, everything, atol=1e-3)


def test_is_the_std_of_a_constant_pixel_exactly_the_sheet_s_1e_5():
    subset = _subset()
    subset.dataset.data[:, 0, 0] = 7
    _, std = standardisation_images(subset)
    assert float(std[0, 0]) == pytest.approx(1e-5, abs=1e-9)


def test_does_the_reference_search_use_the_notebook_s_split_and_statistics(fixture_root):
    from torchvision.datasets import FashionMNIST

    dataset = FashionMNIST(str(fixture_root), train=True)
    train, val = split_train_validation(dataset, 300)
    assert search.split_indices(len(dataset), 300, 0) == (list(train.indices), list(val.indices))
    budget = settings.SearchBudget(1, STAGES, validation_size=300)
    data = search.load_search_data(budget, root=fixture_root)
    mean, std = standardisation_images(train)
    assert torch.equal(data.mean_image, mean) and torch.equal(data.std_image, std)
    assert torch.equal(data.val_images[:, 0], dataset.data[val.indices].float() / 255)


# ---------------------------------------------------------------- transforms


def test_does_standardise_work_pixel_by_pixel():
    mean, std = torch.rand(28, 28), torch.rand(28, 28) + 0.5
    x = torch.rand(1, 28, 28)
    assert torch.allclose(Standardise(mean, std)(x), (x - mean) / std)


def test_are_augmentations_switchable_training_only_and_evaluation_deterministic():
    image = _subset()[0][0]
    mean, std = torch.full((28, 28), 0.3), torch.full((28, 28), 0.2)
    plain_train, plain_eval = make_transforms(mean, std)
    assert torch.equal(plain_train(image), plain_eval(image))
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


@pytest.mark.parametrize(
    "layers, width, activation", [(1, 64, "relu"), (2, 256, "tanh"), (4, 32, "sigmoid")]
)
def test_does_the_mlp_have_the_configured_layers_and_output(layers, width, activation):
    model = MLP(layers, width, activation, 0.3)
    sizes = [784] + [width] * layers + [10]
    assert sum(p.numel() for p in model.parameters()) == sum(
        a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    )
    kinds = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    assert sum(isinstance(m, kinds[activation]) for m in model.modules()) == layers
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in model.modules()) == layers
    assert model(torch.randn(3, 1, 28, 28)).shape == model(torch.randn(3, 784)).shape == (3, 10)


def test_is_dropout_active_in_training_mode_only():
    model, x = MLP(2, 64, "relu", 0.5), torch.randn(8, 784)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


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
    trials = [
        SimpleNamespace(
            params={
                **{k: v["choices"][0] for k, v in SEARCH_SPACE.items() if "choices" in v},
                "dropout": d,
                "lr": lr,
            }
        )
        for d, lr in ((0.1, 1e-3), (0.3, 3e-3))
    ]
    narrow = narrow_space(SEARCH_SPACE, trials)
    assert narrow["width"]["choices"] == [SEARCH_SPACE["width"]["choices"][0]]
    assert SEARCH_SPACE["lr"]["low"] <= narrow["lr"]["low"] <= 1e-3 < 3e-3 <= narrow["lr"]["high"]
    assert (
        narrow["lr"]["log"]
        and 0.0 <= narrow["dropout"]["low"] <= 0.1 < 0.3 <= narrow["dropout"]["high"]
    )
    assert narrow_space(SEARCH_SPACE, []) == SEARCH_SPACE


def test_does_the_notebook_search_pick_its_best_validation_trial(fixture_root):
    from torchvision.datasets import FashionMNIST

    dataset = FashionMNIST(str(fixture_root), train=True)
    # As the notebook suggests for a first try: subsets of the dataset itself.
    train_part, val_part = split_train_validation(dataset, 300)
    train = Subset(dataset, train_part.indices[:300])
    val = Subset(dataset, val_part.indices[:100])
    from solutions.mlp_tuning.student import run_search

    quick = (
        {"share": 0.5, "epochs": 1, "reports": 2, "keep": 1},
        {"share": 0.5, "epochs": 1, "reports": 1, "keep": 0},
    )
    study = run_search(train, val, 4, stages=quick, device=torch.device("cpu"))
    values = [t.value for t in study.trials if t.value is not None]
    assert study.best_value == max(values) and len(study.user_attrs["stage_studies"]) == 2
    assert set(study.best_params) == set(SEARCH_SPACE)


def test_does_a_small_search_rerun_on_one_database_and_leave_no_trial_waiting(
    fixture_root, tmp_path
):
    import optuna
    from torchvision.datasets import FashionMNIST

    from solutions.mlp_tuning.student import run_search

    dataset = FashionMNIST(str(fixture_root), train=True)
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
        for name in study.user_attrs["stage_studies"]:
            trials = optuna.load_study(study_name=name, storage=storage).trials
            assert optuna.trial.TrialState.WAITING not in {t.state for t in trials}, name


# ---------------------------------------------------------------- committed files


@needs_expected
def test_does_the_expected_file_say_where_it_came_from_and_reach_the_issue_target(manifest):
    expected = json.loads(EXPECTED.read_text())
    assert expected["quick"] is False and "structure" not in expected
    for key in ("command", "commit", "device", "torch", "seed", "epochs", "wall_time_s"):
        assert key in expected["provenance"], key
    mlp = expected["accuracy"]["mlp"]
    assert mlp["test_accuracy"] >= 0.895
    assert mlp["threshold"] == manifest.model("mlp").measured_threshold(mlp["test_accuracy"])
    s = expected["search"]
    assert s["trials"] == s["complete"] + s["pruned"] + s["failed"] and s["quick"] is False
    assert s["best_validation_accuracy"] == max(
        st["best_validation_accuracy"] for st in s["stages"][-1:]
    )


@needs_expected
def test_do_the_committed_weights_and_configuration_belong_together(manifest):
    expected = json.loads(EXPECTED.read_text())
    folder = WEIGHTS_DIR / ID
    spec = manifest.model("mlp")
    for name in (spec.weights, spec.config):
        assert expected["weights"][name]["sha256"] == sha256(folder / name)
    config = json.loads((folder / spec.config).read_text())
    assert config == reference.final_config(json.loads(search.BEST_CONFIG.read_text()))
    assert tuple(config) == reference.CONFIG_KEYS
    model = MLP(**{k: config[k] for k in ("hidden_layers", "width", "activation", "dropout")})
    model.load_state_dict(torch.load(folder / spec.weights, weights_only=True))


@needs_expected
def test_are_the_expected_configuration_and_search_those_of_the_committed_search_result():
    expected = json.loads(EXPECTED.read_text())
    record = json.loads(search.BEST_CONFIG.read_text())
    mlp = expected["accuracy"]["mlp"]
    assert expected["search"] == reference.search_summary(record)
    assert mlp["config"] == reference.final_config(record)
    assert mlp["search_validation_accuracy"] == record["validation_accuracy"]
    assert (mlp["lr"], mlp["batch_size"]) == (
        record["config"]["lr"],
        record["config"]["batch_size"],
    )


def test_does_quick_training_write_expected_answers_weights_and_figures(tmp_path, fixture_root):
    env_root = {"DLGRADE_DATA": str(fixture_root)}
    result = run_cli(
        "solutions",
        "train",
        ID,
        "--quick",
        "--device",
        "cpu",
        "--output-dir",
        str(tmp_path),
        timeout=300,
        env=env_root,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((tmp_path / f"{ID}.json").read_text())
    assert written["quick"] is True and written["provenance"]["epochs"] == {"mlp": 1}
    config = json.loads((tmp_path / "weights" / "final_config.json").read_text())
    state = torch.load(tmp_path / "weights" / "mlp_final.pt", weights_only=True)
    MLP(
        **{k: config[k] for k in ("hidden_layers", "width", "activation", "dropout")}
    ).load_state_dict(state)
    for figure in ("learning_curves.png", "test_predictions.png"):
        assert (tmp_path / figure).stat().st_size > 10_000


@needs_expected
def test_does_the_submission_command_write_notebook_weights_and_configuration(tmp_path, manifest):
    result = run_cli("solutions", "submission", ID, str(tmp_path / "sub"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(manifest.submit_files)


# ---------------------------------------------------------------- variants


def test_do_the_variants_cover_the_issue_and_name_real_checks(manifest):
    variants = variants_of(ID)
    names = {c.name for c in manifest.checks}
    buggy = [v for v in variants.values() if v.catches]
    assert len(buggy) >= 8 and len(variants) - len(buggy) >= 2
    for v in buggy:
        assert set(v.catches) <= names, v.name


def test_does_every_variant_s_code_run_and_define_the_graded_names():
    source = nbformat.read(SOURCE_DIR / ID / f"{ID}.ipynb", as_version=4)
    subset = _subset()
    for variant in variants_of(ID).values():
        nb = nbformat.from_dict(json.loads(json.dumps(source)))
        apply_cells(nb, variant)
        namespace = model_namespace(nb, ID)
        namespace["test_set"] = subset.dataset  # the notebook's global, for the test-set bug
        for name in (
            "standardisation_images",
            "make_transforms",
            "MLP",
            "train_epoch",
            "evaluate",
            "run_search",
        ):
            assert callable(namespace[name]), (variant.name, name)
        mean, std = namespace["standardisation_images"](subset)
        train_tf, eval_tf = namespace["make_transforms"](torch.zeros(28, 28), torch.ones(28, 28))
        assert eval_tf(subset[0][0]).shape == (1, 28, 28), variant.name
        assert namespace["MLP"](2, 16, "tanh", 0.1)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_do_the_statistics_variants_compute_what_their_description_says():
    source = nbformat.read(SOURCE_DIR / ID / f"{ID}.ipynb", as_version=4)
    subset = _subset()
    right = standardisation_images(subset)
    for name, differs in (
        ("stats_all_images", True),
        ("std_without_epsilon", True),
        ("standardise_module", False),
    ):
        nb = nbformat.from_dict(json.loads(json.dumps(source)))
        apply_cells(nb, variants_of(ID)[name])
        got = model_namespace(nb, ID)["standardisation_images"](subset)
        same = all(torch.allclose(a, b, atol=1e-7, rtol=0) for a, b in zip(got, right, strict=True))
        assert same != differs, name
