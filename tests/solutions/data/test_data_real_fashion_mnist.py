"""The real Fashion-MNIST (Debian package) through torchvision and through load_split."""

import numpy as np
import pytest
import torch
from torchvision import transforms

from solutions.data import DATASETS, load_split, normalize, torchvision_dataset

INDICES = [0, 1, 4321, 59_999]


@pytest.fixture(scope="module")
def train_split(real_fashion_root):
    return load_split("fashion_mnist", True, root=real_fashion_root)


def test_does_torchvision_see_60000_and_10000_samples(real_fashion_root):
    train = torchvision_dataset("fashion_mnist", True, root=real_fashion_root)
    test = torchvision_dataset("fashion_mnist", False, root=real_fashion_root)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert tuple(train.classes) == DATASETS["fashion_mnist"].classes


def test_does_load_split_give_uint8_nchw_and_int64_labels(real_fashion_root, train_split):
    images, labels = train_split
    assert images.shape == (60_000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert images.is_contiguous()
    test_images, test_labels = load_split("fashion_mnist", False, root=real_fashion_root)
    assert test_images.shape == (10_000, 1, 28, 28) and test_labels.shape == (10_000,)
    assert torch.bincount(labels).tolist() == [6000] * 10


def test_do_load_split_pixels_equal_torchvision_getitem(real_fashion_root, train_split):
    images, labels = train_split
    ds = torchvision_dataset("fashion_mnist", True, root=real_fashion_root)
    for i in INDICES:
        pil, label = ds[i]
        assert np.array_equal(images[i, 0].numpy(), np.asarray(pil))
        assert labels[i].item() == label


def test_does_normalize_match_totensor_then_normalize(real_fashion_root, train_split):
    images, _ = train_split
    info = DATASETS["fashion_mnist"]
    textbook = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(info.mean, info.std)]
    )
    ds = torchvision_dataset("fashion_mnist", True, transform=textbook, root=real_fashion_root)
    ours = normalize(images[INDICES], info.mean, info.std)
    assert ours.dtype == torch.float32 and ours.shape == (len(INDICES), 1, 28, 28)
    expected = torch.stack([ds[i][0] for i in INDICES])
    torch.testing.assert_close(ours, expected)


def test_are_the_catalogued_statistics_those_of_the_training_split(train_split):
    images, _ = train_split
    x = images.to(torch.float32) / 255
    info = DATASETS["fashion_mnist"]
    assert x.mean().item() == pytest.approx(info.mean[0], abs=5e-4)
    assert x.std().item() == pytest.approx(info.std[0], abs=5e-4)
