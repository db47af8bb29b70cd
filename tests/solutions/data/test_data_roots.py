"""Root resolution: $DLGRADE_DATA, ./data, the Debian package, download, then a clear error."""

import gzip
import shutil
from pathlib import Path

import pytest
from torchvision import datasets as tv_datasets

from solutions.data import (
    DATA_ENV,
    DEBIAN_FASHION_MNIST,
    DataNotFoundError,
    DataRoot,
    has_layout,
    resolve_root,
    unpack_idx_gz,
    write_cifar10_like,
    write_mnist_like,
)
from solutions.data import roots as roots_module

needs_debian = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="needs the Debian package dataset-fashion-mnist"
)


def _no_debian(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(roots_module, "DEBIAN_FASHION_MNIST", tmp_path / "no-such-package")


def test_does_dlgrade_data_win_over_dot_data(clean_env, monkeypatch):
    env_root = write_mnist_like(clean_env / "env", "mnist", n_train=20, n_test=10)
    write_mnist_like(Path("data"), "mnist", n_train=20, n_test=10)
    monkeypatch.setenv(DATA_ENV, str(env_root))
    assert resolve_root("mnist", online=False) == DataRoot(env_root, download=False, source="env")


def test_is_dlgrade_data_skipped_when_it_lacks_the_dataset(clean_env, monkeypatch):
    # The env folder holds MNIST only; CIFAR-10 must then come from ./data.
    env_root = write_mnist_like(clean_env / "env", "mnist", n_train=20, n_test=10)
    write_cifar10_like(Path("data"), n_train=10, n_test=5)
    monkeypatch.setenv(DATA_ENV, str(env_root))
    found = resolve_root("cifar10", online=False)
    assert found == DataRoot(Path.cwd() / "data", download=False, source="./data")


def test_is_dot_data_relative_to_the_current_directory(clean_env, monkeypatch):
    write_mnist_like(clean_env / "elsewhere" / "data", "mnist", n_train=20, n_test=10)
    with pytest.raises(DataNotFoundError):
        resolve_root("mnist", online=False)
    monkeypatch.chdir(clean_env / "elsewhere")
    assert resolve_root("mnist", online=False).root == clean_env / "elsewhere" / "data"


def test_does_dot_data_win_over_the_debian_package(clean_env):
    write_mnist_like(Path("data"), "fashion_mnist", n_train=20, n_test=10)
    assert resolve_root("fashion_mnist", online=False).source == "./data"


@needs_debian
def test_does_the_debian_package_unpack_into_the_cache_once(clean_env):
    found = resolve_root("fashion_mnist", online=False)
    cache = clean_env / "cache" / "dlgrade" / "data"
    assert found == DataRoot(cache, download=False, source="debian")
    raw = cache / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    with gzip.open(DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == f.read()
    # A second resolution finds the unpacked files and rewrites nothing.
    stamps = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    assert resolve_root("fashion_mnist", online=False).source == "debian"
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == stamps


@needs_debian
def test_does_debian_fashion_mnist_load_through_torchvision(clean_env):
    found = resolve_root("fashion_mnist", online=False)
    test_split = tv_datasets.FashionMNIST(found.root, train=False, download=found.download)
    assert len(test_split) == 10_000


@needs_debian
def test_does_an_unwritable_cache_fall_through_to_the_error(clean_env, monkeypatch):
    # A regular file where the cache folder should be: mkdir fails even for root.
    blocker = clean_env / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(DataNotFoundError, match="could not unpack"):
        resolve_root("fashion_mnist", online=False)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_is_the_debian_rule_only_for_fashion_mnist(clean_env, dataset):
    with pytest.raises(DataNotFoundError):
        resolve_root(dataset, online=False)


def test_does_online_fall_back_to_download_into_dot_data(clean_env):
    found = resolve_root("cifar10", online=True)
    assert found == DataRoot(Path.cwd() / "data", download=True, source="download")


def test_does_the_error_name_the_fix(clean_env, monkeypatch):
    _no_debian(monkeypatch, clean_env)
    with pytest.raises(DataNotFoundError) as caught:
        resolve_root("fashion_mnist", online=False)
    message = str(caught.value)
    assert "DLGRADE_DATA" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "Colab" in message
    assert "FashionMNIST/raw/train-images-idx3-ubyte" in message


def test_is_an_unknown_dataset_refused_by_name(clean_env):
    with pytest.raises(ValueError, match="cifar10"):
        resolve_root("svhn", online=False)


def test_does_has_layout_need_every_unpacked_file(tmp_path):
    write_mnist_like(tmp_path, "fashion_mnist", n_train=20, n_test=10)
    assert has_layout("fashion_mnist", tmp_path)
    assert not has_layout("mnist", tmp_path)
    # Gzipped files alone are not torchvision's layout.
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert not has_layout("fashion_mnist", tmp_path)


def test_does_has_layout_need_every_cifar_batch(tmp_path):
    write_cifar10_like(tmp_path, n_train=10, n_test=5)
    assert has_layout("cifar10", tmp_path)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    assert not has_layout("cifar10", tmp_path)


def test_does_unpack_keep_existing_files_and_leave_no_temporaries(tmp_path):
    src = write_mnist_like(tmp_path / "src", "mnist", n_train=20, n_test=10) / "MNIST" / "raw"
    gz_only = tmp_path / "gz"
    gz_only.mkdir()
    for gz in src.glob("*.gz"):
        shutil.copy(gz, gz_only)
    dest = tmp_path / "dest"
    unpack_idx_gz(gz_only, dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        p.name for p in src.iterdir() if not p.name.endswith(".gz")
    )
    (dest / "t10k-labels-idx1-ubyte").write_bytes(b"kept")
    unpack_idx_gz(gz_only, dest)
    assert (dest / "t10k-labels-idx1-ubyte").read_bytes() == b"kept"
    unpack_idx_gz(gz_only, dest, overwrite=True)
    assert (dest / "t10k-labels-idx1-ubyte").read_bytes() == (
        src / "t10k-labels-idx1-ubyte"
    ).read_bytes()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_are_the_catalog_s_files_classes_and_address_torchvision_s(name):
    """The catalog writes them down so that finding a root imports no torch; they must stay
    what torchvision's classes check for and download from."""
    from solutions.data import DATASETS

    info = DATASETS[name]
    cls = getattr(tv_datasets, info.class_name)
    assert info.torchvision_class is cls
    if hasattr(cls, "resources"):
        names = [Path(url).name.removesuffix(".gz") for url, _ in cls.resources]
        assert info.files == tuple(f"raw/{n}" for n in names)
        assert info.download_url == cls.mirrors[0]
    else:
        names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        assert info.files == tuple(names) and info.download_url == cls.url
    if name == "mnist":
        assert info.classes == tuple(cls.classes)


def test_does_a_generated_data_set_say_it_is_a_stand_in(tmp_path):
    from solutions.data import is_stand_in

    real_looking = tmp_path / "real"
    write_mnist_like(tmp_path / "gen", "mnist", n_train=20, n_test=10)
    shutil.copytree(tmp_path / "gen", real_looking)
    (real_looking / "MNIST" / "DLGRADE-STAND-IN.txt").unlink()
    assert is_stand_in("mnist", tmp_path / "gen") and not is_stand_in("mnist", real_looking)
