"""A copy of a data root whose test labels are withheld, for code that must not see them.

The grader's sandbox gets this copy: a student's notebook still loads every split through
torchvision as usual, but the test labels it finds are all 0, so no cell can turn the test
images it is asked to classify into right answers by looking the labels up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from solutions.data.roots import required_files

# torchvision's MNIST-family test label file: IDX magic 2049, then one uint8 label per image.
_TEST_LABELS = "t10k-labels-idx1-ubyte"


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:  # another file system
        shutil.copyfile(src, dest)


def blinded_root(dataset: str, root: Path, dest: Path) -> Path:
    """`dest`, holding `root`'s files for `dataset` with the test labels set to 0.

    MNIST and Fashion-MNIST only: CIFAR-10's test batch carries images and labels together
    under an MD5 sum torchvision checks, so for it `root` itself is returned, labels visible.
    """
    files = required_files(dataset)
    if not any(f.name == _TEST_LABELS for f in files):
        return root
    for rel in files:
        if rel.name == _TEST_LABELS:
            header = (root / rel).read_bytes()[:8]  # magic, count: (N,) labels follow
            count = int.from_bytes(header[4:8], "big")
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(header + bytes(count))
        else:
            _link_or_copy(root / rel, dest / rel)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest
