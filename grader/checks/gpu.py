"""Stand-ins for a GPU on a grader without one, for code written on Colab's.

`gpu_calls_on_cpu`: `.cuda()`, `.to("cuda")`, and factories, `torch.Generator` and
`torch.set_default_device` given `device="cuda"`, written into graded code run on the CPU,
each call noted (the devices checks charge it; every other check judges what the code
computes). `accelerator_calls_idle`: pin_memory and torch.cuda.synchronize as no-ops.
`Resident`: a CPU tensor standing for a GPU's, so that results handed back without `.cpu()` show
(`.numpy()` raises as for a CUDA tensor); `resident_outputs` makes a model compute on them.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


def _on_cpu(device: Any, asked: list) -> Any:
    """A device argument naming a GPU ("cuda:0", torch.device("cuda"), an ordinal) as the CPU,
    noted in `asked`."""
    gpu = isinstance(device, str) and device.startswith("cuda")
    gpu = gpu or isinstance(device, torch.device) and device.type == "cuda"
    if gpu or (isinstance(device, int) and not isinstance(device, bool)):
        asked.append(str(device))
        return torch.device("cpu")
    return device


# Noted in `asked` where, without the factories mode, code asked torch to start CUDA.
CUDA_STARTED = "torch.cuda initialisation"


@contextlib.contextmanager
def gpu_calls_on_cpu(asked: list, factories: bool = True):
    """Tensor.to and Tensor.cuda (which Module.to and Module.cuda call), and every function given
    a `device` (torch.zeros, torch.tensor, torch.arange, ...), kept on the CPU where student code
    names a GPU, each such call noted in `asked` (the devices checks read it).

    With `factories=False` functions given a GPU raise as torch's do, and `CUDA_STARTED` is noted
    (torch starts CUDA, through `torch.cuda._lazy_init`, before it makes a tensor there): the
    mode that keeps them on the CPU sees every torch call, and made a per-image transform twice
    as slow, so `observe_on_cpu` runs code without it first."""
    to, cuda = torch.Tensor.to, torch.Tensor.cuda

    @functools.wraps(to)  # its name: Resident's __torch_function__ sees "to", not "to_cpu"
    def to_cpu(self, *args, **kwargs):
        n = len(asked)
        if "device" in kwargs:
            kwargs["device"] = _on_cpu(kwargs["device"], asked)
        out = to(self, *[_on_cpu(a, asked) for a in args], **kwargs)
        gpu = len(asked) > n and isinstance(self, Resident)  # a GPU's, to a GPU: stays Resident
        return out.as_subclass(Resident) if gpu else out

    def cuda_cpu(self, *args, **kwargs):
        asked.append("cuda()")
        return self

    generator = torch.Generator

    class Torchs(type(generator)):  # isinstance(g, torch.Generator) holds for torch's own
        def __instancecheck__(cls, obj):
            return isinstance(obj, generator)

    class GeneratorOnCpu(generator, metaclass=Torchs):
        """torch.Generator(device=...) on the CPU for a GPU (noted) and for the devices probe's
        meta device, which has none (blind 15b, fnn v02: "META device type not an
        accelerator" lost train_device); a CPU generator serves meta factories."""

        def __new__(cls, device="cpu"):
            device = _on_cpu(device, asked) or "cpu"  # None: the CPU's, as torch's
            return generator(device="cpu" if torch.device(device).type == "meta" else device)

    default = torch.set_default_device  # "cuda" asks torch.cuda for its current device: raises

    def default_on_cpu(device):
        default(_on_cpu(device, asked))

    start = torch.cuda._lazy_init

    def start_noted():
        asked.append(CUDA_STARTED)
        start()

    torch.Tensor.to, torch.Tensor.cuda, torch.Generator = to_cpu, cuda_cpu, GeneratorOnCpu
    torch.set_default_device = default_on_cpu
    if not factories:
        torch.cuda._lazy_init = start_noted
    try:
        with _FactoriesOnCpu(asked) if factories else contextlib.nullcontext():
            yield
    finally:
        torch.Tensor.to, torch.Tensor.cuda, torch.Generator = to, cuda, generator
        torch.set_default_device, torch.cuda._lazy_init = default, start


@contextlib.contextmanager
def accelerator_calls_idle():
    """Tensor.pin_memory and torch.cuda.synchronize as no-ops while the block runs. The meta
    device stands in for a GPU, so code guarded by `device.type != "cpu"` takes its GPU branch
    here, where the CPU-only grader raises "Found no NVIDIA driver" (blind round 14b, fnn v12:
    pinned batches moved with non_blocking=True, correct on Colab and on a CPU, lost both
    devices checks; the devices probe uses it). Neither changes a value or where a tensor is."""
    pin, synchronize = torch.Tensor.pin_memory, torch.cuda.synchronize
    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self
    torch.cuda.synchronize = lambda *args, **kwargs: None
    try:
        yield
    finally:
        torch.Tensor.pin_memory, torch.cuda.synchronize = pin, synchronize


class _FactoriesOnCpu(TorchFunctionMode):
    """A torch function given `device="cuda"` (or torch.device("cuda"), an ordinal) makes its
    tensor on the CPU, noted in `asked`: an accumulator `torch.zeros(1, device="cuda")`, a Colab
    habit, raised "Found no NVIDIA driver" on the grader and lost every check that ran it. A
    mode, not patched functions: torch.jit.script resolves torch.zeros by identity."""

    def __init__(self, asked: list):
        super().__init__()
        self.asked = asked

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # Every torch call of an observer passes here: without a device, straight through (a
        # per-image transform ran twice as slowly with more work here). A Resident's own
        # __torch_function__ handles .to("cpu"), .cpu() and .type(...).
        if not kwargs or "device" not in kwargs:
            return func(*args, **(kwargs or {}))
        home = _to_cpu(getattr(func, "__name__", ""), args[1:], kwargs)
        out = func(*args, **{**kwargs, "device": _on_cpu(kwargs["device"], self.asked)})
        # torch.as_tensor(t, device="cpu") hands back a tensor already there as it is
        return out.as_subclass(torch.Tensor) if home and isinstance(out, Resident) else out


# What torch raises where numpy is asked for a CUDA tensor's values, and why a `Resident` does.
ON_GPU = (
    "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
    "host memory first (the grader's model computes as on the GPU the notebook runs on)"
)


class Resident(torch.Tensor):
    """A CPU tensor that stands for one on a GPU, for a grader without one: what torch computes
    from it stays Resident, `.cpu()` and `.to("cpu")` give a plain tensor, and numpy (`.numpy()`,
    `np.asarray`, scikit-learn) raises as for a CUDA tensor. A grader's model whose outputs are
    Resident (`resident_outputs`) shows code that would fail, or keep its results on the GPU,
    where the model runs on one (Colab); values read with `.item()` or `.tolist()` are fine."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name, kwargs = getattr(func, "__name__", ""), kwargs or {}
        if name in ("numpy", "__array__") and not kwargs.get("force"):
            raise TypeError(ON_GPU)
        out = super().__torch_function__(func, types, args, kwargs)
        home = isinstance(out, torch.Tensor) and _to_cpu(name, args[1:], kwargs)
        return out.as_subclass(torch.Tensor) if home else out

    def new_empty(self, *args, **kwargs):
        """Resident, as a GPU tensor's stays there: torch's copy.deepcopy of a subclass asks for
        it (`features.append(copy.deepcopy(output))` in a forward hook raised a RuntimeError of
        the grader's making, blind round 15b)."""
        return torch.Tensor.new_empty(self, *args, **kwargs).as_subclass(type(self))


def _to_cpu(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether `name` moves a GPU tensor to the CPU: .cpu(), .to("cpu"), .type(torch.LongTensor),
    torch.as_tensor(t, device="cpu")"""
    if name == "type":  # a dtype (torch.long) keeps the device, a CPU tensor type does not
        kind = args[0] if args else kwargs.get("dtype")
        return kind is not None and not isinstance(kind, torch.dtype) and "cuda" not in str(kind)
    # .to("cpu"), .to(device=...), and any function given device="cpu" (torch.as_tensor)
    to = [*args, kwargs.get("device")] if name == "to" else [kwargs.get("device")]
    cpu = [isinstance(t, str | torch.device) and torch.device(t).type == "cpu" for t in to]
    # .to(other): other's device, the CPU for a tensor that stands for no GPU's
    return name == "cpu" or any(cpu) or name == "to" and torch.Tensor in map(type, to)


def resident_outputs(model: nn.Module) -> nn.Module:
    """`model`, computing on `Resident` inputs from now on: its outputs stand for a GPU's."""
    model.register_forward_pre_hook(
        lambda module, args: tuple(
            a.as_subclass(Resident) if torch.is_tensor(a) else a for a in args
        )
    )
    return model
