"""Batched augmentations on float (N, C, H, W) tensors."""

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from solutions.data import (
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    TensorLoader,
)

ALL = [
    RandomHorizontalFlip(),
    RandomRotation(15),
    RandomResizedCrop(),
    RandomCrop(4),
    Compose([RandomHorizontalFlip(), RandomRotation(10)]),
]


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.rand(8, 3, 20, 24, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_does_every_augmentation_keep_shape_and_dtype(batch, transform):
    out = transform(batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert transform(batch, torch.Generator().manual_seed(0)).shape == batch.shape


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_does_the_same_generator_seed_give_the_same_output(batch, transform):
    first = transform(batch, torch.Generator().manual_seed(5))
    second = transform(batch, torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


def test_does_flip_with_p_1_equal_torch_flip(batch):
    assert torch.equal(RandomHorizontalFlip(p=1.0)(batch), torch.flip(batch, dims=[-1]))
    assert torch.equal(RandomHorizontalFlip(p=0.0)(batch), batch)


def test_does_flip_choose_per_sample(batch):
    out = RandomHorizontalFlip(p=0.5)(batch, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch, strict=True)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_is_rotation_by_zero_the_identity(batch):
    torch.testing.assert_close(RandomRotation(0)(batch), batch)


def test_does_rotation_match_torchvision_for_a_fixed_angle():
    x = torch.rand(4, 1, 28, 28)
    ours = RandomRotation((30.0, 30.0))(x)
    theirs = TF.rotate(x, 30.0, interpolation=TF.InterpolationMode.BILINEAR)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(RandomRotation((90.0, 90.0))(x), torch.rot90(x, 1, (-2, -1)))


def test_does_rotation_fill_the_corners_with_fill():
    x = torch.ones(2, 1, 28, 28)
    out = RandomRotation((45.0, 45.0), fill=-0.81)(x)
    assert out[:, :, 0, 0].allclose(torch.tensor(-0.81))
    assert out[:, :, 14, 14].allclose(torch.tensor(1.0))


def test_is_a_full_square_resized_crop_the_identity(batch):
    square = batch[:, :, :20, :20]
    out = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(square)
    torch.testing.assert_close(out, square)


def test_does_resized_crop_zoom_in():
    # A small crop of a left-to-right ramp has a narrower value range than the image.
    ramp = torch.linspace(0, 1, 32).expand(4, 1, 32, 32)
    out = RandomResizedCrop(scale=(0.25, 0.3))(ramp)
    spread = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))
    assert (spread < 0.75).all()


def test_is_each_random_crop_a_window_of_the_padded_image(batch):
    out = RandomCrop(padding=3, fill=-1.0)(batch)
    padded = torch.nn.functional.pad(batch, (3, 3, 3, 3), value=-1.0)
    _, _, h, w = batch.shape
    for o, p in zip(out, padded, strict=True):
        windows = p.unfold(1, h, 1).unfold(2, w, 1)  # (C, 7, 7, H, W)
        assert (windows == o[:, None, None]).all(dim=(0, 3, 4)).any()
    assert torch.equal(RandomCrop(padding=0)(batch), batch)


def test_does_the_loader_apply_a_batched_transform_without_a_generator():
    images = torch.rand(20, 1, 28, 28)
    transform = Compose([RandomHorizontalFlip(), RandomRotation(10)])
    loader = TensorLoader(images, torch.arange(20), 8, shuffle=True, transform=transform)
    assert [x.shape for x, _ in loader] == [(8, 1, 28, 28), (8, 1, 28, 28), (4, 1, 28, 28)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_do_augmentations_run_on_cuda_with_a_cpu_or_cuda_generator(transform):
    x = torch.rand(16, 3, 32, 32, device="cuda")
    for gen in (None, torch.Generator().manual_seed(0), torch.Generator("cuda").manual_seed(0)):
        out = transform(x, gen)
        assert out.device == x.device and out.shape == x.shape
