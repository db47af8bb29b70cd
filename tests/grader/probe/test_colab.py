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


def test_does_a_drive_folder_lead_to_the_submitted_files(tmp_path, monkeypatch):
    """Where the sandbox links /content/drive into the probe's /tmp: a notebook that makes its
    Drive folder in the imports cell and loads a handed-in file from Drive's top finds it."""
    workdir, stand_in = tmp_path / "work", tmp_path / "colab-drive"
    workdir.mkdir()
    (workdir / "fnn.pt").write_bytes(b"weights")
    drive = tmp_path / "content" / "drive"
    drive.parent.mkdir()
    drive.symlink_to(stand_in)
    monkeypatch.setattr(colab, "DRIVE", str(drive))
    monkeypatch.setattr(colab, "DRIVE_STAND_IN", str(stand_in))
    colab.link_drive(workdir)
    (drive / "MyDrive" / "dl" / "a4").mkdir(parents=True)  # os.makedirs in the imports cell
    assert (drive / "MyDrive" / "fnn.pt").read_bytes() == b"weights"
    assert (drive / "My Drive" / "fnn.pt").read_bytes() == b"weights"
    colab.link_drive(workdir)  # again, as the next probe of a slot whose /tmp outlives probes


def test_does_drive_stay_untouched_off_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(colab, "DRIVE", str(tmp_path / "content" / "drive"))
    monkeypatch.setattr(colab, "DRIVE_STAND_IN", str(tmp_path / "colab-drive"))
    colab.link_drive(tmp_path)
    assert not (tmp_path / "colab-drive").exists()


def test_does_any_other_colab_name_do_nothing(monkeypatch, capsys):
    """Blind round 11 (cifar_cnn_svm): `from google.colab import userdata` (a wandb key) at the
    top of the loops cell raised ImportError: train_epoch was never defined (31/40). Drive and
    files do what they did; any other name of google.colab does nothing."""
    import sys

    from grader.probe import packages
    from grader.probe.shell import GradingShell, run_cell

    colab_modules = ("drive", "files", "patches", "runtime", "userdata")
    for name in ("google", "google.colab", *(f"google.colab.{m}" for m in colab_modules)):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))  # as it was, after
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    colab.install()
    packages.install()
    shell = GradingShell()
    cell = (
        "from google.colab import drive, userdata\nfrom google.colab.patches import cv2_imshow\n"
        "drive.mount('/content/drive')\nkey = userdata.get('WANDB_API_KEY')\ncv2_imshow(None)\n"
        "from google.colab import runtime\nruntime.unassign()\ndef train_epoch():\n    return 1.0\n"
    )
    assert run_cell(shell, cell).status == "ok"
    assert shell.user_ns["train_epoch"]() == 1.0 and "not installed" in repr(shell.user_ns["key"])
    assert "google.colab.drive.mount() does nothing" in capsys.readouterr().out


def test_does_waiting_for_a_gpu_the_grader_lacks_do_nothing(monkeypatch, capsys):
    """Blind round 11: a train_epoch that timed its epoch on Colab's GPU called
    `torch.cuda.synchronize()` before reading the clock; on the grading machine (no GPU) it
    raised RuntimeError and lost train_mode and train_loss (46/50)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is there: its calls stay as they are")
    for name in (*colab.CUDA_WAITS, *colab.CUDA_ANSWERS):
        monkeypatch.setattr(torch.cuda, name, getattr(torch.cuda, name))  # restored after
    colab.quiet_cuda()
    for _ in range(2):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        # Blind round 11b: `print(torch.cuda.get_device_name(0))` atop the loops cell (12/50).
        assert "no GPU" in torch.cuda.get_device_name(0)
        # Round 11b (fnn_mnist): get_device_properties(0).total_memory printed (32/40).
        assert torch.cuda.get_device_properties(0).total_memory == 0
        assert torch.cuda.get_device_capability() == (0, 0)
        # A memory report or a device choice left unguarded in a loop (the last note's item).
        free, total = torch.cuda.mem_get_info()
        torch.cuda.set_device(0)
        assert (free, total) == (0, 0)
        assert "no GPU" in torch.cuda.memory_summary()
    out = capsys.readouterr().out
    assert out.count("torch.cuda.synchronize() does nothing on the grading machine") == 1
    assert out.count("torch.cuda.get_device_name() gives 'no GPU") == 1
    assert torch.cuda.memory_allocated() == 0  # what has an answer without a GPU is left alone
