"""Generated fixtures: real on-disk formats, read by torchvision's classes, seeded, learnable."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import datasets as tv_datasets

from solutions.data import (
    DATASETS,
    TensorLoader,
    UnverifiedCIFAR10,
    load_split,
    normalize,
    torchvision_dataset,
    write_cifar10_like,
    write_mnist_like,
)

MNIST_LIKE = {"mnist": tv_datasets.MNIST, "fashion_mnist": tv_datasets.FashionMNIST}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", sorted(MNIST_LIKE))
def test_do_mnist_like_fixtures_load_through_the_real_torchvision_class(fixture_root, name):
    train = MNIST_LIKE[name](fixture_root, train=True)
    test = MNIST_LIKE[name](fixture_root, train=False)
    assert (len(train), len(test)) == (2000, 500)
    assert train.data.dtype == torch.uint8 and train.data.shape == (2000, 28, 28)
    image, label = train[0]
    assert image.size == (28, 28) and 0 <= label < 10


@pytest.mark.parametrize("name", sorted(MNIST_LIKE))
def test_are_the_idx_files_real_idx_gzipped_and_unpacked(fixture_root, name):
    raw = fixture_root / DATASETS[name].folder / "raw"
    images = (raw / "train-images-idx3-ubyte").read_bytes()
    labels = (raw / "train-labels-idx1-ubyte").read_bytes()
    assert struct.unpack(">IIII", images[:16]) == (2051, 2000, 28, 28)
    assert len(images) == 16 + 2000 * 28 * 28
    assert struct.unpack(">II", labels[:8]) == (2049, 2000)
    assert max(labels[8:]) == 9
    for unpacked in raw.glob("*-ubyte"):
        assert gzip.decompress((raw / f"{unpacked.name}.gz").read_bytes()) == unpacked.read_bytes()


def test_does_the_cifar_fixture_load_through_torchvision_when_unverified(fixture_root):
    train = torchvision_dataset("cifar10", True, root=fixture_root, verify=False)
    test = torchvision_dataset("cifar10", False, root=fixture_root, verify=False)
    assert isinstance(train, UnverifiedCIFAR10)
    assert (len(train), len(test)) == (1000, 200)
    assert train.data.shape == (1000, 32, 32, 3)
    assert tuple(train.classes) == DATASETS["cifar10"].classes
    image, label = test[0]
    assert image.size == (32, 32) and image.mode == "RGB" and 0 <= label < 10


def test_does_verified_cifar_refuse_the_fixture(fixture_root):
    # The fixture's bytes cannot match the published MD5 sums.
    with pytest.raises(RuntimeError, match="corrupted"):
        torchvision_dataset("cifar10", True, root=fixture_root)


def test_do_cifar_batches_read_with_the_cifar_web_page_snippet(fixture_root):
    folder = fixture_root / "cifar-10-batches-py"
    with open(folder / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    assert set(batch) == {b"data", b"labels", b"batch_label", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (200, 3072)
    assert all(isinstance(v, int) for v in batch[b"labels"])
    assert batch[b"batch_label"] == b"training batch 1 of 5"
    with open(folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    assert meta[b"label_names"][0] == b"airplane"
    assert (meta[b"num_cases_per_batch"], meta[b"num_vis"]) == (200, 3072)


def test_does_load_split_give_nchw_cifar_equal_to_getitem(fixture_root):
    images, labels = load_split("cifar10", False, root=fixture_root, verify=False)
    assert images.shape == (200, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.shape == (200,)
    ds = torchvision_dataset("cifar10", False, root=fixture_root, verify=False)
    for i in (0, 7, 199):
        pil, label = ds[i]
        assert np.array_equal(images[i].permute(1, 2, 0).numpy(), np.asarray(pil))
        assert labels[i].item() == label
    # Rows of the pickled batch are channel-major: the first 1024 values are the red plane.
    with open(fixture_root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        rows = pickle.load(f, encoding="latin1")["data"]
    assert np.array_equal(rows[0, :1024].reshape(32, 32), images[0, 0].numpy())


@pytest.mark.parametrize("name", sorted(MNIST_LIKE))
def test_does_load_split_read_mnist_like_fixtures(fixture_root, name):
    images, labels = load_split(name, True, root=fixture_root)
    assert images.shape == (2000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [200] * 10


def test_are_fixtures_the_same_bytes_for_the_same_seed(tmp_path):
    for sub in ("a", "b", "c"):
        seed = 1 if sub == "c" else 0
        write_mnist_like(tmp_path / sub, "fashion_mnist", n_train=50, n_test=20, seed=seed)
        write_cifar10_like(tmp_path / sub, n_train=50, n_test=20, seed=seed)
    a, b, c = (_files(tmp_path / sub) for sub in ("a", "b", "c"))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_is_rewriting_a_fixture_root_with_another_seed_complete(tmp_path):
    write_mnist_like(tmp_path / "x", "mnist", n_train=50, n_test=20, seed=0)
    write_mnist_like(tmp_path / "x", "mnist", n_train=50, n_test=20, seed=1)
    write_mnist_like(tmp_path / "y", "mnist", n_train=50, n_test=20, seed=1)
    assert _files(tmp_path / "x") == _files(tmp_path / "y")


def _train_mlp(root: Path, name: str, optimiser: str) -> float:
    """Train a 1-hidden-layer MLP for 3 epochs; return its test accuracy."""
    torch.manual_seed(0)
    info = DATASETS[name]
    x_train, y_train = load_split(name, True, root=root, verify=False)
    x_test, y_test = load_split(name, False, root=root, verify=False)
    x_train = normalize(x_train, info.mean, info.std)
    x_test = normalize(x_test, info.mean, info.std)
    features = x_train[0].numel()
    model = nn.Sequential(nn.Flatten(), nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 10))
    if optimiser == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    loader = TensorLoader(x_train, y_train, 64, shuffle=True, generator=gen)
    for _ in range(3):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return accuracy


@pytest.mark.parametrize("name", sorted(MNIST_LIKE))
def test_can_a_small_mlp_learn_the_mnist_like_fixture_but_not_perfectly(
    fixture_root, name, one_thread
):
    assert 0.8 < _train_mlp(fixture_root, name, "sgd") < 0.995


def test_can_a_small_mlp_learn_the_cifar_fixture(fixture_root, one_thread):
    assert _train_mlp(fixture_root, "cifar10", "adam") > 0.6
