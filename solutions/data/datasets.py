"""Real data through torchvision's own dataset classes, and whole splits as tensors."""

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets as tv_datasets
from torchvision.datasets.utils import check_integrity

from solutions.data._catalog import DATASETS, DatasetInfo, dataset_info
from solutions.data.roots import resolve_root

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "UnverifiedCIFAR10",
    "downloaded_root",
    "load_split",
    "normalize",
    "torchvision_dataset",
]


class UnverifiedCIFAR10(tv_datasets.CIFAR10):
    """CIFAR10 that checks only that its files exist, not their MD5 sums.

    For generated fixtures only: their bytes cannot match the published checksums. Real data
    should go through `torchvision.datasets.CIFAR10`, which verifies every file.
    """

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        return all(
            check_integrity(os.path.join(folder, name))
            for name, _ in self.train_list + self.test_list
        )

    def _load_meta(self) -> None:
        # Same as the parent, minus the MD5 check of batches.meta.
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        if not check_integrity(path):
            raise RuntimeError(f"Dataset metadata file not found: {path}")
        with open(path, "rb") as f:
            meta = pickle.load(f, encoding="latin1")
        self.classes = meta[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def torchvision_dataset(
    name: str,
    train: bool,
    transform: Callable | None = None,
    root: Path | None = None,
    *,
    verify: bool = True,
):
    """Build torchvision's dataset object for `name` ("mnist", "fashion_mnist", "cifar10").

    The root comes from `resolve_root` unless given (a given root is never downloaded into).
    `verify=False` only matters for CIFAR-10: it skips the MD5 checks (generated fixtures).
    """
    info = dataset_info(name)
    if root is None:
        found = resolve_root(name)
        root, download = found.root, found.download
    else:
        download = False
    cls = info.torchvision_class
    if not verify and cls is tv_datasets.CIFAR10:
        cls = UnverifiedCIFAR10
    return cls(root=str(root), train=train, transform=transform, download=download)


def downloaded_root(name: str, root: Path | None = None) -> Path:
    """`root`, or the root `resolve_root` finds for `name`, where both splits are downloaded
    first when it says so (a given root is never downloaded into)."""
    if root is not None:
        return Path(root)
    found = resolve_root(name)
    if found.download:
        for train in (True, False):
            torchvision_dataset(name, train)
    return found.root


def load_split(
    name: str,
    train: bool,
    *,
    root: Path | None = None,
    device: torch.device | str = "cpu",
    verify: bool = True,
) -> tuple[Tensor, Tensor]:
    """Decode a whole split at once: images uint8 (N, C, H, W) and labels int64 (N,).

    Reads the decoded arrays torchvision already holds (`.data`, `.targets`) instead of going
    through `__getitem__`, which builds one PIL image per sample.
    """
    ds = torchvision_dataset(name, train, root=root, verify=verify)
    data = ds.data
    if isinstance(data, np.ndarray):
        # CIFAR-10: numpy (N, H, W, C), a transposed view of the files' (N, C, H, W) rows.
        images = torch.from_numpy(data).permute(0, 3, 1, 2)
    else:
        # MNIST family: uint8 tensor (N, H, W) -> (N, 1, H, W).
        images = data.unsqueeze(1)
    images = images.contiguous().to(device)
    labels = torch.as_tensor(ds.targets, dtype=torch.int64).to(device)
    return images, labels


def normalize(
    images_uint8: Tensor, mean: tuple[float, ...] | float, std: tuple[float, ...] | float
) -> Tensor:
    """float32 (N, C, H, W) = (x / 255 - mean) / std, with one mean/std per channel."""
    x = images_uint8.to(torch.float32) / 255.0
    # (C,) -> (1, C, 1, 1) so that it broadcasts over batch and pixels.
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
    return (x - mean_t) / std_t
