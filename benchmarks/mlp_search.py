"""Trials per minute of the `mlp_tuning` search: tensor-resident path against DataLoader path.

The same few trials (configurations drawn from the notebook's SEARCH_SPACE by Optuna's random
sampler with a fixed seed, each trained for one epoch on the real 55,000-image training split
and scored on the 5,000 validation images, no pruning) run twice:

* tensor path: the reference search's `train_config` (whole splits as tensors, batched
  flip / rotation / resized crop, fused Adam), what `python -m solutions search` runs;
* DataLoader path: the notebook's `train_and_validate` (torchvision PIL transforms per image,
  a DataLoader with num_workers=0), what a student's `run_search` runs.

    PYTHONPATH=. python benchmarks/mlp_search.py --trials 6 --threads 2

Run it on an otherwise idle machine (`flock /tmp/dlgrade-cpu.lock ...` on the shared one).
"""

from __future__ import annotations

import argparse
import os
import time

import optuna
import torch

from solutions.data import resolve_root
from solutions.mlp_tuning import config as settings
from solutions.mlp_tuning.search import load_search_data, train_config
from solutions.mlp_tuning.student import (
    SEARCH_SPACE,
    split_train_validation,
    standardisation_images,
    suggest_config,
    train_and_validate,
)


def configurations(n: int, seed: int) -> list[dict]:
    """n configurations drawn at random from the notebook's space (reproducible)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        drawn.append(suggest_config(trial, SEARCH_SPACE))
        study.tell(trial, 0.0)
    return drawn


def _describe(c: dict) -> str:
    # f: flip, r: rotation, c: resized crop.
    aug = "".join(
        a for a, k in zip("frc", ("flip", "rotation", "resized_crop"), strict=True) if c[k]
    )
    aug = aug or "-"
    return (
        f"{c['hidden_layers']}x{c['width']} {c['activation']:<7} bs {c['batch_size']:<3} "
        f"norm {'y' if c['normalise'] else 'n'} aug {aug:<3}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    data = load_search_data(settings.FULL)
    from torchvision.datasets import FashionMNIST

    full = FashionMNIST(str(resolve_root("fashion_mnist").root), train=True)
    train_set, val_set = split_train_validation(full, settings.VALIDATION_SIZE)
    stats = standardisation_images(train_set)

    rows, totals = [], {"tensor": 0.0, "dataloader": 0.0}
    for number, config in enumerate(configurations(args.trials, args.seed)):
        seed = 1000 + number
        started = time.perf_counter()
        try:
            _, curve = train_config(config, data, args.epochs, seed=seed)
            tensor_acc = curve.val_accuracy[-1]
        except optuna.TrialPruned:
            tensor_acc = float("nan")  # diverged
        tensor_s = time.perf_counter() - started
        started = time.perf_counter()
        try:
            _, loader_curve = train_and_validate(
                config, train_set, val_set, stats, args.epochs, seed=seed, device="cpu"
            )
            loader_acc = loader_curve["val_accuracy"][-1]
        except optuna.TrialPruned:
            loader_acc = float("nan")
        loader_s = time.perf_counter() - started
        totals["tensor"] += tensor_s
        totals["dataloader"] += loader_s
        rows.append((_describe(config), tensor_s, tensor_acc, loader_s, loader_acc))
        print(f"trial {number}: {rows[-1][0]} tensor {tensor_s:.1f} s, DataLoader {loader_s:.1f} s")

    print(f"\n{args.trials} trials of {args.epochs} epoch(s), {args.threads} threads\n")
    print("| trial configuration | tensor s | val acc | DataLoader s | val acc |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for desc, ts, ta, ls, la in rows:
        print(f"| {desc} | {ts:.1f} | {ta:.4f} | {ls:.1f} | {la:.4f} |")
    per_min = {k: 60 * args.trials / v for k, v in totals.items()}
    print(
        f"\ntrials per minute: tensor {per_min['tensor']:.2f}, DataLoader "
        f"{per_min['dataloader']:.2f} ({totals['dataloader'] / totals['tensor']:.1f}x)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
