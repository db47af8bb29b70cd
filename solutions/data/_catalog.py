"""What the course knows about each data set: torchvision class, folder, files, statistics.

Kept apart from `datasets.py` so that `roots.py` can read it without an import cycle;
`datasets.py` re-exports both names. It imports nothing heavy: the course's
`nbgrader_config.py` finds the data through `roots.py`, and every nbgrader command loads that
file, so torchvision is imported only when a dataset class is asked for
(`DatasetInfo.torchvision_class`). The file names, class names and download address written
here are torchvision's own; a test compares them with torchvision's classes.
"""

import importlib
from dataclasses import dataclass
from types import MappingProxyType

# MNIST and Fashion-MNIST publish the same four IDX files (torchvision's `resources`).
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one data set.

    `folder` is the directory under the data root that torchvision reads (`<root>/<folder>/`);
    `files` the paths under `folder` that torchvision checks for before loading;
    `mean`/`std` are per-channel statistics of the training split on the 0..1 scale;
    `image_shape` is (C, H, W); `title` the name people write; `test_size` the number of
    images of the published test split.
    """

    name: str
    title: str
    class_name: str  # of torchvision.datasets
    folder: str
    files: tuple[str, ...]
    download_url: str  # where torchvision downloads it from (its first mirror)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    test_size: int = 10_000

    @property
    def torchvision_class(self) -> type:
        """torchvision's dataset class (imports torchvision)."""
        return getattr(importlib.import_module("torchvision.datasets"), self.class_name)


DATASETS = MappingProxyType(
    {
        "mnist": DatasetInfo(
            name="mnist",
            title="MNIST",
            class_name="MNIST",
            folder="MNIST",
            files=tuple(f"raw/{name}" for name in _IDX_FILES),
            download_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
            mean=(0.1307,),
            std=(0.3081,),
            # torchvision's own names, as `MNIST(...).classes` gives them.
            classes=tuple(
                f"{i} - {word}"
                for i, word in enumerate(
                    "zero one two three four five six seven eight nine".split()
                )
            ),
            image_shape=(1, 28, 28),
        ),
        "fashion_mnist": DatasetInfo(
            name="fashion_mnist",
            title="Fashion-MNIST",
            class_name="FashionMNIST",
            folder="FashionMNIST",
            files=tuple(f"raw/{name}" for name in _IDX_FILES),
            download_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            mean=(0.2860,),
            std=(0.3530,),
            classes=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            image_shape=(1, 28, 28),
        ),
        "cifar10": DatasetInfo(
            name="cifar10",
            title="CIFAR-10",
            class_name="CIFAR10",
            folder="cifar-10-batches-py",
            files=(*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
            download_url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            classes=(
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ),
            image_shape=(3, 32, 32),
        ),
    }
)


def dataset_info(name: str) -> DatasetInfo:
    """Look up `name` in DATASETS, with an error that lists the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown dataset {name!r}; expected one of: {known}") from None
