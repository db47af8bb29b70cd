"""What a notebook written on Colab expects around it, while it is graded.

`google.colab`: `from google.colab import drive; drive.mount(...)` is a common first line,
often at the top of the imports cell. Off Colab that import fails and takes the rest of its
cell with it (`import torch` included), so every later cell failed and correct work scored 0.
Here, as with `!commands` (grader/probe/shell.py), the call is answered and nothing happens:
the submitted files are already in the notebook's working folder.

The data: on Colab the working folder is /content, so "data", "./data" and "/content/data"
are one folder, where torchvision's `download=True` puts a data set. The sandbox mounts the
grader's data root at /content/data (grader/grade.py), and `link_data` makes ./data lead
there: the probe has no network to download with. A root the sandbox lacks altogether (a Drive
folder, "/content/drive/MyDrive/dl/data") is answered by `find_data_anywhere`.

Drive: notebooks save to and load from it (`os.makedirs("/content/drive/MyDrive/dl")` in the
imports cell, `torch.save(..., "/content/drive/MyDrive/fnn.pt")`). Off Colab, /content is not
writable and that makedirs failed the imports cell: every later cell failed with it. The sandbox
makes /content/drive a link into the probe's own /tmp (fresh for every probe), and `link_drive`
makes MyDrive (and the older "My Drive") there lead to the working folder, where the submitted
files are.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from grader.probe import packages

DRIVE = "/content/drive"  # where Colab mounts Drive
DRIVE_STAND_IN = "/tmp/colab-drive"  # what the sandbox's /content/drive leads to
NOTE = "[grader] google.colab.{}() does nothing while grading: your files are in the working folder"


def _does_nothing(name: str, result=None):
    def call(*args, **kwargs):
        print(NOTE.format(name))
        return result() if callable(result) else result

    call.__name__ = name.rsplit(".", 1)[-1]
    return call


def _module(name: str, **functions) -> ModuleType:
    module = ModuleType(name, "Stand-in while grading (grader/probe/colab.py)")
    for attribute, value in functions.items():
        setattr(module, attribute, value)
    return module


def install() -> None:
    """Make `google.colab` (drive, files) importable, unless a real one is there (Colab)."""
    if "google.colab" in sys.modules:
        return
    try:
        import google.colab  # noqa: F401 - the real one, where a course grades on Colab
    except ImportError:
        pass
    else:
        return
    drive = _module(
        "google.colab.drive",
        mount=_does_nothing("drive.mount"),
        flush_and_unmount=_does_nothing("drive.flush_and_unmount"),
    )
    files = _module(
        "google.colab.files",
        upload=_does_nothing("files.upload", dict),  # {name: bytes} of the uploaded files
        download=_does_nothing("files.download"),
    )
    # Any other name (`userdata` for a wandb key, `runtime.unassign()`, `patches.cv2_imshow`)
    # does nothing, as a missing package's: `from google.colab import userdata` at the top of
    # the loops cell failed it (blind round 11, 31/40).
    colab = packages.MissingPackage("google.colab", "Stand-in while grading")
    colab.drive, colab.files = drive, files
    google = sys.modules.get("google")
    if google is None:
        try:
            import google  # a namespace package (protobuf's), where one is installed
        except ImportError:
            google = sys.modules["google"] = _module("google")
    google.colab = colab
    sys.modules.update({"google.colab": colab, drive.__name__: drive, files.__name__: files})


# CUDA calls that only wait for the GPU or reset its memory counters: on Colab's GPU a
# `torch.cuda.synchronize()` before reading the clock in train_epoch is right; on the grading
# machine, which has no GPU, it raised RuntimeError and the loop checks were lost (blind round
# 11: 4 of 50 points). Without a GPU there is nothing to wait for.
CUDA_WAITS = (
    "synchronize",
    "reset_peak_memory_stats",
    "reset_max_memory_allocated",
    "reset_accumulated_memory_stats",
    "set_device",
    "ipc_collect",
)
# And what only names the GPU: `print(torch.cuda.get_device_name(0))` at the top of a
# student's loops cell raised RuntimeError ("Found no NVIDIA driver") and took the cell with it
# (blind round 11b, cnn_techniques: 12 of 50 points). It gets an answer that says so.
# So did `get_device_properties(0).total_memory` printed for a device other than "cpu" (round
# 11b, fnn_mnist: 8 of 40 points).
NO_GPU = "no GPU (the grading machine)"
CUDA_ANSWERS = {
    "get_device_name": NO_GPU,
    "get_device_properties": SimpleNamespace(name=NO_GPU, total_memory=0, major=0, minor=0),
    "get_device_capability": (0, 0),  # (major, minor), as of a GPU
    "mem_get_info": (0, 0),  # (free, total) bytes
    "memory_summary": NO_GPU,
    "utilization": 0,  # percent
}


def quiet_cuda() -> None:
    """Without a GPU, `CUDA_WAITS` do nothing and `CUDA_ANSWERS` answer (said once each in the
    log)."""
    import torch

    if torch.cuda.is_available():
        return
    for name, answer in {**dict.fromkeys(CUDA_WAITS), **CUDA_ANSWERS}.items():
        if hasattr(torch.cuda, name):
            setattr(torch.cuda, name, _once(f"torch.cuda.{name}", answer))


def _once(name: str, answer=None):
    said = []

    def call(*args, **kwargs):
        if not said:
            said.append(True)
            does = "does nothing" if answer is None else f"gives {answer!r}"
            print(f"[grader] {name}() {does} on the grading machine, which has no GPU")
        return answer

    call.__name__ = name.rsplit(".", 1)[-1]
    return call


def link_data(workdir: Path) -> None:
    """`workdir`/data leads to the grader's data root ($DLGRADE_DATA), unless it exists."""
    root = os.environ.get("DLGRADE_DATA")
    link = workdir / "data"
    if root and Path(root).is_dir() and not os.path.lexists(link):
        os.symlink(root, link)


def link_drive(workdir: Path) -> None:
    """/content/drive/MyDrive and /content/drive/My Drive lead to `workdir`, where the sandbox
    links /content/drive to a folder the probe may make (nothing happens elsewhere)."""
    if os.path.realpath(DRIVE) != DRIVE_STAND_IN:
        return
    os.makedirs(DRIVE_STAND_IN, exist_ok=True)
    for name in ("MyDrive", "My Drive"):
        link = os.path.join(DRIVE_STAND_IN, name)
        if os.path.islink(link):  # an earlier probe's, where /tmp outlives a probe (not root)
            os.unlink(link)
        if not os.path.lexists(link):
            os.symlink(workdir, link)


def find_data_anywhere() -> None:
    """A torchvision data set that cannot be loaded from the root the notebook names (a Drive
    folder: nothing there, and no network to download with) is loaded from the grader's data
    root ($DLGRADE_DATA) instead, with a note: the same class, split and transforms."""
    root = os.environ.get("DLGRADE_DATA")
    if not root:
        return
    from torchvision import datasets

    # The classes that define __init__ (FashionMNIST inherits MNIST's, CIFAR100 CIFAR10's).
    for cls in (datasets.MNIST, datasets.CIFAR10):
        if not hasattr(cls.__init__, "__wrapped__"):
            cls.__init__ = _or_from(root, cls.__init__)


def _or_from(data_root: str, init):
    @functools.wraps(init)
    def __init__(self, root, *args, **kwargs):
        try:
            init(self, root, *args, **kwargs)
        except Exception as err:  # "Dataset not found", a failed download, a folder not made
            if os.path.abspath(os.fspath(root)) == os.path.abspath(data_root):
                raise
            try:
                init(self, data_root, *args, **kwargs)
            except Exception:
                raise err from None
            print(
                f"[grader] {type(self).__name__}: nothing to load at {os.fspath(root)!r} while "
                "grading; the grader's copy of the data set is used"
            )

    return __init__
