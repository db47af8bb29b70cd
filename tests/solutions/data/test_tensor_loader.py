"""TensorLoader: index-slice batches over on-device tensors."""

import pytest
import torch

from solutions.data import TensorLoader


def _data(n: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    # images[i] is filled with i, so a batch shows which samples it holds.
    images = torch.arange(n, dtype=dtype).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return images, torch.arange(n)


def test_does_a_shuffled_epoch_cover_every_sample_once():
    images, labels = _data(103)
    loader = TensorLoader(
        images, labels, 10, shuffle=True, generator=torch.Generator().manual_seed(1)
    )
    for _ in range(2):
        seen = []
        for x, y in loader:
            assert torch.equal(x[:, 0, 0, 0].long(), y)  # images and labels stay paired
            seen.append(y)
        order = torch.cat(seen)
        assert sorted(order.tolist()) == list(range(103))
        assert not torch.equal(order, labels)


def test_does_an_unshuffled_loader_keep_the_natural_order():
    images, labels = _data(25)
    batches = list(TensorLoader(images, labels, 10))
    assert [len(y) for _, y in batches] == [10, 10, 5]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)


@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last", "expected"),
    [(100, 10, False, 10), (101, 10, False, 11), (101, 10, True, 10), (5, 10, True, 0)],
)
def test_is_len_the_number_of_batches(n, batch_size, drop_last, expected):
    images, labels = _data(n)
    loader = TensorLoader(images, labels, batch_size, shuffle=True, drop_last=drop_last)
    assert len(loader) == expected
    assert sum(1 for _ in loader) == expected
    if drop_last:
        assert all(len(y) == batch_size for _, y in loader)


def test_is_the_transform_applied_to_each_whole_batch():
    images, labels = _data(30)
    calls = []

    def transform(x):
        calls.append(x.shape[0])
        return x + 1000

    loader = TensorLoader(images, labels, 8, shuffle=True, transform=transform)
    for x, y in loader:
        assert torch.equal(x[:, 0, 0, 0].long(), y + 1000)
    assert calls == [8, 8, 8, 6]


def test_does_the_same_generator_seed_give_the_same_batches():
    images, labels = _data(50)

    def epochs(seed):
        gen = torch.Generator().manual_seed(seed)
        loader = TensorLoader(images, labels, 7, shuffle=True, generator=gen)
        return [torch.cat([y for _, y in loader]) for _ in range(2)]

    first, second = epochs(3), epochs(3)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])  # a fresh permutation each epoch
    assert not torch.equal(first[0], epochs(4)[0])


def test_does_the_loader_serve_uint8_images_unchanged():
    images, labels = _data(12, dtype=torch.uint8)
    x, _ = next(iter(TensorLoader(images, labels, 12, shuffle=True)))
    assert x.dtype == torch.uint8
    assert sorted(x[:, 0, 0, 0].tolist()) == list(range(12))


def test_are_mismatched_lengths_refused():
    with pytest.raises(ValueError):
        TensorLoader(torch.zeros(3, 1, 2, 2), torch.zeros(4), 2)
