"""Mixed devices told on the meta device the way CUDA tells them (`behaviour._placement_error`).

A meta tensor stands for a GPU's, but some of torch's meta kernels check no devices: a
convolution with a CPU weight (a kernel made above the class, F.conv2d(x, kernel)) or
index_select and gather with a CPU index run on meta and raise on CUDA ("Expected all tensors
to be on the same device ... wrapper_CUDA__index_select"). `cuda_like_devices` raises as CUDA
does where one operation gets a meta tensor beside a CPU tensor of one or more dimensions; CPU
scalars (0-d, torch.tensor(2.0)) mix with any device, and indexing (x[idx], x[idx] = v) and
copies (out[:, :c] = t, t.to(x)) take a CPU tensor on CUDA too.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CROSS_DEVICE = {"index.Tensor", "index_put.default", "index_put_.default", "copy_.default"}
CROSS_DEVICE |= {"_index_put_impl_.default", "_to_copy.default", "copy.default"}


class cuda_like_devices(TorchDispatchMode):  # noqa: N801 - used as a context manager
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if func.__name__ not in CROSS_DEVICE and any(t.is_meta for t in tensors):
            if any(t.device.type == "cpu" and t.dim() > 0 for t in tensors):
                raise RuntimeError(
                    "Expected all tensors to be on the same device, but found at least two "
                    f"devices, meta and cpu! (when running {func})"
                )
        return func(*args, **(kwargs or {}))
