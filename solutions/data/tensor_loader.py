"""Batches straight from tensors that already sit on the training device, and augmentations
that work on whole batches.

Why: torchvision's per-sample path (PIL image -> transform -> collate) costs about 10x the
training step of a small model on CPU (see /work/shared/notes/data-and-nbgrader.md). Here a
batch is one index gather, and an augmentation is a few tensor operations on the whole batch.
"""

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Compose",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "TensorLoader",
]


class TensorLoader:
    """Iterate over (x, y) batches of `images` (N, ...) and `labels` (N,).

    Each epoch with `shuffle` draws a fresh `torch.randperm(N, generator=generator)`; a batch
    is `images[idx]` for a slice `idx` of it (no per-sample Python work). `transform`, if any,
    is called on each whole batch `x`. `len()` is the number of batches per epoch.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        drop_last: bool = False,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.transform = transform
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> Tensor | None:
        """A permutation of 0..N-1 on the images' device, or None for the natural order."""
        if not self.shuffle:
            return None
        # randperm must run on the generator's device; the result moves to the data's.
        gen_device = self.generator.device if self.generator is not None else "cpu"
        perm = torch.randperm(len(self.images), generator=self.generator, device=gen_device)
        return perm.to(self.images.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self._order()
        n, bs = len(self.images), self.batch_size
        for b in range(len(self)):
            start, stop = b * bs, min((b + 1) * bs, n)
            if order is None:
                # Views, no copy.
                x, y = self.images[start:stop], self.labels[start:stop]
            else:
                idx = order[start:stop]
                x, y = self.images[idx], self.labels[idx]
            if self.transform is not None:
                x = self.transform(x)
            yield x, y


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """(n,) uniform [0, 1) numbers on `device`, from `generator` or the global RNG."""
    if generator is None:
        return torch.rand(n, device=device)
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _uniform_between(
    lo: float, hi: float, n: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    return lo + (hi - lo) * _uniform(n, generator, device)


def _sample_grid(x: Tensor, theta: Tensor, fill: float) -> Tensor:
    """Resample x (N, C, H, W) through per-sample affine maps theta (N, 2, 3).

    theta maps output coordinates to input coordinates, both in [-1, 1]. Points that fall
    outside the input get `fill`: sampling `x - fill` with zero padding, then adding `fill`
    back, blends borders the same way as a padded image would.
    """
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (N, H, W, 2)
    shifted = x - fill if fill != 0.0 else x
    out = F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill if fill != 0.0 else out


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Flip each image left-right with probability p."""

    p: float = 0.5

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        flip = _uniform(x.shape[0], generator, x.device) < self.p  # (N,)
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


@dataclass(frozen=True)
class RandomRotation:
    """Rotate each image by its own angle drawn uniformly from [-degrees, degrees].

    `degrees` may also be a (min, max) pair. Positive angles turn counter-clockwise, as in
    torchvision. Corners that come from outside the image get `fill`: for normalised inputs
    pass the normalised value of a black pixel, (0 - mean) / std.
    """

    degrees: float | tuple[float, float]
    fill: float = 0.0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = x.shape
        if isinstance(self.degrees, int | float):
            lo, hi = -float(self.degrees), float(self.degrees)
        else:
            lo, hi = self.degrees
        angle = torch.deg2rad(_uniform_between(lo, hi, n, generator, x.device))  # (N,)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Output pixel p samples input pixel R(-angle) p in pixel units (y pointing down, so
        # this turns the picture counter-clockwise). In [-1, 1] units x is scaled by 2/W and y
        # by 2/H, hence the aspect factors on the off-diagonal terms.
        zero = torch.zeros_like(cos)
        theta = torch.stack(
            [
                torch.stack([cos, -sin * (h / w), zero], dim=1),
                torch.stack([sin * (w / h), cos, zero], dim=1),
            ],
            dim=1,
        )  # (N, 2, 3)
        return _sample_grid(x, theta.to(x.dtype), self.fill)


@dataclass(frozen=True)
class RandomResizedCrop:
    """Crop a random box from each image and resize it back to the input's H x W.

    As torchvision: the box covers a fraction of the area drawn from `scale` and has an aspect
    ratio (w/h) drawn log-uniformly from `ratio`. Unlike torchvision, a box that would not fit
    is clipped to the image instead of being redrawn (one draw per sample, no Python loop).
    """

    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = x.shape
        area = _uniform_between(*self.scale, n, generator, x.device)  # (N,) fraction of H*W
        log_r = _uniform_between(
            math.log(self.ratio[0]), math.log(self.ratio[1]), n, generator, x.device
        )
        aspect = torch.exp(log_r)  # (N,) box width / box height, in pixels
        # Box sides as fractions of W and H: (bw W)(bh H) = area H W and bw W / (bh H) = aspect.
        bw = torch.sqrt(area * aspect * h / w).clamp(max=1.0)
        bh = torch.sqrt(area / aspect * w / h).clamp(max=1.0)
        # Box centre in [-1, 1] units, anywhere that keeps the box inside the image.
        cx = (2 * _uniform(n, generator, x.device) - 1) * (1 - bw)
        cy = (2 * _uniform(n, generator, x.device) - 1) * (1 - bh)
        zero = torch.zeros_like(bw)
        theta = torch.stack(
            [torch.stack([bw, zero, cx], dim=1), torch.stack([zero, bh, cy], dim=1)], dim=1
        )  # (N, 2, 3)
        return _sample_grid(x, theta.to(x.dtype), 0.0)


@dataclass(frozen=True)
class RandomCrop:
    """Pad each side by `padding` pixels of `fill`, then cut an H x W window at a random offset.

    Output has the input's shape. For normalised inputs pass the normalised black as `fill`.
    """

    padding: int
    fill: float = 0.0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = x.shape
        p = self.padding
        padded = F.pad(x, (p, p, p, p), value=self.fill)  # (N, C, H + 2p, W + 2p)
        # Integer offsets in 0..2p per sample.
        dy = (_uniform(n, generator, x.device) * (2 * p + 1)).long().clamp(max=2 * p)
        dx = (_uniform(n, generator, x.device) * (2 * p + 1)).long().clamp(max=2 * p)
        rows = dy[:, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = dx[:, None] + torch.arange(w, device=x.device)  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None]  # (N, 1, 1)
        # Advanced indices split by the channel slice put their broadcast shape first:
        # (N, H, W, C), back to (N, C, H, W).
        out = padded[batch, :, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class Compose:
    """Apply batch transforms in order; each gets the same `generator`."""

    transforms: Sequence[Callable[..., Tensor]]

    def __post_init__(self) -> None:
        # A tuple, so that the frozen instance cannot be changed through the list.
        object.__setattr__(self, "transforms", tuple(self.transforms))

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x
