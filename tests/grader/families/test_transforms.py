"""Does the transforms family pass a flip and a padded crop (before or after normalising), with
other augmentations after them where the manifest allows them, and catch a training transform
without them, a wrong padding and a test transform that augments?"""

from __future__ import annotations

import inspect

import pytest

from grader.session import Session
from tests.fixtures import toy
from tests.grader.families.conftest import Harness

# make_transforms(mean, std, augment) with its parts replaced: (training augmentations with
# augment=True, steps after ToTensor and Normalize, test augmentations), and whether it passes
# (train_transform_augments, test_transform_deterministic).
FLIP, CROP = "transforms.RandomHorizontalFlip()", "transforms.RandomCrop(28, padding=2)"
ROTATE = "transforms.RandomRotation((20, 40))"  # no output of a flip and crop is one of its
PAD4 = "transforms.RandomCrop(28, padding=4)"  # a crop moved by 2 among its outputs too
CROP4 = "transforms.RandomCrop(28)"  # after a Pad step
WRITTEN = {
    "the reference's order": (([FLIP, CROP], [], []), (True, True)),
    "flip and crop after normalising": (([], [FLIP, CROP], []), (True, True)),
    "no crop": (([FLIP], [], []), (False, True)),
    "padding 1": (([FLIP, "transforms.RandomCrop(28, padding=1)"], [], []), (False, True)),
    "a test transform that flips": (([FLIP, CROP], [], [FLIP]), (True, False)),
    "a rotation, where the manifest allows no other augmentation": (
        ([FLIP, CROP, ROTATE], [], []),
        (False, True),
    ),
}
# With `extra_augmentations = true` (cnn_techniques): the flip and the crop are judged with the
# other steps of the Compose set aside.
WRITTEN_WITH_EXTRAS = {
    "a rotation after the flip and crop": (([FLIP, CROP, ROTATE], [], []), (True, True)),
    "a nested Compose with a rotation": (
        ([f"transforms.Compose([{FLIP}, {ROTATE}])", CROP], [], []),
        (True, True),
    ),
    "a rotation in place of the crop": (([FLIP, ROTATE], [], []), (False, True)),
    "reflected padding": (([FLIP, f"{CROP[:-1]}, padding_mode='reflect')"], [], []), (False, True)),
    "padding 4": (([FLIP, PAD4], [], []), (False, True)),
    "padding 4, then a rotation": (([FLIP, PAD4, ROTATE], [], []), (False, True)),
    "padding 4 beside a Resize(28)": (
        ([FLIP, "transforms.Resize(28)", PAD4], [], []),
        (False, True),
    ),
    "a Resize(28) beside the flip and crop": (
        ([FLIP, "transforms.Resize(28)", CROP], [], []),
        (True, True),
    ),
    # A Pad step is the crop's padding, not another augmentation.
    "Pad(4), then the crop": (([FLIP, "transforms.Pad(4)", CROP4], [], []), (False, True)),
    "Pad(2), the crop, a rotation": (
        ([FLIP, "transforms.Pad(2)", CROP4, ROTATE], [], []),
        (True, True),
    ),
}


def _make_transforms(before: list[str], after: list[str], test: list[str]) -> str:
    return f"""
def make_transforms(mean, std, augment=False):
    to_tensor = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    train = ([{", ".join(before)}] + to_tensor + [{", ".join(after)}]) if augment else to_tensor
    return transforms.Compose(train), transforms.Compose([{", ".join(test)}] + to_tensor)
"""


@pytest.fixture(scope="module")
def extras_harness() -> Harness:
    """The toy assignment with other augmentations allowed after the flip and the crop."""
    manifest = toy.manifest()
    section = manifest.transforms.model_copy(update={"extra_augmentations": True})
    manifest = manifest.model_copy(update={"transforms": section})
    return Harness(Session.prepare(manifest, 0, expected={}, folder=toy.FOLDER), toy.FOLDER)


@pytest.mark.parametrize(
    "written, extras",
    [(w, False) for w in sorted(WRITTEN)] + [(w, True) for w in WRITTEN_WITH_EXTRAS],
)
def test_does_each_transform_pass_only_the_checks_it_should(
    harness, extras_harness, written, extras
):
    parts, verdicts = (WRITTEN_WITH_EXTRAS if extras else WRITTEN)[written]
    harness = extras_harness if extras else harness
    ns = harness.namespace(_make_transforms(*parts))
    results = harness.grade(ns, ["transforms"])
    names = ("train_transform_augments", "test_transform_deterministic")
    passed = tuple(results[name].status == "pass" for name in names)
    assert passed == verdicts, [results[name].message for name in names]


def test_is_a_reflected_padding_told_the_padding_asked_for(harness):
    """Blind round 19 (cifar_cnn_svm): RandomCrop(32, padding=4, padding_mode="reflect"), as
    CIFAR tutorials write it, was told only that its crops are none with padding 4."""
    reflected = f"{CROP[:-1]}, padding_mode='reflect')"
    ns = harness.namespace(_make_transforms([FLIP, reflected], [], []))
    result = harness.grade(ns, ["transforms"])["train_transform_augments"]
    assert result.status == "fail" and "not padding_mode='reflect'" in result.message


def test_is_make_transforms_judged_with_the_setup_cells_mean_and_std():
    """cifar_cnn_svm's make_transforms() reads the notebook's MEAN and STD: a later cell that
    reuses the names (the data's own statistics, to compare) cost both checks."""
    harness = Harness.of("cifar_cnn_svm")
    written = inspect.getsource(harness.reference_ns["make_transforms"])
    ns = harness.namespace(written, "MEAN, STD = (0.49, 0.48, 0.45), (0.247, 0.243, 0.261)")
    results = harness.grade(ns, ["transforms"])
    assert all(r.status == "pass" for r in results.values()), [r.message for r in results.values()]
    assert ns["STD"] == (0.247, 0.243, 0.261)  # the student's values back afterwards


@pytest.mark.parametrize(
    "normalize, said",
    [
        # Blind round 13: one value for the three channels was told "augmentation belongs to
        # the training transform only", of a test transform that does not augment.
        ("transforms.Normalize([0.4567] * 3, [0.2009] * 3)", "mean (0.4567, 0.4567, 0.4567)"),
        ("transforms.Normalize(MEAN, (0.247, 0.2435, 0.2616))", "std (0.247, 0.2435, 0.2616)"),
        ("transforms.Lambda(lambda x: x)", "ToTensor() alone, without Normalize(MEAN, STD)"),
    ],
)
def test_is_a_test_transform_normalised_otherwise_told_its_constants(normalize, said):
    harness = Harness.of("cifar_cnn_svm")
    written = f"""
def make_transforms():
    to_tensor = [transforms.ToTensor(), {normalize}]
    flip, crop = transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, padding=4)
    return transforms.Compose([flip, crop] + to_tensor), transforms.Compose(to_tensor)
"""
    results = harness.grade(harness.namespace(written), ["transforms"])
    test = results["test_transform_deterministic"]
    assert test.status == "fail" and said in test.message, test.message
    assert "not the given MEAN and STD" in test.message or "alone" in test.message
    train = results["train_transform_augments"]
    assert train.status == "fail" and "the test transform normalises with" in train.message
