"""Seconds per epoch: whole-split tensors + TensorLoader against torchvision + DataLoader.

Both paths train the same ResMLP (same initial weights, SGD lr 0.05 momentum 0.9, same batch
size) on the real Fashion-MNIST training split, then report test accuracy, so that the speed
comparison is between equivalent runs. The textbook path is torchvision's FashionMNIST with
ToTensor + Normalize and a shuffling DataLoader (num_workers=0). A second pair adds flip +
rotation: batched on tensors, against torchvision.transforms.v2 on each PIL image.

    python benchmarks/data_paths.py --epochs 1 --batch-size 64 --threads 2

On a machine shared with other work, two intra-op threads make small-batch steps 10-20x slower
whenever the second core is busy (measured: 0.5 s per 100 steps when quiet, 9-12 s during
bursts); the load averages printed before and after show whether that happened. `--threads 1`
is slower when quiet but much steadier.
"""

import argparse
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.transforms import v2
from tqdm import tqdm

from solutions.data import (
    DATASETS,
    Compose,
    RandomHorizontalFlip,
    RandomRotation,
    TensorLoader,
    load_split,
    normalize,
    resolve_root,
    torchvision_dataset,
)
from solutions.res_dense_nets.student import ResMLP

INFO = DATASETS["fashion_mnist"]


@dataclass(frozen=True)
class Result:
    """One timed run: mean seconds per training epoch and test accuracy afterwards."""

    path: str
    seconds_per_epoch: float
    test_accuracy: float


def _train(
    name: str,
    make_batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    n_batches: int,
    epochs: int,
    seed: int,
    test: tuple[torch.Tensor, torch.Tensor],
) -> Result:
    """Train a fresh ResMLP for `epochs`, timing only the epochs, then score it on `test`."""
    torch.manual_seed(seed)  # same initial weights and data order seed for every path
    model = ResMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        batches = tqdm(make_batches(), total=n_batches, desc=f"{name} {epoch + 1}", leave=False)
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
    model.eval()
    x_test, y_test = test
    with torch.no_grad():
        correct = sum(
            (model(x).argmax(1) == y).sum().item() for x, y in TensorLoader(x_test, y_test, 1000)
        )
    return Result(name, sum(seconds) / len(seconds), correct / len(y_test))


def _iterate(name: str, make_batches: Callable[[], Iterable], n_batches: int) -> float:
    """Seconds for one pass over the batches with no model: the data path's own cost."""
    start = time.perf_counter()
    for _ in tqdm(make_batches(), total=n_batches, desc=f"{name} (data only)", leave=False):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    found = resolve_root("fashion_mnist")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average before (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    print(
        f"Fashion-MNIST from {found.root} ({found.source}); threads {args.threads}, "
        f"batch size {args.batch_size}, epochs {args.epochs}"
    )

    start = time.perf_counter()
    train_u8, y_train = load_split("fashion_mnist", True, root=found.root)
    x_train = normalize(train_u8, INFO.mean, INFO.std)  # (60000, 1, 28, 28) float32
    test_u8, y_test = load_split("fashion_mnist", False, root=found.root)
    test = (normalize(test_u8, INFO.mean, INFO.std), y_test)
    decode_s = time.perf_counter() - start
    print(f"load_split + normalize, both splits: {decode_s:.2f} s (once)")

    bs = args.batch_size
    # Rotated-in corners: black in normalised units, as torchvision fills before Normalize.
    black = (0.0 - INFO.mean[0]) / INFO.std[0]
    batched_aug = Compose([RandomHorizontalFlip(), RandomRotation(10, fill=black)])
    # The textbook pipeline: PIL image -> ToTensor -> Normalize, one sample at a time.
    to_normalised = [transforms.ToTensor(), transforms.Normalize(INFO.mean, INFO.std)]
    textbook = transforms.Compose(to_normalised)
    textbook_aug = transforms.Compose(
        [v2.RandomHorizontalFlip(), v2.RandomRotation(10), *to_normalised]
    )

    def tensor_batches(transform=None):
        gen = torch.Generator().manual_seed(args.seed)
        loader = TensorLoader(
            x_train, y_train, bs, shuffle=True, generator=gen, transform=transform
        )
        return lambda: loader, len(loader)

    def dataloader_batches(transform):
        ds = torchvision_dataset("fashion_mnist", True, transform=transform, root=found.root)
        gen = torch.Generator().manual_seed(args.seed)
        loader = DataLoader(ds, batch_size=bs, shuffle=True, num_workers=0, generator=gen)
        return lambda: loader, len(loader)

    runs = [
        ("tensor", *tensor_batches()),
        ("dataloader", *dataloader_batches(textbook)),
        ("tensor + batched flip/rot", *tensor_batches(batched_aug)),
        ("dataloader + v2 flip/rot", *dataloader_batches(textbook_aug)),
    ]
    results = [_train(name, make, n, args.epochs, args.seed, test) for name, make, n in runs]
    data_only = {name: _iterate(name, make, n) for name, make, n in runs}

    width = max(len(r.path) for r in results)
    # Other work on a shared machine slows small-batch training a lot: show how busy it was.
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average after the runs (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    print()
    print(f"| {'path':<{width}} | s/epoch | data only s | test acc |")
    print(f"| {'-' * width} | ------: | ----------: | -------: |")
    for r in results:
        print(
            f"| {r.path:<{width}} | {r.seconds_per_epoch:7.2f} | {data_only[r.path]:11.2f} "
            f"| {r.test_accuracy:8.4f} |"
        )
    per_epoch = {r.path: r.seconds_per_epoch for r in results}
    print()
    for label, fast, slow in (
        ("no augmentation", "tensor", "dataloader"),
        ("flip + rotation", "tensor + batched flip/rot", "dataloader + v2 flip/rot"),
    ):
        print(
            f"speed-up, {label}: {per_epoch[slow] / per_epoch[fast]:5.1f}x per training epoch, "
            f"{data_only[slow] / data_only[fast]:6.1f}x for the data alone"
        )


if __name__ == "__main__":
    main()
