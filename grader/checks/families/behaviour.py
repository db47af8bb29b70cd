"""Behaviour under fixed weights: the same parameter values, chosen from each shape alone.

Two modules that compute the same function give the same outputs once every parameter holds a
value that depends only on its shape (and the run's seed): parameter names, their order, the
module layout (`nn.Sequential`, functional calls, other attribute names) do not matter, the
computation does. An activation in another place, a pooling window that keeps the output size
but averages other pixels, a missing skip connection: the outputs differ.

Values: tensors of two or more dimensions get uniform values scaled by 1/sqrt(fan_in) (so
activations stay of order one through deep stacks); vectors (biases, batch-norm scales and
shifts) get values in [0.5, 1.5), positive so that a batch-norm scale never flips a sign.
Batch-norm running statistics are reset to their initial values: a dummy forward pass in
`__init__` (sizing a layer) has moved them in training mode.

For an assignment's own checks of what happens inside a network: `same_outputs` (two recorded
`outputs`), `dropout_problem` (inverted dropout, judged from a layer's outputs with and without it),
`gradient_problem` (right outputs that train fewer parameters than the reference's, or pass
another gradient back to a block's input, as `outputs` records),
`backward_error` (what one training step's backward pass raises), `batch_statistics_problem`
(batch norm that needs a batch in evaluation mode), `features_against` (what a features
function returned, against a layer's outputs; `features_on` calls it), `norm_modes` and
`norm_modes_problem` (whether batch norm makes training and evaluation mode differ) and
`training_setup` (which parameters train, which an optimiser holds). For the modules family's
messages: `eval_random_problem` (outputs that change from call to call in evaluation mode:
dropout left on, or a layer built inside forward), `built_hint` and `training_only_problem`.
"""

from __future__ import annotations

import contextlib
import math
import zlib

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parameter import is_lazy
from torch.nn.utils.parametrize import is_parametrized
from torch.utils.data import DataLoader, TensorDataset

from grader.checks.common import (
    a_tensor,
    describe_error,
    diff_shapes,
    modules_of_type,
    pair_of,
    plain,
    same_values,
)
from grader.checks.families.layouts import MODES, hand_matrices
from grader.checks.families.linears import linear_calls
from grader.checks.families.placement import placement_error
from grader.checks.gpu import Resident, resident_outputs


def value_for(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The fixed value of any parameter of `shape` in a run seeded with `seed`."""
    salt = zlib.crc32(repr(tuple(shape)).encode())
    generator = torch.Generator().manual_seed((seed * 1_000_003 + salt) % (2**63))
    uniform = torch.rand(shape, generator=generator)
    if len(shape) <= 1:
        return 0.5 + uniform
    fan_in = math.prod(shape[1:])
    return (uniform * 2 - 1) * math.sqrt(3 / fan_in)


@torch.no_grad()
def shape_lazy(module: nn.Module, x: torch.Tensor) -> None:
    """Shape the module's lazy layers (nn.LazyLinear, nn.LazyConv2d) by one forward pass of `x`
    in evaluation mode; its mode is left as it was. Nothing to do without lazy layers."""
    if any(is_lazy(p) for p in module.parameters()):
        training = module.training
        module.eval()(x)
        module.train(training)


EPS_TOLERATED = 1e-2  # batch norm's eps up to this is set to the default (`fix_parameters`)


@torch.no_grad()
def fix_parameters(module: nn.Module, seed: int, x: torch.Tensor | None = None) -> None:
    """Give every parameter of `module` its shape's fixed value, every batch norm its initial
    running statistics (and a small eps the default); lazy layers are shaped first by `x`
    (`shape_lazy`)."""
    if x is not None:
        shape_lazy(module, x)
    for parameter in module.parameters():
        parameter.copy_(value_for(tuple(parameter.shape), seed))
    for norm in modules_of_type(module, nn.modules.batchnorm._NormBase):
        norm.reset_running_stats()
        # eps, a constant for numerical stability that no instructions set (Keras' 1e-3, blind
        # round 17): PyTorch's default, the references'. A large one (BatchNorm2d(32, 32) read
        # as Conv2d's in and out: eps=32) changes the function and is kept.
        if norm.eps <= EPS_TOLERATED:
            norm.eps = 1e-5


def _transposed(module: nn.Module, x: torch.Tensor, seed: int) -> dict:
    """`outputs`' evaluation and training tensors ("transposed_" before their keys) with each
    of `hand_matrices` given the transpose of its transposed shape's value (the value nn.Linear's
    weight gets); every value (and buffer: a hand-built batch norm's statistics) put back after.
    {} without such matrices."""
    matrices, seen = hand_matrices(module), {}
    if not matrices:
        return seen
    buffers = [b.clone() for b in module.buffers()]
    with torch.no_grad():
        for parameter in matrices:
            parameter.copy_(value_for(tuple(parameter.shape)[::-1], seed).T)
        for mode in MODES:
            module.train(mode == "train")
            _seed_masks(seed)
            if isinstance(out := plain(module(x)), torch.Tensor) and out.is_floating_point():
                seen[f"transposed_{mode}_tensor"] = out.detach().float()
        for buffer, kept in zip(module.buffers(), buffers, strict=True):
            buffer.copy_(kept)
    fix_parameters(module, seed)
    return seen


# Masks (dropout, noise) come from a stream of their own: were the global generator seeded with
# the inputs' seed (`common.inputs`), `torch.randn_like(x)` in forward would give x itself, and
# noise added in training mode alone (x + 0.05 * randn_like(x)) would only rescale x, which a
# batch norm after it undoes: a network the instructions do not describe would pass.
MASKS = 0x6D61736B


def _seed_masks(seed: int) -> None:
    torch.manual_seed(seed ^ MASKS)


def outputs(module: nn.Module, x: torch.Tensor, seed: int, data: bool = False) -> dict:
    """The module's outputs on `x` under fixed weights, in evaluation then training mode; `data`:
    whether `x` stands for the data itself (a classifier), not a layer's input (`_unreached`).

    Evaluation first, while batch-norm running statistics still hold their initial values;
    dropout masks come from the seeded global generator, the same for student and reference.
    "train_random": whether training mode gives other outputs under another seed;
    "eval_random": whether evaluation mode does (dropout left on: `F.dropout(x, p)` without
    `training=self.training`), measured before training mode moves the running statistics;
    "dropout_calls": how many times torch's dropout ran (masks drawn otherwise when none did);
    "built_in_forward": the classes of the layers with parameters that the evaluation-mode
    forward builds (`nn.Linear(...)(x)` inside forward: new random weights on every call);
    "dropout_built_in_forward": the dropout layers it builds (`nn.Dropout(p)(x)`: a new layer in
    training mode, which `model.eval()` never reaches);
    "unreached", "reached", "input_grad_tensor": which parameters training cannot change, the
    gradient that reaches the input (`_unreached`), last.
    """
    fix_parameters(module, seed)
    seen, calls, built = _transposed(module, x, seed), [], []
    for mode in ("eval", "train"):
        module.train(mode == "train")
        _seed_masks(seed)
        with torch.no_grad(), _Draws(calls), _modules_built(built, mode == "eval"):
            out = plain(module(x))
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            seen[f"{mode}_tensor"] = out.detach().float()
        else:
            seen[f"{mode}_output"] = f"<{type(out).__name__}, not a float tensor>"
        if mode == "eval" and "eval_tensor" in seen:
            _seed_masks(seed + 1)
            with torch.no_grad():
                seen["eval_random"] = not same_values(plain(module(x)), seen["eval_tensor"])
    if "train_tensor" in seen:  # masks drawn from the RNG: other draws (torch.rand) differ
        _seed_masks(seed + 1)
        with torch.no_grad():
            seen["train_random"] = not same_values(plain(module(x)), seen["train_tensor"])
    # nn.Dropout's and F.dropout's (masks like the reference's), masks of its own (torch.rand)
    seen["dropout_calls"], seen["hand_draws"] = calls.count(1), calls.count("draw")
    mine = {id(p) for p in module.parameters()}  # `self.layers[:-1]` builds no new weights
    with_weights = (m for m in built if any(id(p) not in mine for p in m.parameters()))
    seen["built_in_forward"] = sorted({type(m).__name__ for m in with_weights})
    dropouts = (m for m in built if isinstance(m, nn.modules.dropout._DropoutNd))
    seen["dropout_built_in_forward"] = sorted({type(m).__name__ for m in dropouts})
    seen["buffer_shapes"] = sorted(list(b.shape) for b in module.buffers())  # for a message
    seen["parametrized"] = parametrized_layers(module)
    seen.update(_unreached(module, x, seed, data))
    if error := placement_error(module, x):
        seen["placement_error"] = error
    return seen


def parametrized_layers(module: nn.Module) -> list[str]:
    """The names of (at most five of) the layers wrapped in a parametrization."""
    return [n for n, m in module.named_modules() if is_parametrized(m)][:5]


def parametrized_hint(seen: dict) -> str:
    """Blind round 17 (cifar v02, fnn s15): layers wrapped in weight_norm or spectral_norm
    compute their weight from parameters of their own (a magnitude and a direction; the weight
    over its largest singular value): name the first, or ""."""
    if not (names := seen.get("parametrized")):
        return ""
    return (
        f" (layer {names[0]} carries a parametrization such as weight_norm or spectral_norm, "
        "which computes its weight from parameters of its own: the instructions' layers are plain)"
    )


def other_outputs(name: str, seen: dict, want: dict) -> str:
    """What to say of outputs that differ in mode `name` under the same parameter values; where
    the parameters' shapes differ they are not the same values: say how (bias=False, say)."""
    shapes, target = seen.get("param_shapes"), want.get("param_shapes")
    if shapes is not None and target is not None and shapes != target:
        return (
            f"it computes other outputs than the reference in {name} mode, and its parameters "
            f"are not the reference's: {diff_shapes(target, shapes)} (check its layers, and "
            f"their biases, against the instructions){parametrized_hint(seen)}"
        )
    said = (
        f"with the same parameter values as the reference it computes other outputs in "
        f"{name} mode (check the order of the layers, activations, pooling and the "
        "skip or concatenation paths against the instructions)"
    ) + parametrized_hint(seen)
    buffers, target = seen.get("buffer_shapes") or [], list(want.get("buffer_shapes") or [])
    # The multiset differences: a buffer both hold is taken off the other's list.
    extra = [b for b in buffers if b not in target or target.remove(b)]
    if extra and "buffer_shapes" in want:
        said += (
            f"; it holds buffers the reference has not (of shape {_shapes(extra)}, "
            "register_buffer): does forward apply something the instructions do not list, a "
            "normalisation of its own?"
        )
    elif target and "buffer_shapes" in seen:  # those it lacks: batch norm's running statistics
        said += (
            f"; it lacks buffers the reference holds (of shape {_shapes(target)}): does a batch "
            "norm keep no running statistics (track_running_stats=False), so that evaluation "
            "mode normalises with the batch's own?"
        )
    return said


def _shapes(shapes: list) -> str:
    return ", ".join("x".join(map(str, b)) or "a scalar" for b in shapes)


def _unreached(module: nn.Module, x: torch.Tensor, seed: int, data: bool) -> dict:
    """What one training-mode pass on `x` (gradients on, whatever a cell left set) gives no
    gradient to: "unreached", the names of the frozen parameters (requires_grad_(False)) and of
    those that forward cuts off (@torch.no_grad() on it, .detach() or .data inside it);
    "reached", how many parameters get one; "input_grad_tensor", the gradient with respect to
    `x` of the outputs weighted by fixed values (`value_for`: a plain sum through batch norm is
    flat).
    `x` requires a gradient as a block's input inside a network does, unless the module is fed
    the `data` itself (a classifier): a reentrant `torch.utils.checkpoint` trains nothing where
    its input needs no gradient, and trains a block's layers. The seed draws the dropout masks
    of the training-mode outputs. {} for outputs that are no float tensor, or for a pass that
    raises (an in-place operation: `backward_error`'s matter)."""
    named = list(module.named_parameters())
    trainable = [p for _, p in named if p.requires_grad]
    leaf = x.detach().clone().requires_grad_(x.is_floating_point() and not data)
    inputs = trainable + ([leaf] if leaf.requires_grad else [])
    module.train()
    torch.manual_seed(seed)
    try:
        with torch.enable_grad():
            out = plain(module(leaf.clone() if leaf.requires_grad else leaf))
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                return {}
            grads = [None] * len(inputs)
            if out.requires_grad and inputs:
                weights = value_for(tuple(out.shape), seed).to(out.device)
                total = (out.float() * weights).sum()
                grads = torch.autograd.grad(total, inputs, allow_unused=True)
    except Exception:  # noqa: BLE001 - the student's forward or backward raising
        return {}
    got = {id(p): g for p, g in zip(inputs, grads, strict=True)}
    unreached = [name for name, p in named if got.get(id(p)) is None]
    found = {"unreached": unreached, "reached": len(named) - len(unreached)}
    if leaf.requires_grad:
        grad = got.get(id(leaf))
        found["input_grad_tensor"] = (
            torch.zeros_like(leaf) if grad is None else grad.detach().float()
        )
    return found


def gradient_problem(seen: dict, want: dict) -> str | None:
    """Right outputs (`outputs`) that train fewer parameters than the reference's: some that
    training cannot change. An unused extra layer trains no fewer (the parameter checks' matter);
    a layer left out has no parameter to miss a gradient. Or right outputs (training mode
    included) whose gradient back to the input is not the reference's: a path cut inside
    forward (`.detach()` on what a later layer reads) that still leaves each parameter some.
    Or right outputs of a forward that fails on a GPU (`placement_error`, blind round 14)."""
    if (error := seen.get("placement_error")) and not want.get("placement_error"):
        return (
            "its outputs are right on the CPU, but its forward mixes devices, which raises on a "
            f"GPU (as on the grader's stand-in device: {error}): a tensor made inside "
            "forward stays on the CPU (torch.rand(shape), torch.zeros(n), "
            "torch.arange(n) without device=x.device; torch.rand_like(x) and x.new_zeros(n) "
            "follow the input), as does a plain tensor attribute or one made above the class "
            "(register_buffer moves it)"
        )
    cut, reached = seen.get("unreached"), seen.get("reached")
    if not isinstance(cut, list) or not isinstance(want.get("reached"), int):
        return None
    if len(cut) > len(want.get("unreached") or []) and reached < want["reached"]:
        shown = ", ".join(map(str, cut[:4])) + (" ..." if len(cut) > 4 else "")
        return (
            f"its outputs are right, but in training mode no gradient reaches {shown}, so "
            "training cannot change them: no @torch.no_grad(), .detach() or .data in forward, "
            "no parameter left frozen (requires_grad_(False)), and no torch.utils.checkpoint "
            "with use_reentrant=True on the images (use_reentrant=False)"
        )
    compared = same_values(seen.get("train_tensor"), want.get("train_tensor"))
    grad, target = seen.get("input_grad_tensor"), want.get("input_grad_tensor")
    if compared and isinstance(target, torch.Tensor) and not same_values(grad, target):
        return (
            "its outputs are right, but in training mode the gradient that flows back through "
            "it is not the reference's: a .detach() (or .data) on a path inside forward cuts "
            "the gradient there, so the layers before it learn from less than they should"
        )
    return None


class _Draws(torch.overrides.TorchFunctionMode):
    """Appends 1 to `calls` for every F.dropout call (nn.Dropout's too, and the student's own
    import of it) and "draw" for every draw a dropout mask by hand is made of (torch.rand,
    bernoulli; not the normal draws of noise, torch.randn_like, which the instructions never
    list)."""

    def __init__(self, calls: list):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.dropout:
            self.calls.append(1)
        elif getattr(func, "__name__", "") in ("rand", "rand_like", "bernoulli", "bernoulli_"):
            self.calls.append("draw")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _modules_built(built: list, active: bool = True):
    """Every nn.Module constructed while the block runs (when `active`) appended to `built`."""
    original = nn.Module.__init__

    def init(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    if active:
        nn.Module.__init__ = init
    try:
        yield
    finally:
        nn.Module.__init__ = original


def _built(seen: dict) -> str:
    names = seen.get("built_in_forward")
    return names and (
        f"forward builds a new {names[0]} on every call: its weights are new at each call "
        "and are none of the model's parameters, so the optimiser never trains them and "
        "state_dict() does not save them; create every layer in __init__"
    )


def built_hint(seen: dict) -> str:
    """What to add to a parameter problem when forward builds layers with parameters
    (`outputs`' "built_in_forward"); "" when it builds none."""
    return f" ({_built(seen)})" if _built(seen) else ""


def _dropout_built(seen: dict) -> str:
    names = seen.get("dropout_built_in_forward")
    return names and (
        f"forward builds a new {names[0]} on every call ({names[0]}(p)(x)): a layer made there "
        "is none of the model's submodules, so model.eval() never reaches it and it drops in "
        "evaluation mode too; create it in __init__ (or call F.dropout(x, p, "
        "training=self.training))"
    )


def eval_random_problem(seen: dict) -> str:
    """Why outputs change from call to call in evaluation mode, where the reference's do not:
    a layer built inside forward (one with weights, or a dropout layer), else dropout left on."""
    return "in evaluation mode its outputs change from call to call: " + (
        _built(seen)
        or _dropout_built(seen)
        or "dropout still drops after model.eval() (F.dropout(x, p) drops in every mode unless "
        "given training=self.training; an nn.Dropout layer follows eval() by itself)"
    )


def training_only_problem(seen: dict, want: dict) -> str:
    """Why outputs that agree with the reference's in evaluation mode differ in training mode:
    dropout (random in training mode only) where the instructions have none, or the reverse.
    Randomness without a dropout call (`outputs`' "dropout_calls") is noise of its own."""
    same = "its outputs are the reference's in evaluation mode but not in training mode"
    if seen.get("train_random") and not want.get("train_random") and seen.get("dropout_calls", 1):
        return f"{same}: it drops units at random (dropout), which the instructions do not list"
    if seen.get("train_random") and not want.get("train_random"):
        return (
            f"{same}: in training mode it draws random numbers (noise added under `if "
            "self.training:`, or masks of its own from torch.rand), which the instructions do "
            "not list"
        )
    if want.get("train_random") and not seen.get("train_random"):
        return f"{same}: it applies no dropout, where the instructions have it"
    return (
        f"{same}: check what acts in training mode alone (dropout: its p and place; batch "
        "norm) against the instructions"
    )


def same_outputs(seen: dict, want: dict, prefix: str = "") -> bool:
    """Whether an observation's `outputs` (both modes) are those `want` holds under keys
    starting with `prefix` (another network's outputs recorded beside them, say)."""
    modes = ("eval", "train")
    return all(same_values(seen.get(f"{m}_tensor"), want.get(f"{prefix}{m}_tensor")) for m in modes)


def dropout_problem(train: torch.Tensor, plain: torch.Tensor, p: float) -> str | None:
    """None when `train` (outputs of a layer with dropout p in training mode) is `plain` (the
    same without dropout) with a fraction of about p of its units zeroed and the others scaled
    by 1/(1 - p) (inverted dropout, as nn.Dropout), else the problem."""
    if train.shape != plain.shape:
        return f"outputs of shape {tuple(train.shape)}, expected {tuple(plain.shape)}"
    live = plain.abs() > 1e-6
    if not bool(live.any()):
        return (
            "with dropout 0 the layer outputs only zeros: p is the probability of dropping a unit"
        )
    ratio = train[live] / plain[live]
    dropped = ratio.abs() < 1e-6
    kept = (ratio - 1 / (1 - p)).abs() < 1e-4 * max(1.0, 1 / (1 - p))
    if not bool(dropped.any()) and same_values(train, plain):
        return "no unit is dropped: use nn.Dropout(p=dropout) after each activation"
    if not bool(dropped.any()):  # blind round 14b, mlp_tuning n15: sigmoid(0) = 0.5, not 0
        return (
            "dropout changes the layer's outputs but zeroes none of them: it must come after "
            "the activation (Linear -> activation -> Dropout), not before it"
        )
    if not bool((dropped | kept).all()):
        return (
            f"the kept units are not scaled by 1/(1-p) = {1 / (1 - p):.3f} (nn.Dropout does it), "
            "or dropout is not right after the activation"
        )
    fraction = float(dropped.float().mean())
    # The dropped share of n units has a standard deviation sqrt(p(1-p)/n): below 0.01 for the
    # hundreds of units an observer drops from, well inside 0.06.
    if abs(fraction - p) > 0.06:
        return f"{fraction:.2f} of the units are dropped, expected about p = {p}"
    return None


def backward_error(model: nn.Module, x: torch.Tensor) -> str | None:
    """What one backward pass of `model` on `x` in training mode raises, as training would (an
    operation in place that overwrote what a gradient needs, say); else None."""
    model.train()
    try:
        model(x).sum().backward()
    except RuntimeError as err:
        return describe_error(err).split(": [")[0]  # without the tensor it names
    return None


def features_against(returned, layer: torch.Tensor, labels: torch.Tensor) -> dict:
    """What a features function returned, (features, labels) of a loader's images, against the
    outputs `layer` of the layer whose features they should be (`linear_calls`, evaluation
    mode: taken before or after its ReLU) and the loader's `labels`: the features' shape,
    whether they are the layer's ("layer"), whether the labels are the loader's, in order, and
    whether they still require gradients ("grad": computed with autograd on, each batch's graph
    kept)."""
    features, labels_got = pair_of(returned, "(features, labels)")
    cpu = not isinstance(features, Resident)  # not left where the model ran
    grad = bool(getattr(features, "requires_grad", False))  # computed with gradients, kept
    features, labels_got = a_tensor(features, "features"), a_tensor(labels_got, "labels")
    return {
        "shape": list(features.shape),
        "layer": bool(
            features.shape == layer.shape
            and (
                torch.allclose(features.float(), layer, atol=1e-4)
                or torch.allclose(features.float(), F.relu(layer), atol=1e-4)
            )
        ),
        "labels": bool(torch.equal(labels_got.long().reshape(-1), labels)),
        "cpu": cpu,
        "grad": grad,
    }


def features_on(features, models: tuple, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict:
    """`features_against` of `features(model, loader, cpu)`, a loader of (x, y) in batches of
    16, against the model's first nn.Linear output in evaluation mode, the model the first of the
    factories `models` whose call raises no TypeError: the grader's network, then the student's
    own (a features function using an argument of its own network's forward, such as
    `return_features=True`, where the notebook gives it that network only). The model computes
    on `Resident` tensors, as on a GPU: features returned without `.cpu()` show."""
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    for i, make in enumerate(models):
        model = make()
        layer = linear_calls(model, x, training=False, seed=seed)[0][1]
        try:
            returned = features(resident_outputs(model).train(), loader, torch.device("cpu"))
            return features_against(returned, layer, y)
        except TypeError:
            if i == len(models) - 1:
                raise
    raise ValueError("no model to call the features function with")


def norm_modes(model: nn.Module, x: torch.Tensor) -> dict:
    """The model's batch norm layers ("norms": how many; "untracked": how many keep no running
    statistics) and whether its outputs on `x` in training and in evaluation mode differ, with
    its dropout switched off ("differ")."""
    model.train()
    for layer in modules_of_type(model, nn.Dropout):
        layer.eval()
    with torch.no_grad():
        trained = model(x)
        model.eval()
        evaluated = model(x)
    norms = modules_of_type(model, (nn.BatchNorm1d, nn.BatchNorm2d))
    untracked = sum(n.running_mean is None for n in norms)
    differ = not torch.allclose(trained, evaluated, atol=1e-4)
    return {"norms": len(norms), "untracked": untracked, "differ": differ}


def norm_modes_problem(entry: dict) -> str | None:
    """What a `norm_modes` entry says is wrong with a network meant to use batch norm."""
    if not entry["norms"]:
        return "it has no nn.BatchNorm2d or nn.BatchNorm1d layer"
    if not entry["differ"] and entry.get("untracked"):
        return (
            "it gives the same outputs in training and evaluation mode (dropout off): "
            f"{entry['untracked']} of its batch norm layers keep no running statistics "
            "(track_running_stats=False), so in evaluation mode they normalise with each "
            "batch's own statistics, as in training"
        )
    if not entry["differ"]:
        return (
            "it gives the same outputs in training and evaluation mode (dropout off): its "
            "batch norm layers are not applied in forward"
        )
    return None


def batch_statistics_problem(error: str) -> str | None:
    """What to say of `error`, raised by a forward pass on one sample in evaluation mode, where
    batch norm raised it for want of a batch to take statistics from: its layers still normalise
    with the batch's own statistics after model.eval() (track_running_stats=False,
    F.batch_norm(..., training=True), or a layer made inside forward), where they should use the
    running ones. Else None."""
    if "more than 1 value per channel" not in error:
        return None
    return (
        "its batch norm normalises with the batch's own statistics in evaluation mode too "
        "(track_running_stats=False, F.batch_norm(..., training=True), or a layer made inside "
        "forward, new and in training mode at every call: make it in __init__); after "
        "model.eval() it should use the running statistics learned in training, which a batch "
        "of one needs"
    )


def training_setup(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Which of the model's parameters train (requires_grad), which the optimiser holds (by
    the model's names; another tensor named so) and its learning rates, each sorted."""
    names = {id(p): n for n, p in model.named_parameters()}
    held = [
        names.get(id(p), "a tensor not of the model")
        for g in optimizer.param_groups
        for p in g["params"]
    ]
    return {
        "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
        "held": sorted(held),
        "lrs": sorted({float(g["lr"]) for g in optimizer.param_groups}),
    }
