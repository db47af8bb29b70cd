"""Small, seeded, learnable stand-ins for MNIST, Fashion-MNIST and CIFAR-10, written in the
real on-disk formats so that torchvision's own classes read them.

Each class has a prototype picture; a sample is its prototype, shifted by a few pixels, with
its contrast scaled, a faint copy of another class's prototype mixed in, and pixel noise. A
small MLP separates the classes well within a few epochs, but not perfectly.

Every data set written here carries a marker file (`STAND_IN_MARKER`) in its folder, so that
whatever reads the root (the grader, for one) can say that it was not the real data set.
"""

import gzip
import io
import os
import pickle
import struct
import tempfile
from pathlib import Path
from types import MappingProxyType

import numpy as np

from solutions.data._catalog import dataset_info
from solutions.data.roots import unpack_idx_gz

__all__ = [
    "FIXTURE_SIZES",
    "STAND_IN_MARKER",
    "is_stand_in",
    "write_cifar10_like",
    "write_fixtures",
    "write_mnist_like",
]

# Written into `<root>/<data set folder>/` beside the generated files.
STAND_IN_MARKER = "DLGRADE-STAND-IN.txt"

# IDX magic numbers: 0x0000 (two zero bytes), 0x08 (unsigned byte), number of dimensions.
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dims (N, H, W)
_IDX_LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dim (N,)

# Distinct streams of one seed: prototypes, training samples, test samples.
_PROTOS, _TRAIN, _TEST = 0, 1, 2

# Largest share of another class's prototype mixed into a sample. Samples mixed close to half
# and half are ambiguous, so this sets how hard a data set is. The MNIST stand-in is a little
# easier than the others, as real MNIST is easier than Fashion-MNIST: the reference FNN of
# `fnn_mnist` reaches about 0.98 on it, as on real MNIST, so the real data's accuracy threshold
# means the same on the fixture.
_MIX_MAX = MappingProxyType({"mnist": 0.45, "fashion_mnist": 0.5, "cifar10": 0.5})
# Brightness below this floor becomes black (the rest is stretched back to 0..1). Real MNIST is
# white ink on an exactly black background, mean 0.1307: with this floor the stand-in's mean is
# about the same (0.130), but not its standard deviation (0.250, MNIST's 0.3081), so `fnn_mnist`
# measures submitted weights through the notebook's own test transform, whose statistics are
# those of the data at hand (assignments/fnn_mnist.toml).
_INK_FLOOR = MappingProxyType({"mnist": 0.25, "fashion_mnist": 0.0, "cifar10": 0.0})
_NOISE = 0.25

# Sizes (train, test) that `write_fixtures` writes: large enough for the course's real splits
# (e.g. 5,000 validation images out of the training split), small enough to write in seconds.
FIXTURE_SIZES = MappingProxyType(
    {"mnist": (12000, 2000), "fashion_mnist": (12000, 2000), "cifar10": (6000, 1000)}
)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mark(folder: Path, dataset: str) -> None:
    _write_atomic(
        folder / STAND_IN_MARKER,
        f"Generated stand-ins for {dataset_info(dataset).title}, written by "
        "solutions/data/fixtures.py: not the real data set.\n".encode(),
    )


def is_stand_in(dataset: str, root: Path) -> bool:
    """Whether `root`'s copy of `dataset` is generated stand-ins (its marker file is there)."""
    return (Path(root) / dataset_info(dataset).folder / STAND_IN_MARKER).is_file()


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """IDX file: big-endian magic, one big-endian uint32 per dimension, then the raw bytes."""
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) labels 0..9 in equal shares (up to one), in random order."""
    return rng.permutation(np.arange(n) % 10).astype(np.uint8)


def _render(
    protos: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    max_shift: int,
    mix_max: float,
    floor: float = 0.0,
) -> np.ndarray:
    """Samples (N, C, H, W) uint8 from prototypes (10, C, H, W) in [0, 1] and labels (N,)."""
    n = len(labels)
    _, c, h, w = protos.shape
    contrast = rng.uniform(0.6, 1.0, size=(n, 1, 1, 1))
    # A faint copy of another class's prototype makes some samples ambiguous.
    other = (labels + rng.integers(1, 10, size=n)) % 10
    mix = rng.uniform(0.0, mix_max, size=(n, 1, 1, 1))
    x = contrast * ((1 - mix) * protos[labels] + mix * protos[other])
    # Shift each sample by up to max_shift pixels, zero-filled: pad, then cut a window.
    s = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    shifted = np.empty_like(x)
    for i in range(n):
        shifted[i] = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
    noisy = shifted + rng.normal(0.0, _NOISE, size=shifted.shape)
    if floor:
        noisy = (noisy - floor) / (1 - floor)
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)


def _stroke_prototypes(rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """(10, 1, size, size) grey prototypes: each class three bars and a blob of its own."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    protos = np.zeros((10, 1, size, size))
    lo, hi = 5, size - 5
    for k in range(10):
        img = np.zeros((size, size))
        for _ in range(3):
            # A bar: the band of points within `half` pixels of a line through (cy, cx).
            cy, cx = rng.uniform(lo, hi, size=2)
            angle = rng.uniform(0, np.pi)
            half = rng.uniform(1.0, 2.0)
            dist = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
            along = np.abs((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle))
            img = np.maximum(img, (dist <= half) & (along <= rng.uniform(4, 9)))
        cy, cx = rng.uniform(lo, hi, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 4) ** 2))
        protos[k, 0] = np.maximum(img, blob)
    return protos


def write_mnist_like(
    root: Path,
    dataset: str = "fashion_mnist",
    *,
    n_train: int = 2000,
    n_test: int = 500,
    seed: int = 0,
) -> Path:
    """Write an MNIST-format data set under `<root>/<MNIST|FashionMNIST>/raw/`; return root.

    The four IDX files are written gzipped, as published, and unpacked beside them, as
    torchvision's own download leaves them. Same arguments, same bytes.
    """
    info = dataset_info(dataset)
    if info.name not in ("mnist", "fashion_mnist"):
        raise ValueError(f"write_mnist_like writes mnist or fashion_mnist, not {dataset!r}")
    root = Path(root)
    raw = root / info.folder / "raw"
    ds_key = 0 if info.name == "mnist" else 1  # different prototypes per data set
    protos = _stroke_prototypes(np.random.default_rng([seed, ds_key, _PROTOS]))

    for prefix, n, stream in (("train", n_train, _TRAIN), ("t10k", n_test, _TEST)):
        rng = np.random.default_rng([seed, ds_key, stream])
        labels = _balanced_labels(n, rng)
        images = _render(protos, labels, rng, 2, _MIX_MAX[info.name], _INK_FLOOR[info.name])
        images = images[:, 0]  # (N, 28, 28)
        for kind, array, magic in (
            ("images-idx3", images, _IDX_IMAGES_MAGIC),
            ("labels-idx1", labels, _IDX_LABELS_MAGIC),
        ):
            # mtime=0 keeps the gzip header, hence the bytes, independent of the clock.
            data = gzip.compress(_idx_bytes(array, magic), compresslevel=6, mtime=0)
            _write_atomic(raw / f"{prefix}-{kind}-ubyte.gz", data)
    unpack_idx_gz(raw, raw, overwrite=True)
    _mark(root / info.folder, dataset)
    return root


class _Py2StringPickler(pickle._Pickler):
    """Protocol-2 pickler that writes str and bytes as Python 2 byte strings.

    The published CIFAR-10 batches were pickled by Python 2, so their strings load as str
    under `encoding="latin1"` (what torchvision uses: `entry["data"]`) and as bytes under
    `encoding="bytes"` (the snippet on the CIFAR web page: `entry[b"data"]`). Python 3's own
    pickler cannot produce that, hence this subclass of the pure-Python pickler.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_string
    dispatch[bytes] = _save_py2_string


def _py2_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    _Py2StringPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _shape_masks(size: int = 32) -> np.ndarray:
    """(10, size, size) boolean masks: ten distinct simple shapes, one per class."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2
    r = np.hypot(yy - c, xx - c)
    ay, ax = np.abs(yy - c), np.abs(xx - c)
    return np.stack(
        [
            (ay <= 8) & (ax <= 8),  # square
            r <= 9,  # disc
            (r >= 6) & (r <= 10),  # ring
            ay <= 3,  # horizontal bar
            ax <= 3,  # vertical bar
            (ay <= 2) | (ax <= 2),  # cross
            np.abs((yy - c) - (xx - c)) <= 3,  # diagonal
            (yy >= c) & (np.abs(xx - c) <= (yy - c)),  # triangle
            (ay + ax) <= 10,  # diamond
            ((yy // 4 + xx // 4) % 2 == 0) & (ay <= 10) & (ax <= 10),  # checkerboard
        ]
    )


def write_cifar10_like(
    root: Path, *, n_train: int = 1000, n_test: int = 200, seed: int = 0
) -> Path:
    """Write a CIFAR-10-format data set under `<root>/cifar-10-batches-py/`; return root.

    Files and keys are the published ones: data_batch_1..5 (the training split in five parts),
    test_batch and batches.meta, pickled as Python 2 did (see `_Py2StringPickler`). A batch
    holds "data" uint8 (n, 3072) with rows in channel-major (C, H, W) order, "labels" (list of
    int), "batch_label" and "filenames"; the meta file "label_names", "num_cases_per_batch"
    and "num_vis". Torchvision checks MD5 sums: load with `verify=False`. Same arguments,
    same bytes.
    """
    info = dataset_info("cifar10")
    folder = Path(root) / info.folder
    proto_rng = np.random.default_rng([seed, 2, _PROTOS])
    # Per class: a background and a foreground colour, and its own shape.
    bg = proto_rng.uniform(0.0, 0.5, size=(10, 3, 1, 1))
    fg = proto_rng.uniform(0.5, 1.0, size=(10, 3, 1, 1))
    masks = _shape_masks()[:, None]  # (10, 1, 32, 32)
    protos = np.where(masks, fg, bg)  # (10, 3, 32, 32)

    def batch(images: np.ndarray, labels: np.ndarray, label: str, start: int) -> dict:
        return {
            "batch_label": label,
            "labels": [int(v) for v in labels],
            "data": images.reshape(len(images), -1),  # (n, 3072): R plane, G plane, B plane
            "filenames": [f"fixture_{start + i:06d}.png" for i in range(len(images))],
        }

    rng = np.random.default_rng([seed, 2, _TRAIN])
    labels = _balanced_labels(n_train, rng)
    images = _render(protos, labels, rng, 3, _MIX_MAX["cifar10"])
    parts = np.array_split(np.arange(n_train), 5)
    for b, part in enumerate(parts, start=1):
        entry = batch(images[part], labels[part], f"training batch {b} of 5", int(part[0]))
        _write_atomic(folder / f"data_batch_{b}", _py2_pickle(entry))

    rng = np.random.default_rng([seed, 2, _TEST])
    labels = _balanced_labels(n_test, rng)
    images = _render(protos, labels, rng, 3, _MIX_MAX["cifar10"])
    entry = batch(images, labels, "testing batch 1 of 1", n_train)
    _write_atomic(folder / "test_batch", _py2_pickle(entry))

    meta = {
        "num_cases_per_batch": len(parts[0]),
        "label_names": list(info.classes),
        "num_vis": 3 * 32 * 32,
    }
    _write_atomic(folder / "batches.meta", _py2_pickle(meta))
    _mark(folder, "cifar10")
    return Path(root)


def write_fixtures(root: Path, *, seed: int = 0) -> dict[str, tuple[int, int]]:
    """Write MNIST, Fashion-MNIST and CIFAR-10 stand-ins (`FIXTURE_SIZES`) under one root.

    `DLGRADE_DATA=root` then makes every assignment find its data set offline. Returns
    {data set: (training images, test images)}.
    """
    for name in ("mnist", "fashion_mnist"):
        n_train, n_test = FIXTURE_SIZES[name]
        write_mnist_like(root, name, n_train=n_train, n_test=n_test, seed=seed)
    n_train, n_test = FIXTURE_SIZES["cifar10"]
    write_cifar10_like(root, n_train=n_train, n_test=n_test, seed=seed)
    return dict(FIXTURE_SIZES)
