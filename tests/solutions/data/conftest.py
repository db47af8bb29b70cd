"""Shared data for the data-layer tests: generated fixtures and the real Fashion-MNIST."""

from pathlib import Path

import pytest
import torch

from solutions.data import DEBIAN_FASHION_MNIST, unpack_idx_gz, write_cifar10_like, write_mnist_like


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory) -> Path:
    """One root holding the MNIST, Fashion-MNIST and CIFAR-10 fixtures (default sizes)."""
    root = tmp_path_factory.mktemp("fixtures")
    write_mnist_like(root, "mnist")
    write_mnist_like(root, "fashion_mnist")
    write_cifar10_like(root)
    return root


@pytest.fixture(scope="session")
def real_fashion_root(tmp_path_factory) -> Path:
    """The Debian package's Fashion-MNIST unpacked into a private root (not the user's cache)."""
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("needs the Debian package dataset-fashion-mnist")
    root = tmp_path_factory.mktemp("real")
    unpack_idx_gz(DEBIAN_FASHION_MNIST, root / "FashionMNIST" / "raw")
    return root


@pytest.fixture
def clean_env(tmp_path, monkeypatch) -> Path:
    """No $DLGRADE_DATA, an empty working directory and a private cache; returns tmp_path."""
    monkeypatch.delenv("DLGRADE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.fixture
def one_thread():
    """Run a small training on one intra-op thread, then restore the setting.

    Measured on the 2-core CI machine: with another process busy, a 784-64-10 MLP took 11 s
    for 3 epochs on 2 threads and 0.16 s on 1 (the second thread waits for a busy core).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
