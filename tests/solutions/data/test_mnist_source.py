"""Is a generated MNIST stand-in never taken for real MNIST (solutions/data/mnist.py), and does
`python -m solutions data --fixtures` write every stand-in where $DLGRADE_DATA finds it?"""

import hashlib
from pathlib import Path

from torchvision import datasets as tv_datasets

from solutions.data import FIXTURE_SIZES, resolve_root, torchvision_dataset, write_mnist_like
from solutions.data.mnist import FIXTURE, describe_mnist
from tests.conftest import run_cli


def test_is_a_fixture_never_taken_for_real_mnist(tmp_path):
    source = describe_mnist(write_mnist_like(tmp_path, "mnist", n_train=30, n_test=10))
    assert not source.real and source.description == FIXTURE
    assert "MD5" in source.evidence


def test_would_files_with_the_published_checksums_count_as_real(tmp_path, monkeypatch):
    root = write_mnist_like(tmp_path, "mnist", n_train=30, n_test=10)
    raw = root / "MNIST" / "raw"
    published = [
        (url, hashlib.md5((raw / Path(url).name).read_bytes()).hexdigest())
        for url, _ in tv_datasets.MNIST.resources
    ]  # pretend the fixture's files are the published ones
    monkeypatch.setattr(tv_datasets.MNIST, "resources", published)
    source = describe_mnist(root)
    assert source.real and "verified" in source.evidence


def test_without_gz_files_do_only_the_real_sizes_count_as_real(tmp_path):
    root = write_mnist_like(tmp_path, "mnist", n_train=30, n_test=10)
    for gz in (root / "MNIST" / "raw").glob("*.gz"):
        gz.unlink()
    source = describe_mnist(root)
    assert not source.real and "30 training and 10 test images" in source.evidence


def test_does_the_data_command_write_every_fixture_where_dlgrade_data_finds_it(
    tmp_path, monkeypatch
):
    result = run_cli("solutions", "data", "--fixtures", str(tmp_path / "root"), timeout=300)
    assert result.returncode == 0, result.stderr
    root = (tmp_path / "root").resolve()
    monkeypatch.setenv("DLGRADE_DATA", str(root))
    for name, (n_train, n_test) in FIXTURE_SIZES.items():
        assert f"{name}: {n_train} training and {n_test} test images" in result.stdout
        assert resolve_root(name, online=False).root == root
        train = torchvision_dataset(name, True, root=root, verify=False)
        test = torchvision_dataset(name, False, root=root, verify=False)
        assert (len(train), len(test)) == (n_train, n_test)
    assert f"DLGRADE_DATA={root}" in result.stdout
