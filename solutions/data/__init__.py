"""Data layer of the course: where the files are, torchvision loading, tensor batches, fixtures.

- `roots`: find a data set's root (`$DLGRADE_DATA`, `./data`, the Debian Fashion-MNIST
  package, download) or say clearly how to get it.
- `datasets`: torchvision's own classes, and whole splits decoded once into tensors.
- `tensor_loader`: batches by index slices of on-device tensors, batched augmentations.
- `blind`: a copy of a root with the test labels withheld (for the grader's sandbox).
- `fixtures`: small generated data sets in the real on-disk formats, for offline tests.
"""

from solutions.data.blind import blinded_root
from solutions.data.datasets import (
    DATASETS,
    DatasetInfo,
    UnverifiedCIFAR10,
    load_split,
    normalize,
    torchvision_dataset,
)
from solutions.data.fixtures import (
    FIXTURE_SIZES,
    write_cifar10_like,
    write_fixtures,
    write_mnist_like,
)
from solutions.data.roots import (
    DATA_ENV,
    DEBIAN_FASHION_MNIST,
    DataNotFoundError,
    DataRoot,
    has_layout,
    resolve_root,
    unpack_idx_gz,
)
from solutions.data.tensor_loader import (
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    TensorLoader,
)

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "DEBIAN_FASHION_MNIST",
    "FIXTURE_SIZES",
    "Compose",
    "DataNotFoundError",
    "DataRoot",
    "DatasetInfo",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "TensorLoader",
    "UnverifiedCIFAR10",
    "blinded_root",
    "has_layout",
    "load_split",
    "normalize",
    "resolve_root",
    "torchvision_dataset",
    "unpack_idx_gz",
    "write_cifar10_like",
    "write_fixtures",
    "write_mnist_like",
]
