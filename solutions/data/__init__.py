"""Data layer of the course: where the files are, torchvision loading, tensor batches, fixtures.

- `roots`: find a data set's root (`$DLGRADE_DATA`, `./data`, the Debian Fashion-MNIST
  package, download) or say clearly how to get it.
- `datasets`: torchvision's own classes, and whole splits decoded once into tensors.
- `tensor_loader`: batches by index slices of on-device tensors, batched augmentations.
- `blind`: a copy of a root with the test labels withheld (for the grader's sandbox).
- `fixtures`: small generated data sets in the real on-disk formats, for offline tests.

The names below are imported from their module when first used: finding a root (what the
course's `nbgrader_config.py` does for every nbgrader command) must not import torch.
"""

import importlib

_WHERE = {
    "blinded_root": "blind",
    **dict.fromkeys(
        ("DATASETS", "DatasetInfo", "UnverifiedCIFAR10", "load_split", "normalize"), "datasets"
    ),
    **dict.fromkeys(("downloaded_root", "torchvision_dataset"), "datasets"),
    **dict.fromkeys(
        (
            "FIXTURE_SIZES",
            "STAND_IN_MARKER",
            "is_stand_in",
            "write_cifar10_like",
            "write_fixtures",
            "write_mnist_like",
        ),
        "fixtures",
    ),
    **dict.fromkeys(
        (
            "DATA_ENV",
            "DEBIAN_FASHION_MNIST",
            "DataNotFoundError",
            "DataRoot",
            "has_layout",
            "resolve_root",
            "unpack_idx_gz",
        ),
        "roots",
    ),
    **dict.fromkeys(
        (
            "Compose",
            "RandomCrop",
            "RandomHorizontalFlip",
            "RandomResizedCrop",
            "RandomRotation",
            "TensorLoader",
        ),
        "tensor_loader",
    ),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
