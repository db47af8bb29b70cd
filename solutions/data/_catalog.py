"""What the course knows about each data set: torchvision class, folder, statistics, classes.

Kept apart from `datasets.py` so that `roots.py` can read it without an import cycle;
`datasets.py` re-exports both names.
"""

from dataclasses import dataclass
from types import MappingProxyType

from torchvision import datasets as tv_datasets


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one data set.

    `folder` is the directory under the data root that torchvision reads (`<root>/<folder>/`);
    `mean`/`std` are per-channel statistics of the training split on the 0..1 scale;
    `image_shape` is (C, H, W).
    """

    name: str
    torchvision_class: type
    folder: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]


DATASETS = MappingProxyType(
    {
        "mnist": DatasetInfo(
            name="mnist",
            torchvision_class=tv_datasets.MNIST,
            folder="MNIST",
            mean=(0.1307,),
            std=(0.3081,),
            # torchvision's own names ("0 - zero", ...), as `MNIST(...).classes` gives them.
            classes=tuple(tv_datasets.MNIST.classes),
            image_shape=(1, 28, 28),
        ),
        "fashion_mnist": DatasetInfo(
            name="fashion_mnist",
            torchvision_class=tv_datasets.FashionMNIST,
            folder="FashionMNIST",
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
            torchvision_class=tv_datasets.CIFAR10,
            folder="cifar-10-batches-py",
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
