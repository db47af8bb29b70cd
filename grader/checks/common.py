"""Helpers shared by observers and judges of every assignment.

Observer-side helpers run next to student code, so they only read and record; whatever decides
points happens in the judges. Nothing here imports `solutions`: the probe process cannot see it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import numbers
import re
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grader.checks.gpu import CUDA_STARTED, gpu_calls_on_cpu
from grader.probe import packages
from grader.probe.packages import Absent
from grader.text import inert


class StopProbe(BaseException):  # noqa: N818 - a signal, not an error
    """Raised from a hook to stop a student's function early.

    A BaseException so that a student's `except Exception:` does not swallow it.
    """


# What a student's function may raise that an observer records as that call's failure, so that
# one function's sys.exit() or KeyboardInterrupt costs another function's checks nothing.
STUDENT_EXITS = (Exception, SystemExit, KeyboardInterrupt)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


NOT_IMPLEMENTED = "not implemented yet (the cell still raises NotImplementedError)"
NOT_DONE = "not implemented yet"  # how every not-implemented description starts


def describe_error(err: BaseException, limit: int = 300) -> str:
    """`Type: message` of an exception raised by student code, short, free of colour codes and
    with every other control character escaped (the student chooses both the type's name and the
    text; the trusted parent escapes them again, see `grader.report`).

    An unfinished solution cell (the release's `raise NotImplementedError()`) says so, and so
    does output past the probe's file size limit (EFBIG's own "File too large" says nothing).
    """
    if isinstance(err, NotImplementedError):
        detail = inert(ANSI.sub("", str(err))).strip()
        told = NOT_IMPLEMENTED
        # Name the student's function that raised (round 15); with its own words, on purpose (15b)
        if (where := _raising_student_function(err)) is not None:
            told = f"{NOT_DONE} ({inert(where)} still raises NotImplementedError)"
            told = f"{inert(where)} raised NotImplementedError" if detail else told
        return (told + (f": {detail}" if detail else ""))[:limit]
    if isinstance(err, OSError) and err.errno == errno.EFBIG:  # the probe's RLIMIT_FSIZE
        return "OSError: output past the grader's size limit (a print in a loop?)"[:limit]
    text = f"{type(err).__name__}: {err}"
    # "cannot unpack non-iterable Absent object": say which modules were stand-ins.
    if "Absent" in text and (names := ", ".join(packages.stand_ins())):
        text += (
            f" (an Absent is what {names} gave: not installed on the grading machine nor handed "
            "in, a stand-in that does nothing took its place)"
        )
    if "does not require grad and does not have a grad_fn" in text:  # blind round 18
        text += (
            " (the loss was computed without gradients: a @torch.no_grad() on the training "
            "function, torch.set_grad_enabled(False), or outputs detached)"
        )
    return inert(ANSI.sub("", text))[:limit]


class WrongValue(Exception):  # noqa: N818 - a finding, not an error of the grader's
    """Raised by an observer when the student's code ran and returned something of the wrong
    kind (a plain class where a module is due, a value where a pair is): a measured wrong
    value, which excuses what builds on it (the scoring policy)."""


# Where IPython compiles a notebook's cells: the student's own code.
STUDENT_CODE = re.compile(r"^<ipython-input-\d+-|ipykernel_\d+[/\\]\d+\.py$|^<string>$")


def _raising_student_function(err: BaseException) -> str | None:
    """The qualified name of the student's function that raised (a `raise` in a cell's function),
    None for a cell's top level or a library's `raise` (torch's for a misspelt forward names its
    module), but nn.Module's forward that the student's calls (blind 15b, `super().forward(x)`)."""
    up, code = [None, None, *(f.f_code for f, _ in traceback.walk_tb(err.__traceback__))][-2:]
    if code is None or code.co_name == "<module>":
        return None
    if code.co_name == "_forward_unimplemented" and up and STUDENT_CODE.search(up.co_filename):
        return f"nn.Module's forward, which {up.co_qualname} calls (super().forward),"
    return code.co_qualname if STUDENT_CODE.search(code.co_filename) else None


def not_done(err: BaseException) -> bool:
    """Whether an exception says the work was not done, rather than done wrong: not
    implemented, a name that is not defined, or a `raise` (or any failure) in the student's
    own code. An exception from inside a library on what the student's code computed (a
    shape mismatch in torch), or from the grader's handling of a value the student's code
    returned, is a wrong value."""
    if isinstance(err, NotImplementedError | NameError) or type(err).__name__ == (
        "MissingDefinition"
    ):
        return True
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and bool(STUDENT_CODE.search(tb.tb_frame.f_code.co_filename))


def failure(err: Exception, limit: int = 300) -> dict:
    """What an observer records for a step that gave no value: {"error": "Type: message"}
    when the work was not done (`not_done`), else {"wrong": why}, a measured wrong value."""
    if isinstance(err, WrongValue):
        return {"wrong": ANSI.sub("", str(err))[:limit]}
    if not_done(err):
        return {"error": describe_error(err, limit)}
    return {"wrong": "raised " + describe_error(err, limit - 7)}


def a_module(value: Any) -> nn.Module:
    """`value` (what the student's class or builder gave) when it is an nn.Module; else a
    `WrongValue` that says what it is."""
    if not isinstance(value, nn.Module):
        raise WrongValue(f"it gave a {type(value).__name__}, not an nn.Module")
    return value


def a_tensor(value: Any, what: str) -> torch.Tensor:
    """`value` (a returned tensor or array) as a detached CPU tensor; else a `WrongValue` that
    says `what` it is ("the image is a str, not a tensor or array")."""
    try:
        return torch.as_tensor(value).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise WrongValue(f"{what} is a {type(value).__name__}, not a tensor or array") from None


def summarise(problems: list[str], limit: int = 3) -> str:
    """The first `limit` problems and how many more there are, for a short message.

    Problems written `subject: explanation` that explain the same thing for several subjects
    (settings) are said once, naming the first subject and how many more: six settings
    with one mistake made a message of six copies of the same sentence.
    """
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        subject, colon, why = problem.partition(": ")
        key = why if colon and subject else problem
        grouped.setdefault(key, []).append(subject if colon else problem)
    said = []
    for why, subjects in grouped.items():
        if len(subjects) == 1:
            said.append(f"{subjects[0]}: {why}" if subjects[0] != why else why)
        else:
            others = len(subjects) - 1
            said.append(f"{subjects[0]} (and {others} more): {why}")
    shown = "; ".join(said[:limit])
    more = len(said) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    """Seeded standard-normal input of `shape` (float32, CPU)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def names_read(code: types.CodeType) -> set[str]:
    """The global (and attribute) names `code` and the code nested in it read (`co_names`)."""
    codes, names = [code], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


def plain(value: Any) -> Any:
    """A tensor as a plain torch.Tensor, anything else as it is: a student's Tensor subclass
    could override exp() or float() to pass raw scores off as log-probabilities."""
    if not isinstance(value, torch.Tensor) or type(value) is torch.Tensor:
        return value
    with torch._C.DisableTorchFunctionSubclass():  # its __torch_function__ is not called
        return torch.Tensor.as_subclass(value, torch.Tensor)


def looks_like_probabilities(out: Any) -> bool:
    """True when every row of a (N, C) output is non-negative and sums to 1 (softmax applied)."""
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or not out.is_floating_point():
        return False
    ones = torch.ones(len(out), dtype=out.dtype)
    return bool((out >= 0).all() and torch.allclose(out.sum(1), ones, atol=1e-4))


def same_values(seen: Any, want: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Whether two observed tensors hold the same numbers (up to float rounding across thread
    counts); anything that is not a tensor of the same shape is different."""
    if not (isinstance(seen, torch.Tensor) and isinstance(want, torch.Tensor)):
        return False
    if seen.shape != want.shape:
        return False
    scale = float(want.abs().max()) if want.numel() else 0.0
    return bool(torch.allclose(seen.double(), want.double(), rtol=rtol, atol=atol * max(1, scale)))


def along(seen: Any, want: Any, tol: float = 1e-3) -> bool:
    """Whether observed tensor `seen` is a positive multiple of `want` to `tol` of its norm: a
    step taken with the gradients clipped to a norm (or a loss scaled by a constant) goes the
    reference's way, shorter or longer, while a gradient of another loss turns it. A step with
    the gradients clipped to a value (clip_grad_value_) is `want` with every entry cut to the
    largest of `seen` (blind round 19)."""
    if not same_values(seen, want):  # the same numbers, or a multiple of them
        if not isinstance(seen, torch.Tensor) or seen.shape != getattr(want, "shape", None):
            return False
        a, b = seen.double().flatten(), want.double().flatten()
        scale = float(a @ b) / max(float(b @ b), 1e-30)
        if scale > 0 and float((a - scale * b).norm()) <= tol * float(a.norm()):
            return True
        cut = b.sign() * b.abs().clamp(max=float(a.abs().max()))  # 0 for a step never taken
        return bool(a.any()) and float((a - cut).norm()) <= tol * float(a.norm())
    return True


def unregistered_modules(module: nn.Module) -> list[str]:
    """Attributes that hold modules PyTorch cannot see: plain lists, tuples or dicts of them,
    and layers with parameters kept on the class ("Class.name"), which no instance registers."""
    found, registered = [], {id(layer) for layer in module.modules()}
    for name, value in vars(module).items():
        # _modules: PyTorch's own registry of the registered children
        if name == "_modules" or not isinstance(value, list | tuple | dict):
            continue
        items = value.values() if isinstance(value, dict) else value
        # layers in a list that are each registered too (register_module): blind round 17
        if any(isinstance(v, nn.Module) and id(v) not in registered for v in items):
            found.append(name)
    cls = type(module)
    for name, value in vars(cls).items():  # `layers = nn.ModuleList()` in the class body
        if isinstance(value, nn.Module) and any(True for _ in value.parameters()):
            found.append(f"{cls.__name__}.{name}")
    for child in module.children():
        found += unregistered_modules(child)
    return found


def unregistered_hint(names: list[str] | None) -> str:
    """What to say after a parameter problem when attributes `names` hold layers PyTorch does
    not see (`unregistered_modules`); "" when there are none."""
    if not names:
        return ""
    if "." in names[0]:  # a layer kept on the class
        return (
            f" ({names[0]} is a class attribute: one object that every instance shares and "
            f"PyTorch does not register: assign self.{names[0].split('.')[-1]} in __init__)"
        )
    return (
        f" (attribute {names[0]!r} keeps layers in a plain Python container, which PyTorch "
        "does not register: use nn.ModuleList or nn.Sequential)"
    )


def jsonable(value: Any, depth: int = 0) -> Any:
    """Turn a student-returned value into plain JSON data, never calling student methods twice.

    Numbers become int/float (tensors, numpy scalars, Fraction and Decimal included), sequences
    lists (a torch.Size too), dicts dicts with string keys; anything else becomes a short repr.
    """
    if depth > 6:
        return "<too deep>"
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:500]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(value)
    if isinstance(value, torch.Tensor):
        if value.numel() <= 64:
            return jsonable(value.detach().cpu().tolist(), depth + 1)
        return f"<tensor of shape {list(value.shape)}>"
    if isinstance(value, Absent):  # a missing package's stand-in answers tolist(): say what it is
        return repr(value)[:300]
    if isinstance(value, dict):
        return {str(k)[:100]: jsonable(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in list(value)[:1000]]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        try:
            return jsonable(value.tolist(), depth + 1)
        except Exception:  # noqa: BLE001 - anything odd becomes a repr below
            pass
    if isinstance(value, numbers.Number) and not isinstance(value, complex):  # Fraction, Decimal
        return jsonable(float(value), depth + 1)
    return f"<{type(value).__name__}>"


def param_shapes(module: nn.Module) -> list[list[int]]:
    """Shapes of all registered parameters, sorted: module layout and names do not matter."""
    return sorted([list(p.shape) for p in module.parameters()])


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def modules_of_type(module: nn.Module, kinds: type | tuple[type, ...]) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kinds)]


def record_calls(
    modules: Iterable[nn.Module], what: Callable[[nn.Module, tuple], Any]
) -> tuple[list, Callable[[], None]]:
    """Register forward pre-hooks that append `what(module, inputs)` per call, in call order."""
    seen: list = []
    handles = [
        m.register_forward_pre_hook(lambda mod, inputs: seen.append(what(mod, inputs)))
        for m in modules
    ]
    return seen, lambda: [h.remove() for h in handles]


def sample_shape(output: Any, batch: int) -> Any:
    """Shape of one sample of a forward's result (batch dimension dropped), as a list.

    Expected answers are per sample; anything else (a lost batch dimension, not a tensor)
    comes back as a description that cannot equal them.
    """
    if not isinstance(output, torch.Tensor):
        return f"<{type(output).__name__}, not a tensor>"
    if output.dim() == 0 or output.shape[0] != batch:
        return f"{list(output.shape)} for a batch of {batch}"
    return list(output.shape[1:])


def device_probe(run: Callable[[nn.Module], Any], model: nn.Module) -> dict:
    """Call `run(model)` with a hook that records, at the first forward, where model and batch are.

    The caller passes `torch.device("meta")` to the student's function inside `run`: a function
    that moves the model and the batch to the device it is given shows ("meta", "meta"), one that
    forgets the batch shows ("cpu", "meta"); the hook stops the latter at once. The former runs
    on, on meta tensors (no values), until it ends or asks for a value (`loss.item()`); where it
    first mixes a meta tensor with one left on the CPU (labels not moved) is recorded as "mixed":
    on a GPU that line raises the same error. `model` is the grader's own, so its forward never
    mixes devices itself.
    """
    seen: dict = {}

    def hook(module, inputs):
        if "input_device" in seen:
            return
        first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        param = next(module.parameters(), None)
        seen["input_device"] = first.device.type if first is not None else None
        seen["param_device"] = param.device.type if param is not None else None
        if (seen["input_device"], seen["param_device"]) != ("meta", "meta"):
            raise StopProbe

    handle = model.register_forward_pre_hook(hook)
    try:
        run(model)
    except StopProbe:
        pass
    except STUDENT_EXITS as err:  # reported as data; the judge decides
        text = describe_error(err, 500)
        mixed = "input_device" in seen and re.search(MIXED_DEVICES, str(err))
        seen["mixed" if mixed else "error"] = text
    finally:
        handle.remove()
    return seen


def observe_on_cpu(observe: Callable, ctx: Any, before_again: Callable = lambda: None) -> Any:
    """`observe(ctx)` under `torch_defaults`, first without the mode that keeps factories given a
    GPU on the CPU (it slows every torch call: observers 10-20% slower); again with it, after
    `before_again()` (the probe restores what student code may not change), where the first run
    asked torch for a GPU. Torch's errors in that first run are not the student's: dropped.
    The notebook's globals are bound back after each run (`globals_kept`)."""
    ns = getattr(ctx, "ns", None)
    with globals_kept(ns), torch_defaults(factories=False) as asked:
        try:
            result = observe(ctx)
        except STUDENT_EXITS:
            if CUDA_STARTED not in asked:
                raise
    if CUDA_STARTED not in asked:
        return result
    before_again()
    with globals_kept(ns), torch_defaults():
        return observe(ctx)


@contextlib.contextmanager
def globals_kept(ns: Mapping[str, Any]) -> Iterator[None]:
    """The notebook's global names bound afterwards as they were before the block: student code
    a check calls may rebind them (`global mean_image, std_image` in standardisation_images,
    called by the grader on data of its own), and the checks after it must read the notebook's
    values (blind 19 mlp s22: notebook_statistics and final_accuracy then read the statistics of
    the grader's small images, 34/40). Names the block added are removed again."""
    saved = dict(ns) if isinstance(ns, MutableMapping) else None
    try:
        yield
    finally:
        if saved is not None:
            for name in [n for n in ns if n not in saved]:
                del ns[name]
            ns.update((n, v) for n, v in saved.items() if ns.get(n, ns) is not v)


@contextlib.contextmanager
def torch_defaults(factories: bool = True):
    """Student code observed under torch's defaults, whatever global state its cells left.

    The checks judge what the code computes, not its precision: autocast left on (a GPU's
    speed-up, `torch.autocast(device.type)`) runs bfloat16 on the grader's CPU, whose rounding
    moves batch-norm statistics and flips Rprop's signs (read as a wrong mode or a forgotten
    zero_grad()), and autocast refuses the placement probe's "meta" device even when disabled.
    So does `torch.set_float32_matmul_precision("medium")` (bfloat16 matmuls on a CPU that has
    them). A late cell's `torch.set_default_dtype(torch.float64)` made float64 models, inputs
    and random draws (other augmentations); `torch.set_grad_enabled(False)` left nothing to train.
    `torch.compile(model)` runs eagerly, computing the same: inductor cannot compile the
    placement probe's meta tensors (blind round 11: train_device lost), and compiling on the
    grader's CPU costs more than the checks; so do modules that `torch.jit.script` (or trace)
    builds here: a scripted nn.Linear runs no forward hook and no torch function mode, and a
    scripted block is a ScriptModule that isinstance(m, ResBlock) does not recognise (blind round
    17: mlp_tuning's "0 nn.Linear layer calls", res_dense_nets' blocks counted 0 and DenseNet
    wiring unseen). `.cuda()` and `.to("cuda")` written in, a Colab habit, run on the CPU (the
    grader has no GPU: each check that called them raised): only the devices checks charge them
    (`gpu_calls_on_cpu`), blind round 14. So do factories given a GPU, unless `factories` is
    False (see `observe_on_cpu`). Yields what named a GPU.
    """
    import torch._dynamo  # here, not at the top: the host process never needs it

    autocast = torch.amp.autocast_mode.autocast
    init, dtype, grad = autocast.__init__, torch.get_default_dtype(), torch.is_grad_enabled()
    matmul = torch.get_float32_matmul_precision()

    def off(self, device_type, *args, **kwargs):
        init(self, "cpu", enabled=False)

    autocast.__init__ = off
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.set_float32_matmul_precision("highest")
    jit, torch.jit._state._enabled.enabled = torch.jit._state._enabled.enabled, False
    try:
        asked: list = []  # what named a GPU (gpu.CUDA_STARTED: torch was asked to start CUDA)
        with torch._dynamo.config.patch(disable=True), gpu_calls_on_cpu(asked, factories):
            yield asked
    finally:
        autocast.__init__ = init
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        torch.set_float32_matmul_precision(matmul)
        torch.jit._state._enabled.enabled = jit


# What torch raises where one operation gets tensors on two devices (meta here, cuda on Colab).
MIXED_DEVICES = r"is not on the expected device|Expected all tensors to be on the same device"


def describe_shapes(shapes: list[list[int]]) -> str:
    return ", ".join("x".join(map(str, s)) or "() (a scalar)" for s in shapes) or "none"


def diff_shapes(expected: list[list[int]], seen: list[list[int]]) -> str:
    """Multiset difference of two sorted shape lists, for a message."""
    missing, extra = list(expected), []
    for shape in seen:
        if shape in missing:
            missing.remove(shape)
        else:
            extra.append(shape)
    parts = []
    if missing:
        parts.append(f"missing parameters of shape {describe_shapes(missing)}")
    if extra:
        parts.append(f"unexpected parameters of shape {describe_shapes(extra)}")
    return "; ".join(parts)


def near(got: Any, want: float) -> bool:
    """A returned number equal to `want` up to float rounding."""
    return isinstance(got, int | float) and abs(got - want) <= 1e-5 * max(1, want)


def as_tensor(value: Any) -> torch.Tensor | None:
    """A float32 CPU copy of a returned tensor or array, None for anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().clone()
    if hasattr(value, "__array__") and not isinstance(value, str | bytes):
        try:
            return torch.as_tensor(value).float().clone()
        except Exception:  # noqa: BLE001 - not array-like after all
            return None
    return None


def per_pixel(seen: Any, want: torch.Tensor) -> torch.Tensor | None:
    """`seen` in `want`'s shape when it is a tensor of as many numbers (a (1, 28, 28) image for a
    (28, 28) one: the shape is the shape check's business, not the values'), else None."""
    if not isinstance(seen, torch.Tensor) or seen.numel() != want.numel():
        return None
    return seen.reshape(want.shape)


def pair_of(value: Any, names: str) -> tuple:
    """`value`, a student's function's result, as the pair `names` ("(model, optimizer)") it
    must be; WrongValue saying what it is instead. A generator (or other iterator) of two counts:
    the notebook only ever unpacks the result, `a, b = f(...)`, which reads it the same way."""
    if isinstance(value, Iterator):  # three at most: an endless generator is no pair either
        value = list(itertools.islice(value, 3))
    if isinstance(value, tuple | list) and len(value) == 2:
        return tuple(value)
    raise WrongValue(f"it returned {kind_of(value)}, not {names}")


def kind_of(value: Any) -> str:
    """What a returned value is, for a message: "a tensor of shape (28, 28)", "a float"."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def flat_gradient(value: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """d value / d params, flattened into one vector; zeros for a parameter `value` does not
    depend on (so two values that differ only there still compare)."""
    grads = torch.autograd.grad(value, params, allow_unused=True)
    full = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    return torch.cat([g.reshape(-1) for g in full])


def saved_state(path: Any) -> Any:
    """What a file saved with `torch.save` holds, for comparison with the reference's: sorted
    [shape, sum] of a state_dict's tensors, or a description of why it is none (a dict holding
    more than tensors, such as a checkpoint {"model_state_dict": ..., "epoch": ...}, by its
    first keys: it loads, so it is not called unloadable)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - the judge compares it with the reference's
        return f"<not loadable with weights_only=True: {describe_error(err)}>"
    if not isinstance(state, dict):
        return f"<{type(state).__name__}>"
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(repr(k)[:40] for k in list(state)[:3]) + (
            ", ..." if len(state) > 3 else ""
        )
        return f"<a dict of more than tensors (keys {keys}), such as a checkpoint>"
    return sorted([list(v.shape), round(float(v.double().sum()), 4)] for v in state.values())


def holds_state(model: nn.Module, state: dict) -> bool:
    """Whether `model`'s state_dict is `state`: the same names, equal tensors."""
    own = model.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k], v) for k, v in state.items())


def child_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of each direct submodule (named_children) of `model`, and the "total"."""
    counts = {name: param_count(child) for name, child in model.named_children()}
    return {**counts, "total": param_count(model)}


def json_file_problem(path: Path, entries: str = "entries") -> str:
    """Why no JSON object holding `entries` ("runs") was read from the file at `path` (absent,
    not valid JSON, empty or not an object), for a message; "" when it holds one."""
    if not path.is_file():
        return f"{path.name} was not handed in"
    try:
        data = json.loads(path.read_bytes())
    except ValueError as err:
        return f"{path.name} is not valid JSON ({str(err)[:200]})"
    return "" if isinstance(data, dict) and data else f"{path.name} holds no {entries}"


def tensor_record(value: Any, key: str) -> dict:
    """A returned tensor as an observer records it: its values under `<key>_tensor` (CPU) and
    its dtype and device under `key`; anything else as a description under `key`."""
    if not isinstance(value, torch.Tensor):
        return {key: f"<{type(value).__name__}>"}
    meta = {"dtype": str(value.dtype), "device": value.device.type}
    return {f"{key}_tensor": value.detach().cpu(), key: meta}


def array_record(value: Any, key: str) -> dict:
    """A returned tensor or array as an observer records it for its values: what it is
    (`<key>_type`, `kind_of`), whether it is a float32 tensor (`<key>_float`) and, when it has
    any, its values as a float32 CPU tensor (`<key>_tensor`, `as_tensor`)."""
    float32 = isinstance(value, torch.Tensor) and value.dtype == torch.float32
    record = {f"{key}_type": kind_of(value), f"{key}_float": float32}
    if (tensor := as_tensor(value)) is not None:
        record[f"{key}_tensor"] = tensor
    return record
