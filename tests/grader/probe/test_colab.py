"""Does a notebook written on Colab find what it expects while it is graded: a data set under a
Drive folder the grading machine lacks is read from the grader's copy, with a note, and a
data set the grader lacks too still fails with torchvision's own reason? In-process: the
stand-ins are plain Python, the sandbox adds nothing to them."""

from __future__ import annotations

import pytest
from torchvision import datasets

from grader.probe import colab
from solutions.data.fixtures import write_mnist_like


@pytest.fixture
def grader_root(tmp_path, monkeypatch):
    """The grader's data root holding Fashion-MNIST's stand-in, with the data set classes
    restored after the test (find_data_anywhere patches them for the probe's whole life)."""
    write_mnist_like(tmp_path, "fashion_mnist", n_train=20, n_test=10, seed=0)
    monkeypatch.setenv("DLGRADE_DATA", str(tmp_path))
    for cls in (datasets.MNIST, datasets.CIFAR10):
        monkeypatch.setattr(cls, "__init__", cls.__init__)
    colab.find_data_anywhere()
    return tmp_path


def test_is_a_drive_root_read_from_the_graders_copy(grader_root, tmp_path_factory, capsys):
    drive = tmp_path_factory.mktemp("drive") / "MyDrive" / "data"
    test_set = datasets.FashionMNIST(root=drive, train=False)
    assert len(test_set) == 10
    assert f"nothing to load at '{drive}'" in capsys.readouterr().out


def test_does_a_data_set_nobody_has_fail_with_its_own_reason(grader_root, tmp_path_factory):
    with pytest.raises(RuntimeError, match="Dataset not found"):
        datasets.MNIST(tmp_path_factory.mktemp("drive"), train=False)
