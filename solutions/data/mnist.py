"""Is this real MNIST? MNIST cannot always be downloaded (not here), and a generated stand-in in
the same format (`fixtures.py`) loads just the same, so every result trained on MNIST records
which of the two it saw, and how that was told."""

import struct
from dataclasses import dataclass
from pathlib import Path

from torchvision import datasets as tv_datasets
from torchvision.datasets.utils import check_integrity

from solutions.data.datasets import downloaded_root

__all__ = ["FIXTURE", "MnistSource", "describe_mnist", "find_mnist"]

FIXTURE = "generated MNIST-format fixture, not real MNIST"
# The real split sizes: 60,000 training and 10,000 test images.
REAL_SIZES = (60000, 10000)


@dataclass(frozen=True)
class MnistSource:
    """Where the MNIST files were read from, whether they are the real MNIST, and why."""

    root: Path
    real: bool
    description: str  # what the data is
    evidence: str  # how that was told


def _idx_count(path: Path) -> int:
    """Number of items in an IDX file: the big-endian uint32 after the magic number."""
    with open(path, "rb") as f:
        return struct.unpack(">II", f.read(8))[1]


def describe_mnist(root: Path) -> MnistSource:
    """Tell real MNIST from a stand-in under `root` (torchvision's layout, `<root>/MNIST/raw`).

    Real when the `.gz` files torchvision downloads match their published MD5 sums; without
    `.gz` files, when the unpacked files hold the real split sizes (60,000 and 10,000).
    """
    raw = Path(root) / "MNIST" / "raw"
    resources = [(raw / Path(url).name, md5) for url, md5 in tv_datasets.MNIST.resources]
    if all(path.is_file() for path, _ in resources):
        if all(check_integrity(str(path), md5) for path, md5 in resources):
            return MnistSource(root, True, "real MNIST", "published MD5 sums verified")
        return MnistSource(root, False, FIXTURE, "its files differ from the published MD5 sums")
    sizes = (
        _idx_count(raw / "train-labels-idx1-ubyte"),
        _idx_count(raw / "t10k-labels-idx1-ubyte"),
    )
    evidence = f"no .gz files to verify; {sizes[0]} training and {sizes[1]} test images"
    if sizes == REAL_SIZES:
        return MnistSource(root, True, "real MNIST", evidence)
    return MnistSource(root, False, FIXTURE, evidence)


def find_mnist(data_root: Path | None = None) -> MnistSource:
    """`data_root`, or the root `resolve_root` finds (downloading MNIST there when online)."""
    return describe_mnist(downloaded_root("mnist", data_root))
