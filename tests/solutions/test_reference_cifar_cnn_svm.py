"""Does the `cifar_cnn_svm` reference do what the sheet and the notebook say, read the data where
torchvision puts it, and are the committed expected answers, weights and files its own?"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision import datasets

from grader.checks.families import transforms
from grader.judge import load_expected
from grader.manifest import load_manifest
from solutions.cifar_cnn_svm import config, notebook, reference, student
from solutions.data import (
    STAND_IN_MARKER,
    load_split,
    normalize,
    torchvision_dataset,
    write_cifar10_like,
)

ID = "cifar_cnn_svm"


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(ID)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    return write_cifar10_like(tmp_path_factory.mktemp("cifar"), n_train=1000, n_test=500)


def test_do_the_networks_have_the_sheet_s_parameter_counts():
    # (inputs + bias) * outputs per layer. 32x32 -> 5x5 conv, padding 1 -> 30 -> pool 15 -> 3x3
    # conv, padding 1 -> 15 -> pool 7.
    cnn = (3 * 25 + 1) * 32 + (32 * 9 + 1) * 64 + (64 * 7 * 7 + 1) * 64 + (64 + 1) * 10
    dense = (3 * 32 * 32 + 1) * 256 + (256 + 1) * 64 + (64 + 1) * 10
    for model, count in ((student.Dense(), dense), (student.CNN(), cnn)):
        assert sum(p.numel() for p in model.parameters()) == count


def test_does_the_reference_read_torchvision_s_cifar10_layout(stand_in, monkeypatch):
    """The files the stand-in holds are the ones torchvision downloads (cifar-10-batches-py);
    the reference tells them from real CIFAR-10 by torchvision's MD5 sums, and with those sums
    matching, torchvision's own verified class reads what the reference reads."""
    cls = datasets.CIFAR10
    folder = stand_in / cls.base_folder
    wanted = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    # Beside them, only the marker that says it is a stand-in.
    assert sorted(p.name for p in folder.iterdir()) == sorted([*wanted, STAND_IN_MARKER])
    assert reference.cifar10_root(stand_in)[1] is False

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(cls, "train_list", [[n, md5(n)] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(n)] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(cls.meta["filename"])})
    root, real, how = reference.cifar10_root(stand_in)
    assert real and "verified" in how
    images, labels = load_split("cifar10", True, root=root, verify=True)
    verified = cls(str(root), train=True)
    assert torch.equal(labels, torch.tensor(verified.targets))
    assert torch.equal(images, torch.from_numpy(verified.data).permute(0, 3, 1, 2))


def test_does_the_notebook_data_cell_read_a_stand_in_only_where_the_course_says_so(
    stand_in, manifest, monkeypatch
):
    data_cell = next(c.source for c in notebook.cells(manifest) if c.grade_id == "data")
    class_code = data_cell.split("\n\n\ntrain_set")[0]  # the CIFAR10 class, no loading
    for env, loads in ((str(stand_in), True), (None, False)):
        if env:
            monkeypatch.setenv("DLGRADE_DATA", env)
        else:
            monkeypatch.delenv("DLGRADE_DATA", raising=False)
        scope = {"os": __import__("os"), "datasets": datasets}
        exec(class_code, scope)  # noqa: S102 - the notebook's own provided cell
        if loads:
            assert len(scope["CIFAR10"](str(stand_in), train=False)) == 500
        else:
            with pytest.raises(RuntimeError, match="not found or corrupted"):
                scope["CIFAR10"](str(stand_in), train=False)


def test_does_the_reference_training_augment_as_the_notebook_does(manifest):
    """The tensor-path augmentation passes the grader's own check of a training transform."""
    augment = reference._augment(manifest.mean, manifest.std)
    _, test = student.make_transforms()

    def train(image):  # a PIL image, normalised as the tensor path is, then augmented
        return augment(test(image)[None])[0]

    ctx = SimpleNamespace(
        manifest=manifest, settings={"seed": 0}, get=lambda _: lambda: (train, test)
    )
    for entry in transforms.observe(ctx)["images"]:
        assert transforms.JUDGES["train_augments"](entry, None, ctx, 0) is None, entry


def test_does_the_svc_see_what_the_notebook_s_svc_sees(stand_in, manifest):
    """The reference fits its SVC on the tensor path's normalised images: the rows the
    notebook's flatten_images makes from a data set with the test transform."""
    _, test = student.make_transforms()
    dataset = torchvision_dataset("cifar10", True, test, root=stand_in, verify=False)
    X, y = student.flatten_images(dataset, 40)
    images, labels = load_split("cifar10", True, root=stand_in, verify=False)
    tensor_path = normalize(images[:40], manifest.mean, manifest.std).flatten(1)
    np.testing.assert_allclose(X, tensor_path.numpy(), atol=1e-6)
    assert (y == labels[:40].numpy()).all()


def test_does_the_committed_file_mark_what_a_stand_in_cannot_measure():
    """A stand-in's SVC figures are no measurement; the width answer is the reference's."""
    committed = load_expected(ID)
    svc, part2 = committed["svc"], committed["part2"]
    if "stand-in" in committed["provenance"]["data"]:
        assert svc["measured"] is False and svc["test_accuracy"] is svc["support_vectors"] is None
    widths = {int(w): a for w, a in part2["deep_classifier_accuracy"].items()}
    assert list(widths) == list(config.WIDTHS)
    assert part2["smallest_width_reaching"]["width"] == student.smallest_width(widths)
    assert part2["epochs"] == config.DEEP_EPOCHS
