"""The reference hyper-parameter search of `mlp_tuning` on the tensor-resident data path.

`python -m solutions search mlp_tuning [--storage URL] [--workers N] [--trials N] [--quick]`

The search follows the notebook's `run_search` (same space, same coarse-to-fine stages, same
narrowing, same training recipe) but trains on whole splits held as tensors with batched
augmentation (`solutions.data.tensor_loader`), which is what makes 40 trials fit in well under
an hour on 2 CPU cores. Each stage is one Optuna study in `storage`; with N workers the parent
creates the stage's study and starts N processes that each run
`optuna.load_study(...).optimize(...)` for their share of the trials, so several processes, or
machines given the same database URL, fill one study through Optuna's own RDB storage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import optuna
import torch
from sqlalchemy.engine import make_url
from torch import Tensor

from solutions.data import (
    Compose,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    TensorLoader,
    load_split,
)
from solutions.mlp_tuning import config as settings
from solutions.mlp_tuning.student import (
    ARCHITECTURE,
    BASELINE,
    MLP,
    SEARCH_SPACE,
    _pruning_hook,
    best_trials,
    narrow_space,
    split_train_validation,
    stage_sizes,
    standardisation_images,
    suggest_config,
)
from solutions.paths import REPO_ROOT, REPORTS_DIR
from solutions.training import History, accuracy, train_pass

ID = "mlp_tuning"
BEST_CONFIG = Path(__file__).with_name("best_config.json")


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class SearchData:
    """The training and validation splits as tensors on one device, and the training split's
    standardisation images. Images are float32 (N, 1, 28, 28) on the 0..1 scale."""

    train_images: Tensor
    train_labels: Tensor
    val_images: Tensor
    val_labels: Tensor
    mean_image: Tensor  # (28, 28)
    std_image: Tensor  # (28, 28)

    def standardise(self, x: Tensor) -> Tensor:
        return (x - self.mean_image) / self.std_image


def load_search_data(
    budget: settings.SearchBudget,
    *,
    root: Path | None = None,
    device: torch.device | str = "cpu",
    seed: int = settings.SPLIT_SEED,
) -> SearchData:
    """Fashion-MNIST's training images split as in the notebook; statistics of the training
    part, computed by the notebook's own `standardisation_images`."""
    images, labels = load_split("fashion_mnist", True, root=root)  # uint8 (60000, 1, 28, 28)
    train, val = split_train_validation(range(len(labels)), budget.validation_size, seed)
    train_idx, val_idx = list(train.indices), list(val.indices)
    # The student's function reads `.dataset.data` (N, 28, 28) and `.indices`, as on a Subset.
    subset = SimpleNamespace(dataset=SimpleNamespace(data=images[:, 0]), indices=train_idx)
    mean_image, std_image = standardisation_images(subset)
    if budget.train_images is not None:
        train_idx = train_idx[: budget.train_images]
    as_float = lambda idx: (images[idx].float() / 255).to(device)  # noqa: E731
    return SearchData(
        train_images=as_float(train_idx),
        train_labels=labels[train_idx].to(device),
        val_images=as_float(val_idx),
        val_labels=labels[val_idx].to(device),
        mean_image=mean_image.to(device),
        std_image=std_image.to(device),
    )


# ---------------------------------------------------------------- one training run


def batch_transform(config: dict, data: SearchData):
    """The training transform of `config` for whole batches: augment on 0..1, then standardise.

    Same order and parameters as the notebook's `make_transforms` (PIL per image); a rotation's
    corners are black (0) because it runs before standardisation, as torchvision's does.
    """
    steps = []
    if config["flip"]:
        steps.append(RandomHorizontalFlip(0.5))
    if config["rotation"]:
        steps.append(RandomRotation(settings.ROTATION_DEGREES))
    if config["resized_crop"]:
        steps.append(RandomResizedCrop(settings.CROP_SCALE, settings.CROP_RATIO))
    augment = Compose(steps)
    if config["normalise"]:
        return lambda x: data.standardise(augment(x))
    return augment


def train_config(
    config: dict,
    data: SearchData,
    epochs: int,
    reports: int = 1,
    *,
    seed: int,
    report=None,
    train_accuracy: bool = False,
) -> tuple[MLP, History]:
    """Train an MLP with `config` as the notebook's `train_and_validate` does (its recipe, parts
    and pruning hook), on tensors, with Adam fused on CPU (the same update, about 2.5x faster for
    small batches). The history has one point per report: training loss, validation and, when
    asked for, training accuracy without augmentation."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    device = data.train_images.device
    transform = batch_transform(config, data)
    val_images = data.standardise(data.val_images) if config["normalise"] else data.val_images
    train_eval = data.standardise(data.train_images) if config["normalise"] else data.train_images
    model = MLP(**{k: config[k] for k in ARCHITECTURE}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], fused=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    curve = History()  # one point per report: per epoch when `reports` is 1
    n = len(data.train_labels)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for part in range(reports):
            started = time.perf_counter()
            idx = order[part::reports]  # a random part of the epoch, already shuffled
            loader = TensorLoader(
                data.train_images[idx],
                data.train_labels[idx],
                config["batch_size"],
                transform=transform,
            )
            mean_loss = train_pass(model, optimizer, loader)
            if not math.isfinite(mean_loss):
                raise optuna.TrialPruned(f"the training loss diverged ({mean_loss})")
            curve.loss.append(mean_loss)
            curve.val_accuracy.append(accuracy(model, val_images, data.val_labels))
            if train_accuracy:
                curve.train_accuracy.append(accuracy(model, train_eval, data.train_labels))
            curve.seconds.append(time.perf_counter() - started)
            if report is not None:
                report(curve.val_accuracy[-1], len(curve.val_accuracy))
        scheduler.step()
    return model, curve


# ---------------------------------------------------------------- storage and workers


def storage_kind(url: str) -> str:
    """The kind of database `url` names: "sqlite", "postgresql", ..."""
    return url.split(":", 1)[0].split("+", 1)[0]


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage for `url`; heartbeats mark trials of a dead worker as failed."""
    if url.startswith("sqlite"):
        # Two worker processes on one SQLite file wait for each other's writes.
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url, heartbeat_interval=20, grace_period=60)


def run_worker(
    study_name: str,
    url: str,
    n_trials: int,
    *,
    seed: int,
    worker: int,
    quick: bool,
) -> None:
    """Join the stage study `study_name` and run `n_trials` of its trials (the data: where
    DLGRADE_DATA or the usual rules find it)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = settings.QUICK if quick else settings.FULL
    data = load_search_data(budget)
    storage = open_storage(url)
    probe = optuna.load_study(study_name=study_name, storage=storage)
    space, stage = probe.user_attrs["space"], probe.user_attrs["stage"]
    index = probe.user_attrs["stage_index"]
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        # Workers must not draw the same points: each has its own seed. constant_liar makes TPE
        # treat the trials other workers are running as bad, so it looks elsewhere.
        sampler=optuna.samplers.TPESampler(
            seed=seed * 1000 + index * 10 + worker,
            n_startup_trials=min(10, probe.user_attrs["size"]),
            constant_liar=True,
        ),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, space)
        torch_seed = seed * 100_003 + index * 1_009 + trial.number  # recorded: reproducible
        trial.set_user_attr("seed", torch_seed)
        trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}")
        report = _pruning_hook(trial)
        _, curve = train_config(
            config, data, stage["epochs"], stage["reports"], seed=torch_seed, report=report
        )
        return curve.val_accuracy[-1]

    study.optimize(objective, n_trials=n_trials)


def run_stage_workers(study_name, url, n, *, seed, workers, quick) -> None:
    """Run a stage's n trials: in this process for one worker, else in `workers` processes."""
    if workers == 1:
        run_worker(study_name, url, n, seed=seed, worker=0, quick=quick)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    command = [sys.executable, "-m", "solutions", "search", ID, "--storage", url, "--join"]
    command += [study_name, "--seed", str(seed)] + (["--quick"] if quick else [])
    # n trials dealt out to the workers: exactly n in all, none run twice.
    shares = [n // workers + (i < n % workers) for i in range(workers)]
    procs = [
        subprocess.Popen(
            command + ["--trials", str(k), "--worker-index", str(i)], cwd=REPO_ROOT, env=env
        )
        for i, k in enumerate(shares)
        if k > 0
    ]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"search workers of {study_name} exited with {codes}")


# ---------------------------------------------------------------- the whole search


def run_search(
    url: str,
    budget: settings.SearchBudget,
    *,
    workers: int = 1,
    seed: int = 0,
    quick: bool = False,
) -> dict:
    """All stages, coarse to fine; the best trial of the last stage is the chosen one. Returns
    what `python -m solutions train mlp_tuning` reads: the chosen configuration, the seed that
    reproduces its trial, the search summary and provenance."""
    from solutions.provenance import provenance  # imports torchvision: not in the workers

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    base = f"{ID}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = open_storage(url)
    space, previous, names, stages = SEARCH_SPACE, [], [], []
    for index, (stage, size) in enumerate(stage_sizes(budget.n_trials, budget.stages), start=1):
        study_name = f"{base}-stage{index}"
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
        for key, value in (("space", space), ("stage", stage), ("stage_index", index)):
            study.set_user_attr(key, value)
        study.set_user_attr("size", size)
        # The best settings so far, now trained for longer; the coarse stage starts from the
        # notebook's baseline.
        for trial in previous[:size]:  # a queued trial beyond the budget would stay WAITING
            study.enqueue_trial(
                trial.params, user_attrs={"from": f"stage{index - 1}:{trial.number}"}
            )
        if not previous:
            study.enqueue_trial(BASELINE, user_attrs={"from": "baseline"})
        stage_started = time.perf_counter()
        run_stage_workers(study_name, url, size, seed=seed, workers=workers, quick=quick)
        study = optuna.load_study(study_name=study_name, storage=storage)
        previous = best_trials(study, max(stage["keep"], 1))
        stages.append(_stage_summary(study, stage, time.perf_counter() - stage_started))
        names.append(study_name)
        space = narrow_space(space, previous[: stage["keep"]] if stage["keep"] else previous)
    best = best_trials(study, 1)[0]
    summary = {
        "best_validation_accuracy": round(best.value, 4),
        **{key: sum(s[key] for s in stages) for key in ("trials", "complete", "pruned", "failed")},
        "wall_time_s": round(time.perf_counter() - started, 1),
        "storage": storage_kind(url),
        "workers": workers,
        "sampler": "TPE",
        "pruner": "median (diverged trials pruned too)",
        "stages": stages,
    }
    return {
        "config": {**best.params, "epochs": budget.stages[len(stages) - 1]["epochs"]},
        "seed": best.user_attrs["seed"],
        "validation_accuracy": round(best.value, 4),
        "trial": {"study": names[-1], "number": best.number},
        "search": summary,
        "quick": quick,
        "provenance": provenance(
            torch.device("cpu"), seed, storage=storage_kind(url), studies=names
        ),
    }


def _stage_summary(study: optuna.Study, stage: dict, seconds: float) -> dict:
    states = [t.state for t in study.trials]
    best = best_trials(study, 1)
    return {
        "study": study.study_name,
        "epochs": stage["epochs"],
        "trials": len(states),
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "failed": states.count(optuna.trial.TrialState.FAIL),
        "best_validation_accuracy": round(best[0].value, 4) if best else None,
        "wall_time_s": round(seconds, 1),
    }


# ---------------------------------------------------------------- command line


def search_command(args: argparse.Namespace) -> int:
    """`python -m solutions search mlp_tuning ...` (and its --join workers)."""
    budget = settings.QUICK if args.quick else settings.FULL
    if args.trials:
        budget = replace(budget, n_trials=args.trials)
    if args.join:
        if not args.storage:
            raise SystemExit("error: --join needs --storage (the study's database URL)")
        run_worker(
            args.join,
            args.storage,
            args.trials or 1,
            seed=args.seed,
            worker=args.worker_index,
            quick=args.quick,
        )
        return 0
    out_dir = args.output_dir or REPORTS_DIR / ID / ("quick" if args.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlp-search-") as tmp:
        default_db = (Path(tmp) if args.quick else out_dir) / "search.db"
        url = args.storage or f"sqlite:///{default_db}"
        record = run_search(url, budget, workers=args.workers, seed=args.seed, quick=args.quick)
        from solutions.mlp_tuning.plots import search_figures

        figures = search_figures(url, record["provenance"]["studies"], out_dir, quick=args.quick)
    path = out_dir / "best_config.json" if args.quick or args.output_dir else BEST_CONFIG
    path.write_text(json.dumps(record, indent=2) + "\n")
    s = record["search"]
    print(
        f"{ID}: best validation accuracy {s['best_validation_accuracy']:.4f} after {s['trials']} "
        f"trials ({s['pruned']} pruned, {s['failed']} failed) in {s['wall_time_s']:.0f} s on "
        f"{s['storage']} with {s['workers']} worker(s)"
    )
    print(f"best configuration: {json.dumps(record['config'])}")
    print(f"wrote {path} and {', '.join(str(f) for f in figures)}")
    if args.storage or not args.quick:  # a quick run's own database was temporary
        where = make_url(url).render_as_string(hide_password=True)
        print(f"trials kept in {where}, studies {', '.join(record['provenance']['studies'])}")
    return 0
