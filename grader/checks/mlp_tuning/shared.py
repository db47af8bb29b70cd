"""What the parts of `mlp_tuning`'s own checks share: the sheet's constants, a data set of the
grader's own images, how a returned value is recorded, and how a check over every setting of an
observation is declared."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

SIDE = 28  # Fashion-MNIST images are 28x28
CLASSES = 10
ARCHITECTURE = ("hidden_layers", "width", "activation", "dropout")  # MLP's arguments
SWITCHES = ("flip", "rotation", "resized_crop")  # make_transforms' augmentation switches
EPSILON = 1e-5  # the sheet's addition to the standard deviation


class ImageSet(Dataset):
    """A stand-in for torchvision's FashionMNIST: `.data` uint8 (N, 28, 28), `.targets` (N,),
    and items (PIL image, label), as the notebook's functions expect of the real one."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor):
        self.data, self.targets = data, targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        return Image.fromarray(self.data[index].numpy()), int(self.targets[index])


def unlabelled(data: torch.Tensor) -> ImageSet:
    """uint8 (N, 28, 28) images as a data set whose labels are all 0."""
    return ImageSet(data, torch.zeros(len(data), dtype=torch.long))


def as_tensor(value: Any) -> torch.Tensor | None:
    """A float32 CPU copy of a returned tensor or array, None for anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().clone()
    if hasattr(value, "__array__") and not isinstance(value, str | bytes):
        try:
            return torch.as_tensor(value).float().clone()
        except Exception:  # noqa: BLE001 - not array-like after all
            return None
    return None


def what(value: Any) -> str:
    """What a returned value is, for a message: "a tensor of shape (28, 28)", "a float"."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"
