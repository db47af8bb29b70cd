"""What every probe of a run reads, prepared once by the trusted parent: the test split,
shuffled in an order only the judge can undo, the data root with the test labels withheld, and
matplotlib's font cache."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from grader.manifest import Manifest
from solutions.data import (
    DataNotFoundError,
    blinded_root,
    is_stand_in,
    load_split,
    resolve_root,
)
from solutions.data._catalog import dataset_info


@dataclass(frozen=True)
class ProbeInputs:
    """What every probe of a run reads, prepared once: the test split, shuffled in an order
    only the judge can undo, the data root (test labels withheld), matplotlib's fonts.

    Without the test split on this machine (MNIST cannot always be had), `images_file` and
    `labels` are None and `missing` says why; the accuracy checks then report it, and the
    reports are not final. `split_sha256` identifies the test split graded on (its images and
    labels in their published order; "missing" without one): grades depend on it.
    """

    folder: Path
    images_file: Path | None
    labels: torch.Tensor | None
    data_root: Path | None
    images_sha256: str = ""
    missing: str = ""
    split_sha256: str = "missing"
    # "real", or "stand-ins": generated (solutions/data/fixtures.py), or a split of another size
    data: str = "missing"
    source_root: str = ""  # where the test split was found
    split_name: str = ""  # what the accuracy checks measured on, in words

    @property
    def stand_ins(self) -> bool:
        return self.data == "stand-ins"

    @property
    def matplotlib_cache(self) -> Path:
        return self.folder / "matplotlib"

    def intact(self) -> bool:
        """Whether the shared test images are still exactly what was written."""
        if self.images_file is None:
            return True
        return _sha256(self.images_file.read_bytes()) == self.images_sha256


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _build_matplotlib_cache(folder: Path) -> None:
    """Build matplotlib's font list once; each probe copies it instead of spending seconds on it."""
    folder.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", "import matplotlib.font_manager"],
        env={**os.environ, "MPLCONFIGDIR": str(folder), "MPLBACKEND": "Agg"},
        capture_output=True,
        timeout=120,
    )
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def prepare_inputs(
    manifest: Manifest, folder: Path, seed: int | None = None, *, fonts: bool = True
) -> ProbeInputs:
    """Decode the real test split once and write it, shuffled, for the probes to read.

    Shuffling with a fresh seed means a notebook that "predicts" by replaying the test labels in
    their usual order scores at chance.
    """
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # the probe's unprivileged uid reads it (read-only mount)
    if fonts:
        _build_matplotlib_cache(folder / "matplotlib")
    try:
        root = resolve_root(manifest.dataset)
        # Unverified: a generated CIFAR-10 stand-in cannot match the published MD5 sums, and
        # the accuracy checks measure whatever test split the operator holds.
        images, labels = load_split(manifest.dataset, train=False, root=root.root, verify=False)
    except DataNotFoundError as err:
        return ProbeInputs(folder, None, None, None, missing=_missing_data(manifest, err))
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    info = dataset_info(manifest.dataset)
    # Stand-ins carry a marker; a test split of another size is not the real one either.
    generated = is_stand_in(manifest.dataset, root.root)
    stand_ins = generated or len(labels) != info.test_size
    split_name = f"the {info.title} test split"
    if generated:
        split_name = f"generated stand-ins of {split_name}"
    elif stand_ins:
        split_name = f"{len(labels):,} images in place of the {info.test_size:,} of {split_name}"
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    images_file = folder / "test_images.pt"
    torch.save(images[order].contiguous(), images_file)
    images_file.chmod(0o644)
    # The notebook's own data cell sees every split, but not the test labels.
    data_root = blinded_root(manifest.dataset, root.root, folder / "data")
    return ProbeInputs(
        folder,
        images_file,
        labels[order].clone(),
        data_root,
        _sha256(images_file.read_bytes()),
        split_sha256=digest.hexdigest(),
        data="stand-ins" if stand_ins else "real",
        source_root=str(root.root),
        split_name=split_name,
    )


def _missing_data(manifest: Manifest, err: Exception) -> str:
    first, title = str(err).splitlines()[0], dataset_info(manifest.dataset).title
    return (
        f"the grading machine has no {title} test split ({first}); set "
        "DLGRADE_DATA to a folder holding it in torchvision's layout and grade again"
    )
