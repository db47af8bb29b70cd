"""The checks that are `res_dense_nets`' own; the rest come from the families (manifest).

Graded here: ResBlock's skip connection; DenseBlock's dense connectivity (what each 3x3
convolution sees), concatenation and BN -> ReLU -> conv order; the DenseNet's wiring (what
reaches each block and the classifier, its own layers), judged with the student's own blocks in
place so a block mistake is not charged again; the shape answers, right when they match the
reference or the student's own DenseNet.
"""

from __future__ import annotations

import torch
from torch import nn

from grader.checks.common import (
    a_module,
    diff_shapes,
    failure,
    inputs,
    modules_of_type,
    record_calls,
    same_values,
    sample_shape,
    summarise,
)
from grader.checks.families import answers as answers_family
from grader.checks.families.modules import BATCH, draw_settings
from grader.spec import Definitions, Verdict

OWN = Definitions()
register = OWN.register


def _module_settings(name: str):
    """Own observers probe the settings drawn for the family's module observer of `name`:
    re-drawn here from the run's generator, so both follow the course's settings key."""

    def draw(rng, manifest):
        spec = next(m for m in manifest["modules"] if m["name"] == name)
        return draw_settings(spec)(rng, manifest)

    return draw


def _settings_of(ctx, name: str):
    spec = ctx.module(name)
    n = len(spec["args"])
    return [(values[:n], values[n:]) for values in ctx.settings["values"]]


def _each(obs_key: str, test, describe):
    """Judge every setting the reference answered; the denominator is the reference's."""

    def judge(seen, want, ctx) -> Verdict:
        problems = []
        raised = False  # some setting raised or was not observed
        got = seen.get(obs_key) if isinstance(seen.get(obs_key), list) else []
        for i, want_entry in enumerate(want[obs_key]):
            where = describe(ctx.settings["values"][i])
            if "error" in want_entry:  # the reference itself failed: a grader bug, said loudly
                raise RuntimeError(f"reference failed on {where}: {want_entry['error']}")
            entry = got[i] if i < len(got) else None
            if not isinstance(entry, dict):
                problems.append(f"{where}: nothing observed")
                raised = True
            elif "wrong" in entry:
                problems.append(f"{where}: {entry['wrong']}")
            elif "error" in entry:
                problems.append(f"{where} raised {entry['error']}")
                raised = True
            elif problem := test(entry, want_entry):
                problems.append(f"{where}: {problem}")
        total = len(want[obs_key])
        return Verdict.partial(
            total - len(problems), total, summarise(problems) or "right", raised=raised
        )

    return judge


# ---------------------------------------------------------------- ResBlock: the skip path


@OWN.observer(draw=_module_settings("resblock"))
def resblock_skip(ctx) -> dict:
    """With every parameter zeroed the layers contribute nothing: what is left is the skip
    path, so the output is x (or relu(x) with the ReLU after the sum)."""
    ResBlock = ctx.get("ResBlock")  # noqa: N806 - the student's class
    runs = []
    for i, (args, _) in enumerate(_settings_of(ctx, "resblock")):
        entry: dict = {}
        try:
            block = a_module(ResBlock(*args))
            x = inputs(BATCH, args[0], seed=int(ctx.settings["seed"]) + i)
            with torch.no_grad():
                for p in block.parameters():
                    p.zero_()
                out = block.eval()(x)
            entry["zeroed_tensor"] = out if isinstance(out, torch.Tensor) else None
            entry["input_tensor"] = x
        except Exception as err:  # noqa: BLE001
            entry.update(failure(err))
        runs.append(entry)
    return {"runs": runs}


def _resblock_name(values) -> str:
    return f"ResBlock({values[0]}, {values[1]})"


@OWN.check("resblock_skip", observe=resblock_skip)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry):
        out = entry.get("zeroed_tensor")
        # The reference adds before its ReLU (relu(x)); x itself (no ReLU after the sum) is
        # as much a skip connection.
        if same_values(out, want_entry["zeroed_tensor"]) or same_values(
            out, want_entry["input_tensor"]
        ):
            return None
        return (
            "with every weight zeroed the block should return its input (x, or relu(x)): the "
            "skip connection x + F(x) is missing"
        )

    return _each("runs", test, _resblock_name)(seen, want, ctx)


# ---------------------------------------------------------------- DenseBlock


@OWN.observer(draw=_module_settings("denseblock"))
def denseblock_structure(ctx) -> dict:
    DenseBlock = ctx.get("DenseBlock")  # noqa: N806
    runs = []
    for i, (args, sizes) in enumerate(_settings_of(ctx, "denseblock")):
        in_channels, size = args[0], sizes[0]
        entry: dict = {}
        try:
            block = a_module(DenseBlock(*args)).train()
            convs = [m for m in modules_of_type(block, nn.Conv2d) if tuple(m.kernel_size) == (3, 3)]
            seen, remove = record_calls(convs, lambda m, inputs: inputs[0].detach().clone())
            x = inputs(2, in_channels, size, size, seed=int(ctx.settings["seed"]) + i)
            with torch.no_grad():
                out = block(x)
            remove()
            entry["conv3x3_inputs"] = [int(t.shape[1]) for t in seen]
            entry["conv3x3_inputs_nonnegative"] = all(bool((t >= 0).all()) for t in seen)
            entry["conv3x3_weight_inputs"] = sorted(
                int(p.shape[1])
                for p in block.parameters()
                if p.dim() == 4 and p.shape[-2:] == (3, 3)
            )
            entry["batchnorm_features"] = sorted(
                m.num_features for m in modules_of_type(block, nn.BatchNorm2d)
            )
            if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[2:] == x.shape[2:]:
                # Concatenation keeps each input channel as it is somewhere in the output.
                flat_out = out.transpose(0, 1).reshape(out.shape[1], -1)
                flat_in = x.transpose(0, 1).reshape(in_channels, -1)
                entry["input_channels_kept"] = all(
                    bool(torch.isclose(flat_out, row, atol=1e-6).all(1).any()) for row in flat_in
                )
            else:
                entry["input_channels_kept"] = False
        except Exception as err:  # noqa: BLE001
            entry.update(failure(err))
        runs.append(entry)
    return {"runs": runs}


def _denseblock_name(values) -> str:
    c, n, k, s = values
    return f"DenseBlock({c}, {n}, {k}) on {c}x{s}x{s}"


@OWN.check("denseblock_layer_inputs", observe=denseblock_structure)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry):
        got = sorted(entry["conv3x3_inputs"] or entry["conv3x3_weight_inputs"])
        target = sorted(want_entry["conv3x3_inputs"])
        if got != target:
            return (
                f"its 3x3 convolutions see {got} channels, expected {target} (layer l sees the "
                "block input and the outputs of all earlier layers)"
            )
        return None

    return _each("runs", test, _denseblock_name)(seen, want, ctx)


@OWN.check("denseblock_concatenates", observe=denseblock_structure)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry):
        if not entry.get("input_channels_kept"):
            return (
                "the block input is not part of the output: features must be concatenated along "
                "the channels (torch.cat), not summed"
            )
        return None

    return _each("runs", test, _denseblock_name)(seen, want, ctx)


@OWN.check("denseblock_layer_order", observe=denseblock_structure)
def _(seen, want, ctx) -> Verdict:
    # Only the order; how many channels each layer sees is denseblock_layer_inputs'.
    def test(entry, want_entry):
        layers, norms = len(want_entry["batchnorm_features"]), entry["batchnorm_features"]
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

    return _each("runs", test, _denseblock_name)(seen, want, ctx)


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
    image = ctx.manifest["image_shape"]
    nets = []
    for growth in ctx.settings["growth_rates"]:
        entry: dict = {"growth": growth}
        try:
            model = a_module(DenseNet(growth)).eval()
            blocks = [m for m in model.modules() if isinstance(m, DenseBlock)]
            transitions = [m for m in model.modules() if isinstance(m, Transition)]
            linears = modules_of_type(model, nn.Linear)
            shapes: dict[str, list] = {"block_in": [], "block_out": [], "trans_out": []}

            def on_block(module, inputs_, output, shapes=shapes):  # hooks must return None
                shapes["block_in"].append(sample_shape(inputs_[0], BATCH))
                shapes["block_out"].append(sample_shape(output, BATCH))

            def on_transition(module, inputs_, output, shapes=shapes):
                shapes["trans_out"].append(sample_shape(output, BATCH))

            handles = [m.register_forward_hook(on_block) for m in blocks]
            handles += [m.register_forward_hook(on_transition) for m in transitions]
            fc_inputs, remove_fc = record_calls(linears, lambda m, i: sample_shape(i[0], BATCH))
            with torch.no_grad():
                model(inputs(BATCH, *image))
            remove_fc()
            for h in handles:
                h.remove()
            inside = {id(p) for m in (*blocks, *transitions) for p in m.parameters()}
            # The blocks as the sheet builds them, from the student's own classes: a DenseNet
            # that ignores its growth rate builds other ones.
            first_out = shapes["block_out"][0][0] if shapes["block_out"] else 0
            specified = [DenseBlock(4, 3, growth), DenseBlock(4, 3, growth)]
            specified.append(Transition(first_out, 4))
            entry["blocks_as_built"] = sorted(
                list(p.shape) for m in (*blocks, *transitions) for p in m.parameters()
            )
            entry["blocks_as_specified"] = sorted(
                list(p.shape) for m in specified for p in m.parameters()
            )
            entry.update(
                blocks=len(blocks),
                transitions=len(transitions),
                block_inputs=shapes["block_in"],
                block_outputs=shapes["block_out"],
                transition_outputs=shapes["trans_out"],
                last_linear_input=fc_inputs[-1] if fc_inputs else None,
                outside_shapes=sorted(
                    list(p.shape) for p in model.parameters() if id(p) not in inside
                ),
            )
        except Exception as err:  # noqa: BLE001
            entry.update(failure(err))
        nets.append(entry)
    return {"nets": nets}


def _densenet_name(growth) -> str:
    return f"DenseNet({growth})"


def _each_net(test):
    def judge(seen, want, ctx) -> Verdict:
        problems = []
        raised = False  # some setting raised or was not observed
        got = seen.get("nets") if isinstance(seen.get("nets"), list) else []
        for i, want_entry in enumerate(want["nets"]):
            where = _densenet_name(want_entry["growth"])
            if "error" in want_entry:
                raise RuntimeError(f"reference failed on {where}: {want_entry['error']}")
            entry = got[i] if i < len(got) else None
            if not isinstance(entry, dict):
                problems.append(f"{where}: nothing observed")
                raised = True
            elif "wrong" in entry:
                problems.append(f"{where}: {entry['wrong']}")
            elif "error" in entry:
                problems.append(f"{where} raised {entry['error']}")
                raised = True
            elif problem := test(entry, want_entry):
                problems.append(f"{where}: {problem}")
        total = len(want["nets"])
        return Verdict.partial(
            total - len(problems), total, summarise(problems) or "right", raised=raised
        )

    return judge


@OWN.check("densenet_block_inputs", observe=densenet_wiring)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry):
        if entry["blocks"] != want_entry["blocks"] or entry["transitions"] != 1:
            return (
                f"{entry['blocks']} DenseBlock and {entry['transitions']} Transition modules, "
                f"expected {want_entry['blocks']} and 1"
            )
        got, target = entry["block_inputs"], want_entry["block_inputs"]
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

    return _each_net(test)(seen, want, ctx)


@OWN.check("densenet_fc_input", observe=densenet_wiring)
def _(seen, want, ctx) -> Verdict:
    def test(entry, want_entry):
        # Global average pooling of the last block: its channels, whatever the student's block
        # makes of them, and nothing spatial.
        last = entry["block_outputs"][-1] if entry["block_outputs"] else None
        channels = [last[0]] if isinstance(last, list) and last else None
        if entry["last_linear_input"] != channels:
            return (
                f"the final linear layer receives {entry['last_linear_input']}, expected "
                f"{channels} (global average pooling of the last block's output)"
            )
        return None

    return _each_net(test)(seen, want, ctx)


@OWN.check("densenet_parameters", observe=densenet_wiring)
def _(seen, want, ctx) -> Verdict:
    classes = ctx.manifest.classes

    def test(entry, want_entry):
        # The layers the DenseNet adds to its blocks: the stem convolution and the classifier,
        # whose input width is the student's own last block's channels.
        ref_channels = want_entry["block_outputs"][-1][0]
        own = entry["block_outputs"][-1][0] if entry["block_outputs"] else None
        target = sorted(
            [classes, own] if s == [classes, ref_channels] else s
            for s in want_entry["outside_shapes"]
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

    return _each_net(test)(seen, want, ctx)


# ---------------------------------------------------------------- shape answers


def _own_answers(nets: list) -> dict | None:
    """The answers true of the student's own DenseNet(12), from its observed wiring."""
    entry = next((n for n in nets if n.get("growth") == 12 and "error" not in n), None)
    if not entry or len(entry.get("block_inputs") or []) < 2 or not entry.get("block_outputs"):
        return None
    (c1, h1, w1), (_, h2, w2) = entry["block_inputs"][0], entry["block_inputs"][1]
    fc = entry["last_linear_input"]
    return {
        "block1_spatial": [h1, w1],
        "block1_in_channels": c1,
        "block1_out_channels": entry["block_outputs"][0][0],
        "block2_spatial": [h2, w2],
        "fc_in_features": fc[0] if fc else None,
    }


@OWN.check("shape_answers", observe="answers", uses=("densenet_wiring",))
def _(seen, want, ctx) -> Verdict:
    expected = want["answers"]
    accepted = [expected]
    wiring = ctx.observations.get("densenet_wiring")
    if isinstance(wiring, dict) and isinstance(wiring.get("nets"), list):
        own = _own_answers(wiring["nets"])
        if own:
            accepted.append(own)
    wrong = answers_family.wrong_answers(seen["answers"], accepted)
    if wrong is None:
        return Verdict.wrong(f"shape_answers() returned {seen['answers']!r}, not a dict")
    return Verdict.partial(
        len(expected) - len(wrong), len(expected), "; ".join(wrong) or "all answers right"
    )
