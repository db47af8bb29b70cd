"""Whether a module's forward runs on a GPU, judged on the CPU: a copy of it on the meta device.

`placement_error` (the behaviour family's `outputs` records it) runs the copy on an input moved
to meta. Where one operation gets tensors on two devices torch raises, on a GPU as here, for
most operations; the meta kernels of a few (matrix products, convolutions: `h @ torch.ones(10,
1)` made in forward) check no devices, so `_SameDevice` raises for them as CUDA does.
"""

from __future__ import annotations

import contextlib
import copy
import re

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map_only

from grader.checks.common import MIXED_DEVICES, STUDENT_EXITS, describe_error, names_read

# Operations that CUDA runs with CPU tensors among their arguments: indices (x[idx], x[idx] = v)
# and copies from one device to another. Elsewhere a CPU tensor of one dimension or more fails.
CPU_ARGUMENTS = {"index", "_unsafe_index", "index_put", "index_put_", "_index_put_impl_"} | {
    "_to_copy",
    "copy",
    "copy_",
    "lift_fresh",
    "lift_fresh_copy",
}


class _SameDevice(TorchDispatchMode):
    """Raises as CUDA does where an operation gets a meta tensor and a CPU tensor that is not a
    0-d one (those CUDA kernels take as numbers: torch.tensor(2.0) is fine on a GPU)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ not in CPU_ARGUMENTS:
            tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            if any(t.is_meta for t in tensors) and any(t.is_cpu and t.dim() for t in tensors):
                raise RuntimeError(
                    "Expected all tensors to be on the same device, but found at least two "
                    f"devices, meta and cpu! (in {func.overloadpacket.__name__})"
                )
        return func(*args, **kwargs)


def _mixed_devices(twin: nn.Module, x: torch.Tensor, training: bool) -> str | None:
    """The error of one forward pass of `twin` (on the meta device) on `x` moved there, in the
    given mode, if it is one of mixed devices."""
    twin.train(training)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]), _SameDevice():
            twin(x.to("meta"))
    except STUDENT_EXITS as err:  # noqa: BLE001 - the student's forward raising
        if re.search(MIXED_DEVICES, str(err)):
            return describe_error(err, 300)
    return None


def placement_error(module: nn.Module, x: torch.Tensor) -> str | None:
    """What a copy of the module moved to the meta device raises on `x` moved there too, in
    evaluation or training mode, where one operation mixes devices, if the cause is what stays
    on the CPU whatever device the model is on: a tensor that forward makes without a device
    (torch.rand(shape), torch.zeros(n): made on meta when that is the default device, the error
    goes), a plain tensor attribute (or a list of them) that .to(device) does not move (no
    register_buffer: moved by hand, the error goes) or a notebook-level tensor its methods read
    (`_globals_on_meta`). On a GPU that line fails as well. None for other errors (a value asked
    of a meta tensor) and for a device the code names itself (x.to(device) with the notebook's
    global `device`, which is the GPU on Colab, the CPU here)."""
    try:
        twin = copy.deepcopy(module).to("meta")
    except STUDENT_EXITS:  # noqa: BLE001 - a module that cannot be copied: not judged so
        return None
    for training in (False, True):
        if not (error := _mixed_devices(twin, x, training)):
            continue
        for part in twin.modules():  # plain tensor attributes (lists of them: self.masks = [...])
            for name, value in list(vars(part).items()):  # as register_buffer would move them
                if isinstance(value, torch.Tensor) or name[0] != "_" and type(value) in PLAIN:
                    vars(part)[name] = tree_map_only(torch.Tensor, lambda t: t.to("meta"), value)
        with torch.device("meta"), _globals_on_meta(twin):
            return error if _mixed_devices(twin, x, training) is None else None
    return None


PLAIN = (list, tuple, dict)  # containers of plain tensor attributes


@contextlib.contextmanager
def _globals_on_meta(module: nn.Module):
    """The tensors that the methods of the module's own classes read from their notebook's
    globals (POOL_KERNEL = torch.full(...) above the class, blind round 14b), moved to meta while
    the block runs: .to(device) moves no such tensor, so it stays on the CPU on Colab too."""
    swapped = []
    for cls in {type(m) for m in module.modules() if not type(m).__module__.startswith("torch")}:
        for fn in (f for f in vars(cls).values() if hasattr(f, "__code__")):
            space = fn.__globals__
            for name in names_read(fn.__code__):
                if isinstance(value := space.get(name), torch.Tensor) and not value.is_meta:
                    swapped.append((space, name, value))
                    space[name] = value.to("meta")
    try:
        yield
    finally:
        for space, name, value in reversed(swapped):
            space[name] = value
