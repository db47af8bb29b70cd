"""Does the transforms family pass a flip and a padded crop (before or after normalising) and
catch a training transform without them, a wrong padding and a test transform that augments?"""

from __future__ import annotations

import pytest

# make_transforms(mean, std, augment) with its parts replaced: (training augmentations with
# augment=True, steps after ToTensor and Normalize, test augmentations), and whether it passes
# (train_transform_augments, test_transform_deterministic).
FLIP, CROP = "transforms.RandomHorizontalFlip()", "transforms.RandomCrop(28, padding=2)"
WRITTEN = {
    "the reference's order": (([FLIP, CROP], [], []), (True, True)),
    "flip and crop after normalising": (([], [FLIP, CROP], []), (True, True)),
    "no crop": (([FLIP], [], []), (False, True)),
    "padding 1": (([FLIP, "transforms.RandomCrop(28, padding=1)"], [], []), (False, True)),
    "a test transform that flips": (([FLIP, CROP], [], [FLIP]), (True, False)),
}


def _make_transforms(before: list[str], after: list[str], test: list[str]) -> str:
    return f"""
def make_transforms(mean, std, augment=False):
    to_tensor = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    train = ([{", ".join(before)}] + to_tensor + [{", ".join(after)}]) if augment else to_tensor
    return transforms.Compose(train), transforms.Compose([{", ".join(test)}] + to_tensor)
"""


@pytest.mark.parametrize("written", sorted(WRITTEN))
def test_does_each_transform_pass_only_the_checks_it_should(harness, written):
    parts, verdicts = WRITTEN[written]
    ns = harness.namespace(_make_transforms(*parts))
    results = harness.grade(ns, ["transforms"])
    names = ("train_transform_augments", "test_transform_deterministic")
    passed = tuple(results[name].status == "pass" for name in names)
    assert passed == verdicts, [results[name].message for name in names]
