"""The checks that are `res_dense_nets`' own (the rest come from the families: see the manifest):
ResBlock's skip path, DenseBlock's connectivity and layer order, the DenseNet's wiring judged on
the student's own blocks (a block mistake is not charged again), and the shape answers.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from grader.checks import kit
from grader.checks.common import (
    STUDENT_EXITS,
    a_module,
    diff_shapes,
    inputs,
    modules_of_type,
    record_calls,
    same_values,
    sample_shape,
)
from grader.checks.families import answers as answers_family
from grader.checks.families import behaviour
from grader.checks.families.linears import linear_calls
from grader.checks.families.modules import BATCH, module_settings
from grader.spec import Definitions

OWN = Definitions()
register = OWN.register


def _split(ctx, name: str) -> list[tuple[list, list]]:
    """Each drawn setting of [[modules]] entry `name` as (constructor args, sizes)."""
    n = len(ctx.module(name).args)
    return [(values[:n], values[n:]) for values in ctx.settings["values"]]


# ---------------------------------------------------------------- ResBlock: the skip path


@OWN.observer(draw=module_settings("resblock"))
def resblock_zeroed(ctx) -> dict:
    """With every parameter zeroed the layers contribute nothing: what is left is the skip
    path, so the output is x (or relu(x) with the ReLU after the sum). With random weights
    (not its own: a last layer initialised to zero, as some do, is right) the layers add
    something: the output is neither."""
    ResBlock, seed = ctx.get("ResBlock"), int(ctx.settings["seed"])  # noqa: N806

    def run(i, setting):
        args, _ = setting
        block = a_module(ResBlock(*args)).eval()
        x = inputs(BATCH, args[0], seed=seed + i)
        g = torch.Generator().manual_seed(seed + i)
        with torch.no_grad():
            block(x)  # gives lazy layers (nn.LazyLinear) their shapes
            for p in block.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            drawn = block(x)
            for p in block.parameters():
                p.zero_()
            out = block(x)
        drawn, out = (v if isinstance(v, torch.Tensor) else None for v in (drawn, out))
        return {"zeroed_tensor": out, "drawn_tensor": drawn, "input_tensor": x, **_cut(block, x)}

    return {"runs": kit.per_setting(_split(ctx, "resblock"), seed, run)}


def _cut(block: nn.Module, x: torch.Tensor) -> dict:
    """Whether the zeroed block's output carries no gradient to its input ("skip_cut"): the
    skip path's gradient is all there is, and `x.detach()` or `x.data` in it (or
    @torch.no_grad() on forward) leaves training none. Nothing where the pass raises."""
    found: dict = {}
    with contextlib.suppress(Exception), torch.enable_grad():  # what raises is judged elsewhere
        x = x.clone().requires_grad_(True)
        out = block(x)
        grad = out.requires_grad and torch.autograd.grad(out.sum(), x, allow_unused=True)[0]
        found["skip_cut"] = not isinstance(grad, torch.Tensor) or not bool(grad.any())
    return found


def _resblock_at(ctx, i, want) -> str:
    return "ResBlock({}, {})".format(*ctx.settings["values"][i])


@kit.judged(OWN, resblock_zeroed, "runs", _resblock_at, name="resblock_skip")
def _skip_kept(entry, want, ctx, i) -> str | None:
    out, skips = entry.get("zeroed_tensor"), (want["zeroed_tensor"], want["input_tensor"])
    # The reference adds before its ReLU (relu(x)); x itself (no ReLU after the sum) is as
    # much a skip connection.
    if not any(same_values(out, skip) for skip in skips):
        return (
            "with every weight zeroed the block should return its input (x, or relu(x)): the "
            "skip connection x + F(x) is missing"
        )
    if entry.get("skip_cut") and not want.get("skip_cut"):
        return (
            "the skip path adds the input's values but no gradient reaches the input through "
            "it: x.detach() or x.data (or @torch.no_grad() on forward) cuts it out of autograd, "
            "so training cannot use it; add x itself"
        )
    if any(same_values(entry.get("drawn_tensor"), skip) for skip in skips):
        return (
            "the block returns its input (x, or relu(x)) whatever its weights: the skip path is "
            "there, but F(x), what its layers compute, is not added to it"
        )
    return None


# ---------------------------------------------------------------- DenseBlock


class FunctionalCalls(torch.overrides.TorchFunctionMode):
    """Under it, the inputs of F.conv2d with a 3x3 weight go to seen["conv"] and the channels
    F.batch_norm normalises to seen["norm"]. nn.Conv2d and nn.BatchNorm2d call them, and so do
    layers of a student's own parameters (blind round 18: a dense layer's batch norm through
    F.batch_norm was "0 BatchNorm2d layers")."""

    def __init__(self, seen: dict):
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (F.conv2d, F.batch_norm):
            x = args[0] if args else kwargs["input"]
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            if func is F.batch_norm:
                self.seen.setdefault("norm", []).append(int(x.shape[1]))
            elif tuple(weight.shape[-2:]) == (3, 3):
                self.seen.setdefault("conv", []).append(x.detach().clone())
        return func(*args, **kwargs)


@OWN.observer(draw=module_settings("denseblock"))
def denseblock_structure(ctx) -> dict:
    """What each 3x3 convolution of the student's DenseBlock receives, its batch norms, and
    whether the block input survives in the output (concatenation)."""
    DenseBlock, seed = ctx.get("DenseBlock"), int(ctx.settings["seed"])  # noqa: N806

    def run(i, setting):
        args, sizes = setting
        in_channels, size = args[0], sizes[0]
        block = a_module(DenseBlock(*args)).train()
        convs = [m for m in modules_of_type(block, nn.Conv2d) if tuple(m.kernel_size) == (3, 3)]
        seen, remove = record_calls(convs, lambda m, inputs: inputs[0].detach().clone())
        x = inputs(2, in_channels, size, size, seed=seed + i)
        called: dict[str, list] = {}
        with torch.no_grad(), FunctionalCalls(called):
            out = block(x)
        remove()
        seen = seen or called.get("conv", [])  # the modules' hooks first: layer by layer
        modules = sorted(m.num_features for m in modules_of_type(block, nn.BatchNorm2d))
        entry = {
            "conv3x3_inputs": [int(t.shape[1]) for t in seen],
            "conv3x3_inputs_nonnegative": all(bool((t >= 0).all()) for t in seen),
            "conv3x3_weight_inputs": sorted(
                int(p.shape[1])
                for p in block.parameters()
                if p.dim() == 4 and p.shape[-2:] == (3, 3)
            ),
            "batchnorm_features": modules or sorted(called.get("norm", [])),
            "input_channels_kept": False,
        }
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[2:] == x.shape[2:]:
            # Concatenation keeps each input channel as it is somewhere in the output.
            flat_out = out.transpose(0, 1).reshape(out.shape[1], -1)
            flat_in = x.transpose(0, 1).reshape(in_channels, -1)
            entry["input_channels_kept"] = all(
                bool(torch.isclose(flat_out, row, atol=1e-6).all(1).any()) for row in flat_in
            )
        return entry

    return {"runs": kit.per_setting(_split(ctx, "denseblock"), seed, run)}


def _denseblock_at(ctx, i, want) -> str:
    c, n, k, size = ctx.settings["values"][i]
    return f"DenseBlock({c}, {n}, {k}) on {c}x{size}x{size}"


@kit.judged(OWN, denseblock_structure, "runs", _denseblock_at, name="denseblock_layer_inputs")
def _layer_inputs(entry, want, ctx, i) -> str | None:
    got = sorted(entry["conv3x3_inputs"] or entry["conv3x3_weight_inputs"])
    target = sorted(want["conv3x3_inputs"])
    if got != target:
        return (
            f"its 3x3 convolutions see {got} channels, expected {target} (layer l sees the "
            "block input and the outputs of all earlier layers)"
        )
    return None


@kit.judged(OWN, denseblock_structure, "runs", _denseblock_at, name="denseblock_concatenates")
def _concatenates(entry, want, ctx, i) -> str | None:
    if not entry.get("input_channels_kept"):
        return (
            "the block input is not part of the output: features must be concatenated along "
            "the channels (torch.cat), not summed"
        )
    return None


@kit.judged(OWN, denseblock_structure, "runs", _denseblock_at, name="denseblock_layer_order")
def _layer_order(entry, want, ctx, i) -> str | None:
    # Only the order; how many channels each layer sees is denseblock_layer_inputs'.
    layers, norms = len(want["batchnorm_features"]), entry["batchnorm_features"]
    if len(norms) != layers:
        return f"{len(norms)} BatchNorm2d layers, expected one per dense layer ({layers})"
    if not entry["conv3x3_inputs"]:
        return "no nn.Conv2d 3x3 layer was called"
    if norms != (fed := sorted(entry["conv3x3_inputs"])):
        return (
            f"batch norms over {norms} channels but 3x3 convolutions fed {fed} channels: each "
            "layer's batch norm must normalise that layer's input"
        )
    if not entry["conv3x3_inputs_nonnegative"]:
        return "a 3x3 convolution received negative values: each layer is BN -> ReLU -> conv"
    return None


# ---------------------------------------------------------------- DenseNet wiring


def _draw_growth(rng, manifest) -> dict:
    return {"growth_rates": [12, rng.choice([4, 6, 8])]}


@OWN.observer(draw=_draw_growth)
def densenet_wiring(ctx) -> dict:
    """What reaches each DenseBlock, the transition and the classifier, and the parameters
    outside the blocks, for the student's DenseNet built on the student's own blocks."""
    DenseNet, DenseBlock, Transition = (  # noqa: N806
        ctx.get("DenseNet"),
        ctx.get("DenseBlock"),
        ctx.get("Transition"),
    )
    image = ctx.manifest.image_shape

    def run(i, growth):
        model = a_module(DenseNet(growth)).eval()
        blocks = [m for m in model.modules() if isinstance(m, DenseBlock)]
        transitions = [m for m in model.modules() if isinstance(m, Transition)]
        linears = modules_of_type(model, nn.Linear)
        shapes: dict[str, list] = {"block_in": [], "block_out": [], "trans_out": []}

        def on_block(module, inputs_, output):  # hooks must return None
            shapes["block_in"].append(sample_shape(inputs_[0], BATCH))
            shapes["block_out"].append(sample_shape(output, BATCH))

        def on_transition(module, inputs_, output):
            shapes["trans_out"].append(sample_shape(output, BATCH))

        handles = [m.register_forward_hook(on_block) for m in blocks]
        handles += [m.register_forward_hook(on_transition) for m in transitions]
        fc_inputs, remove_fc = record_calls(linears, lambda m, i: sample_shape(i[0], BATCH))
        x = inputs(BATCH, *image)
        with torch.no_grad():
            model(x)
        remove_fc()
        for h in handles:
            h.remove()
        if not fc_inputs:  # F.linear or x @ W on parameters of its own (blind round 18)
            calls = linear_calls(model, x, training=False, seed=i, own=True)
            fc_inputs = [sample_shape(given, BATCH) for given, _ in calls]
        inside = {id(p) for m in (*blocks, *transitions) for p in m.parameters()}
        # The blocks as the sheet builds them, from the student's own classes: a DenseNet that
        # ignores its growth rate builds other ones.
        first_out = shapes["block_out"][0][0] if shapes["block_out"] else 0
        specified = [DenseBlock(4, 3, growth), DenseBlock(4, 3, growth), Transition(first_out, 4)]
        for module, channels in zip(specified, (4, 4, first_out), strict=True):
            behaviour.shape_lazy(a_module(module), inputs(BATCH, channels, 14, 14))
        return {
            "blocks_as_built": sorted(
                list(p.shape) for m in (*blocks, *transitions) for p in m.parameters()
            ),
            "blocks_as_specified": sorted(list(p.shape) for m in specified for p in m.parameters()),
            "blocks": len(blocks),
            "transitions": len(transitions),
            "block_inputs": shapes["block_in"],
            "block_outputs": shapes["block_out"],
            "transition_outputs": shapes["trans_out"],
            "last_linear_input": fc_inputs[-1] if fc_inputs else None,
            "outside_shapes": sorted(
                list(p.shape) for p in model.parameters() if id(p) not in inside
            ),
        }

    growths = ctx.settings["growth_rates"]
    nets = kit.per_setting(growths, 0, run)
    return {"nets": [{"growth": g, **n} for g, n in zip(growths, nets, strict=True)]}


def _densenet_at(ctx, i, want) -> str:
    return f"DenseNet({want['growth']})"


def _not_from_blocks(entry, want) -> bool:
    """Whether the DenseNet has other DenseBlock or Transition counts than the reference's."""
    return (entry["blocks"], entry["transitions"]) != (want["blocks"], want["transitions"])


@kit.judged(OWN, densenet_wiring, "nets", _densenet_at, name="densenet_block_inputs")
def _block_inputs(entry, want, ctx, i) -> str | None:
    if _not_from_blocks(entry, want):
        return (
            f"{entry['blocks']} DenseBlock and {entry['transitions']} Transition modules, "
            f"expected {want['blocks']} and {want['transitions']}"
        )
    got, target = entry["block_inputs"], want["block_inputs"]
    if not got or got[0] != target[0]:
        return (
            f"the first DenseBlock receives {got[0] if got else None}, expected {target[0]} "
            "(3x3 conv to 4 channels, then 2x2 average pooling)"
        )
    # The second block must get the transition's output, and 4 channels; how far the
    # transition shrinks the map is transition_shapes' business.
    trans = entry["transition_outputs"]
    if len(got) < 2 or not trans or got[1] != trans[0] or got[1][0] != target[1][0]:
        return (
            f"the second DenseBlock receives {got[1] if len(got) > 1 else None}, expected the "
            f"transition's output with {target[1][0]} channels"
        )
    return None


@kit.judged(OWN, densenet_wiring, "nets", _densenet_at, name="densenet_fc_input")
def _fc_input(entry, want, ctx, i) -> str | None:
    # Global average pooling of the last block: its channels, whatever the student's block
    # makes of them, and nothing spatial.
    last = entry["block_outputs"][-1] if entry["block_outputs"] else None
    if not (isinstance(last, list) and last):  # no DenseBlock ran: densenet_block_inputs says so
        last = want["block_outputs"][-1]
    channels = [last[0]]
    if entry["last_linear_input"] is None:
        return (
            "no registered linear layer runs in its forward pass, expected one that receives "
            f"{channels}: a layer made inside forward is no submodule (new random weights at "
            "every call, never trained nor saved): make it in __init__"
        )
    if entry["last_linear_input"] != channels:
        return (
            f"the final linear layer receives {entry['last_linear_input']}, expected "
            f"{channels} (global average pooling of the last block's output)"
        )
    return None


@kit.judged(OWN, densenet_wiring, "nets", _densenet_at, name="densenet_parameters")
def _densenet_parameters(entry, want, ctx, i) -> str | None:
    # The layers the DenseNet adds to its blocks: the stem convolution and the classifier,
    # whose input width is the student's own last block's channels.
    if _not_from_blocks(entry, want):
        # Not built from DenseBlock and Transition (densenet_block_inputs charges that): all of
        # its parameters against all of the reference's.
        seen = sorted(entry["blocks_as_built"] + entry["outside_shapes"])
        whole = sorted(want["blocks_as_built"] + want["outside_shapes"])
        return None if seen == whole else "its parameters: " + diff_shapes(whole, seen)
    classes = ctx.manifest.classes
    ref_channels = want["block_outputs"][-1][0]
    own = entry["block_outputs"][-1][0] if entry["block_outputs"] else None
    target = sorted(
        [classes, own] if s == [classes, ref_channels] else s for s in want["outside_shapes"]
    )
    if entry["outside_shapes"] != target:
        return "layers outside the blocks: " + diff_shapes(target, entry["outside_shapes"])
    if entry["blocks_as_built"] != entry["blocks_as_specified"]:
        return (
            "its blocks are not DenseBlock(4, 3, growth_rate), DenseBlock(4, 3, growth_rate) "
            "and a Transition to 4 channels: "
            + diff_shapes(entry["blocks_as_specified"], entry["blocks_as_built"])
            + " (is growth_rate passed on to the blocks?)"
        )
    return None


# ---------------------------------------------------------------- shape answers


def _own_answers(wiring: dict) -> dict:
    """The answers true of the student's own DenseNet(12), from its observed wiring ({} when it
    cannot tell)."""
    nets = wiring.get("nets") if isinstance(wiring.get("nets"), list) else []
    entry = next((n for n in nets if n.get("growth") == 12 and "error" not in n), None)
    if not entry or len(entry.get("block_inputs") or []) < 2 or not entry.get("block_outputs"):
        return {}
    (c1, h1, w1), (_, h2, w2) = entry["block_inputs"][0], entry["block_inputs"][1]
    fc = entry["last_linear_input"]
    return {
        "block1_spatial": [h1, w1],
        "block1_in_channels": c1,
        "block1_out_channels": entry["block_outputs"][0][0],
        "block2_spatial": [h2, w2],
        "fc_in_features": fc[0] if fc else None,
    }


def _loses_a_batch_of_one(DenseNet, image) -> bool:  # noqa: N803
    """Whether the student's DenseNet(12) drops the batch dimension of a single image (or raises
    on it), as densenet_output finds and charges (x.squeeze() before the classifier)."""
    entry: dict = {}
    with kit.recorded(entry), torch.no_grad():
        out = a_module(DenseNet(12)).eval()(inputs(1, *image))
        return not (isinstance(out, torch.Tensor) and out.dim() == 2 and len(out) == 1)
    return True


@contextlib.contextmanager
def _fed_two(DenseNet):  # noqa: N803
    """DenseNet's forward, while the block runs, given a single image as a batch of two of it
    (its first row returned): hooks then see the shapes a batch-keeping network gives them."""
    forward, own = DenseNet.forward, vars(DenseNet).get("forward")

    def paired(self, x, *args, **kwargs):
        if isinstance(x, torch.Tensor) and x.dim() == 4 and len(x) == 1:
            return forward(self, torch.cat([x, x]), *args, **kwargs)[:1]
        return forward(self, x, *args, **kwargs)

    DenseNet.forward = paired
    try:
        yield
    finally:
        if own is None:
            del DenseNet.forward
        else:
            DenseNet.forward = own


@OWN.observer()
def shape_answers_run(ctx) -> dict:
    """The answers family's observation; where shape_answers raised running a DenseNet that
    loses a batch of one's batch dimension (the reference's runs one image), a mistake of
    DenseNet's charged by densenet_output, it is run again with that network fed a pair, so
    that the same mistake is not charged again here."""
    try:
        return answers_family.observe(ctx)
    except STUDENT_EXITS as err:
        DenseNet = ctx.ns.get("DenseNet")  # noqa: N806
        if not isinstance(DenseNet, type) or not _loses_a_batch_of_one(
            DenseNet, ctx.manifest.image_shape
        ):
            raise
        with contextlib.suppress(*STUDENT_EXITS), _fed_two(DenseNet):
            return answers_family.observe(ctx)
        raise err from None


# Answers true of the student's own DenseNet are right too: a block mistake is not charged again.
OWN.check("shape_answers", observe=shape_answers_run, uses=("densenet_wiring",))(
    answers_family.judge_also("densenet_wiring", _own_answers)
)
