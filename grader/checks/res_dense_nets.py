"""Checks of `res_dense_nets`: ResBlock MLP, DenseBlock, transition, DenseNet, loops, accuracy.

Observers call the student's classes positionally, in the order the notebook's stubs give
(`ResBlock(in_features, hidden_features)`, `DenseBlock(in_channels, num_layers, growth_rate)`,
`Transition(in_channels, out_channels)`, `DenseNet(growth_rate)`), so renamed arguments still work.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from grader.checks.common import (
    StopProbe,
    describe_error,
    device_probe,
    diff_shapes,
    jsonable,
    modules_of_type,
    param_count,
    param_shapes,
    record_calls,
    sample_shape,
)
from grader.spec import CheckSet, Verdict

CHECKS = CheckSet("res_dense_nets")

BATCH = 4  # samples per probe forward pass


def _inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- ResBlock and the residual MLP


@CHECKS.observer
def resblock(ctx) -> dict:
    ResBlock = ctx.get("ResBlock")  # noqa: N806 - the student's class
    settings = []
    for in_features, hidden in ctx.settings["resblock_widths"]:
        entry = {"setting": [in_features, hidden]}
        try:
            block = ResBlock(in_features, hidden)
            x = _inputs(BATCH, in_features)
            entry["is_module"] = isinstance(block, nn.Module)
            entry["param_shapes"] = param_shapes(block)
            entry["params"] = param_count(block)
            with torch.no_grad():
                entry["output_shape"] = sample_shape(block(x), BATCH)
                # With every parameter zeroed the layers contribute nothing: what is left is the
                # skip path, so the output must be x (or relu(x) with a ReLU after the sum).
                for p in block.parameters():
                    p.zero_()
                zeroed = block(x)
            if isinstance(zeroed, torch.Tensor) and zeroed.shape == x.shape:
                entry["zeroed_matches_x"] = bool(torch.allclose(zeroed, x, atol=1e-6))
                entry["zeroed_matches_relu_x"] = bool(torch.allclose(zeroed, F.relu(x), atol=1e-6))
        except Exception as err:  # noqa: BLE001 - one bad setting must not hide the others
            entry["error"] = describe_error(err, 300)
        settings.append(entry)
    return {"settings": settings, "is_class": isinstance(ResBlock, type)}


def _setting_errors(obs: dict) -> str | None:
    errors = [f"{e['setting']}: {e['error']}" for e in obs["settings"] if "error" in e]
    return "; ".join(errors) or None


@CHECKS.check("resblock_is_module", observe=resblock)
def _(obs, ctx) -> Verdict:
    first = obs["settings"][0] if obs["settings"] else {}
    ok = obs["is_class"] and first.get("is_module", False)
    return Verdict.expect(
        ok, "ResBlock is an nn.Module subclass", "ResBlock must be a subclass of nn.Module"
    )


@CHECKS.check("resblock_widths", observe=resblock)
def _(obs, ctx) -> Verdict:
    problems = []
    for entry, want in zip(obs["settings"], ctx.expected["structure"]["resblock"], strict=True):
        setting = "ResBlock({}, {})".format(*want["setting"])
        if "error" in entry:
            problems.append(f"{setting} raised {entry['error']}")
        elif entry.get("output_shape") != want["output_shape"]:
            problems.append(
                f"{setting} gave output {entry.get('output_shape')}, "
                f"expected {want['output_shape']}"
            )
        elif entry["param_shapes"] != want["param_shapes"]:
            problems.append(
                f"{setting}: {diff_shapes(want['param_shapes'], entry['param_shapes'])}"
            )
    return Verdict.partial(
        len(obs["settings"]) - len(problems),
        len(obs["settings"]),
        "; ".join(problems) or "fc widths and output shape right for every setting",
    )


@CHECKS.check("resblock_skip", observe=resblock)
def _(obs, ctx) -> Verdict:
    if error := _setting_errors(obs):
        return Verdict.wrong(f"ResBlock raised: {error}")
    skip = [e.get("zeroed_matches_x") or e.get("zeroed_matches_relu_x") for e in obs["settings"]]
    return Verdict.expect(
        all(skip),
        "with its layers zeroed the block passes its input through the skip connection",
        "with every weight zeroed the block should return its input (x, or relu(x)): "
        "the skip connection x + F(x) is missing",
    )


@CHECKS.observer
def resmlp(ctx) -> dict:
    ResMLP, ResBlock = ctx.get("ResMLP"), ctx.get("ResBlock")  # noqa: N806
    model = ResMLP()
    with torch.no_grad():
        out = model.eval()(_inputs(BATCH, 1, 28, 28))
    return {
        "output_shape": sample_shape(out, BATCH),
        "probabilities": _looks_like_probabilities(out),
        "resblocks": sum(isinstance(m, ResBlock) for m in model.modules()),
        "param_shapes": param_shapes(model),
        "params": param_count(model),
    }


def _looks_like_probabilities(out) -> bool:
    """True when every row is non-negative and sums to 1, that is softmax was applied."""
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        return False
    return bool((out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4))


def _output_verdict(obs: dict, want: list, what: str) -> Verdict:
    if obs["output_shape"] != want:
        return Verdict.wrong(f"{what} output per sample {obs['output_shape']}, expected {want}")
    if obs["probabilities"]:
        return Verdict.wrong(
            f"{what} returns probabilities (softmax applied): return raw logits, "
            "nn.CrossEntropyLoss applies log-softmax itself"
        )
    return Verdict.ok(f"{what} maps (N, 1, 28, 28) to (N, 10) logits")


@CHECKS.check("resmlp_output", observe=resmlp)
def _(obs, ctx) -> Verdict:
    return _output_verdict(obs, ctx.expected["structure"]["resmlp"]["output_shape"], "ResMLP")


@CHECKS.check("resmlp_structure", observe=resmlp)
def _(obs, ctx) -> Verdict:
    want = ctx.expected["structure"]["resmlp"]
    if obs["resblocks"] < want["resblocks"]:
        return Verdict.wrong(
            f"found {obs['resblocks']} registered ResBlock modules, expected {want['resblocks']} "
            "(blocks kept in a plain list are not registered: use nn.Sequential or nn.ModuleList)"
        )
    if obs["param_shapes"] != want["param_shapes"]:
        return Verdict.wrong(
            f"{obs['params']} parameters, expected {want['params']}: "
            + diff_shapes(want["param_shapes"], obs["param_shapes"])
        )
    return Verdict.ok(f"{want['resblocks']} ResBlocks, {want['params']} parameters")


# ---------------------------------------------------------------- DenseBlock


@CHECKS.observer
def denseblock(ctx) -> dict:
    DenseBlock = ctx.get("DenseBlock")  # noqa: N806
    runs = []
    for in_channels, num_layers, growth in ctx.settings["denseblock_settings"]:
        for size in ctx.settings["denseblock_sizes"]:
            entry = {"setting": [in_channels, num_layers, growth], "size": size}
            try:
                block = DenseBlock(in_channels, num_layers, growth).train()
                convs = [
                    m for m in modules_of_type(block, nn.Conv2d) if tuple(m.kernel_size) == (3, 3)
                ]
                seen, remove = record_calls(convs, lambda m, inputs: inputs[0].detach().clone())
                x = _inputs(2, in_channels, size, size, seed=size)
                with torch.no_grad():
                    out = block(x)
                remove()
                entry["output_shape"] = sample_shape(out, 2)
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
                if (
                    isinstance(out, torch.Tensor)
                    and out.dim() == 4
                    and out.shape[2:] == x.shape[2:]
                ):
                    # Concatenation keeps each input channel as it is somewhere in the output.
                    flat_out = out.transpose(0, 1).reshape(out.shape[1], -1)
                    flat_in = x.transpose(0, 1).reshape(in_channels, -1)
                    entry["input_channels_kept"] = all(
                        bool(torch.isclose(flat_out, row, atol=1e-6).all(1).any())
                        for row in flat_in
                    )
            except Exception as err:  # noqa: BLE001
                entry["error"] = describe_error(err, 300)
            runs.append(entry)
    return {"runs": runs}


def _run_name(entry: dict) -> str:
    c, n, k = entry["setting"]
    s = entry["size"]
    return f"DenseBlock({c}, {n}, {k}) on {c}x{s}x{s}"


def _per_run(obs: dict, ctx, test) -> Verdict:
    """Apply `test(entry, want) -> problem or None` to every probed setting; partial credit."""
    problems = []
    for entry, want in zip(obs["runs"], ctx.expected["structure"]["denseblock"], strict=True):
        if "error" in entry:
            problems.append(f"{_run_name(entry)} raised {entry['error']}")
        elif problem := test(entry, want):
            problems.append(f"{_run_name(entry)}: {problem}")
    total = len(obs["runs"])
    return Verdict.partial(
        total - len(problems), total, "; ".join(problems[:4]) or "all settings right"
    )


@CHECKS.check("denseblock_channels", observe=denseblock)
def _(obs, ctx) -> Verdict:
    def test(entry, want):
        if entry["output_shape"] != want["output_shape"]:
            return f"output {entry['output_shape']}, expected {want['output_shape']}"
        return None

    return _per_run(obs, ctx, test)


@CHECKS.check("denseblock_layer_inputs", observe=denseblock)
def _(obs, ctx) -> Verdict:
    def test(entry, want):
        seen = entry["conv3x3_inputs"] or entry["conv3x3_weight_inputs"]
        if sorted(seen) != want["layer_in_channels"]:
            return f"3x3 convolutions see {seen} channels, expected {want['layer_in_channels']}"
        return None

    return _per_run(obs, ctx, test)


@CHECKS.check("denseblock_concatenates", observe=denseblock)
def _(obs, ctx) -> Verdict:
    def test(entry, want):
        if not entry.get("input_channels_kept"):
            return (
                "the block input is not part of the output: features must be concatenated "
                "along the channels (torch.cat), not summed"
            )
        return None

    return _per_run(obs, ctx, test)


@CHECKS.check("denseblock_layer_order", observe=denseblock)
def _(obs, ctx) -> Verdict:
    # Only the order is judged here; how many channels each layer sees is denseblock_layer_inputs.
    def test(entry, want):
        num_layers, norms = entry["setting"][1], entry["batchnorm_features"]
        if len(norms) != num_layers:
            return f"{len(norms)} BatchNorm2d layers, expected one per dense layer ({num_layers})"
        if not entry["conv3x3_inputs"]:
            return "no nn.Conv2d 3x3 layer was called"
        if norms != (fed := sorted(entry["conv3x3_inputs"])):
            return (
                f"batch norms over {norms} channels but 3x3 convolutions fed {fed} channels: "
                "each layer's batch norm must normalise that layer's input"
            )
        if not entry["conv3x3_inputs_nonnegative"]:
            return (
                "a 3x3 convolution received negative values: each layer must be BN -> ReLU -> conv"
            )
        return None

    return _per_run(obs, ctx, test)


# ---------------------------------------------------------------- transition


@CHECKS.observer
def transition(ctx) -> dict:
    Transition = ctx.get("Transition")  # noqa: N806
    runs = []
    for in_channels, out_channels, size in ctx.settings["transition_settings"]:
        entry = {"setting": [in_channels, out_channels, size]}
        try:
            layer = Transition(in_channels, out_channels)
            with torch.no_grad():
                entry["output_shape"] = sample_shape(
                    layer.train()(_inputs(2, in_channels, size, size)), 2
                )
            entry["param_shapes"] = param_shapes(layer)
        except Exception as err:  # noqa: BLE001
            entry["error"] = describe_error(err, 300)
        runs.append(entry)
    return {"runs": runs}


@CHECKS.check("transition_shapes", observe=transition)
def _(obs, ctx) -> Verdict:
    problems = []
    for entry, want in zip(obs["runs"], ctx.expected["structure"]["transition"], strict=True):
        c_in, c_out, size = entry["setting"]
        name = f"Transition({c_in}, {c_out}) on {c_in}x{size}x{size}"
        if "error" in entry:
            problems.append(f"{name} raised {entry['error']}")
        elif entry["output_shape"] != want["output_shape"]:
            problems.append(
                f"{name} gave {entry['output_shape']}, expected {want['output_shape']} "
                "(1x1 conv to out_channels, 2x2 average pool with stride 2)"
            )
        elif entry["param_shapes"] != want["param_shapes"]:
            problems.append(f"{name}: {diff_shapes(want['param_shapes'], entry['param_shapes'])}")
    total = len(obs["runs"])
    return Verdict.partial(
        total - len(problems), total, "; ".join(problems) or "all settings right"
    )


# ---------------------------------------------------------------- DenseNet


@CHECKS.observer
def densenet(ctx) -> dict:
    DenseNet, DenseBlock = ctx.get("DenseNet"), ctx.get("DenseBlock")  # noqa: N806
    result = {}
    for growth in ctx.settings["densenet_growth_rates"]:
        model = DenseNet(growth).eval()
        blocks = [m for m in model.modules() if isinstance(m, DenseBlock)]
        linears = modules_of_type(model, nn.Linear)
        block_inputs, remove_blocks = record_calls(
            blocks, lambda m, inputs: sample_shape(inputs[0], BATCH)
        )
        fc_inputs, remove_fc = record_calls(
            linears, lambda m, inputs: sample_shape(inputs[0], BATCH)
        )
        with torch.no_grad():
            out = model(_inputs(BATCH, 1, 28, 28))
        remove_blocks(), remove_fc()
        result[str(growth)] = {
            "output_shape": sample_shape(out, BATCH),
            "probabilities": _looks_like_probabilities(out),
            "denseblocks": len(blocks),
            "block_inputs": block_inputs,
            "last_linear_input": fc_inputs[-1] if fc_inputs else None,
            "param_shapes": param_shapes(model),
            "params": param_count(model),
        }
    return result


def _each_growth(obs: dict, ctx, test) -> Verdict:
    problems = []
    for growth, want in ctx.expected["structure"]["densenet"].items():
        if problem := test(obs[growth], want):
            problems.append(f"DenseNet({growth}): {problem}")
    return Verdict.partial(len(obs) - len(problems), len(obs), "; ".join(problems) or "right")


@CHECKS.check("densenet_output", observe=densenet)
def _(obs, ctx) -> Verdict:
    def test(seen, want):
        verdict = _output_verdict(seen, want["output_shape"], "DenseNet")
        return None if verdict.fraction == 1 else verdict.message

    return _each_growth(obs, ctx, test)


@CHECKS.check("densenet_block_inputs", observe=densenet)
def _(obs, ctx) -> Verdict:
    def test(seen, want):
        if seen["block_inputs"] != want["block_inputs"]:
            return (
                f"DenseBlocks received inputs of shape {seen['block_inputs']}, expected "
                f"{want['block_inputs']} (4 channels at 14x14, then 4 channels at 7x7)"
            )
        return None

    return _each_growth(obs, ctx, test)


@CHECKS.check("densenet_fc_input", observe=densenet)
def _(obs, ctx) -> Verdict:
    def test(seen, want):
        if seen["last_linear_input"] != want["last_linear_input"]:
            return (
                f"the final linear layer received {seen['last_linear_input']}, expected "
                f"{want['last_linear_input']} (global average pooling of the last block)"
            )
        return None

    return _each_growth(obs, ctx, test)


@CHECKS.check("densenet_parameters", observe=densenet)
def _(obs, ctx) -> Verdict:
    def test(seen, want):
        if seen["param_shapes"] != want["param_shapes"]:
            return f"{seen['params']} parameters, expected {want['params']}: " + diff_shapes(
                want["param_shapes"], seen["param_shapes"]
            )
        return None

    return _each_growth(obs, ctx, test)


# ---------------------------------------------------------------- training and evaluation loops


def loop_model(seed: int = 0, *, dropout: float = 0.5) -> nn.Module:
    """A small seeded net with batch norm and dropout, so train/eval mode changes its output."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(16, 10),
    )


def loop_batches(seed: int = 0, batches: int = 3, size: int = 8) -> list:
    """Seeded (images (size, 1, 28, 28), labels (size,)) batches on the CPU."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 1, 28, 28, generator=g), torch.randint(0, 10, (size,), generator=g))
        for _ in range(batches)
    ]


def accuracy_model() -> nn.Module:
    """A seeded linear classifier: no batch norm or dropout, so its output is the same in train
    and eval mode and the accuracy check does not repeat evaluate_mode's verdict."""
    torch.manual_seed(6)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def accuracy_batches() -> list:
    """Batches of 8, 8 and 5 (a short last batch, as a DataLoader gives): averaging per-batch
    accuracies or dividing by the number of batches gives another number than correct / total.
    Every other label is accuracy_model()'s own prediction, so the accuracy is well above 0."""
    g = torch.Generator().manual_seed(7)
    model = accuracy_model()
    batches = []
    for size in (8, 8, 5):
        x = torch.randn(size, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (size,), generator=g)
        with torch.no_grad():
            y[::2] = model(x).argmax(1)[::2]
        batches.append((x, y))
    return batches


class _Recorder(nn.Module):
    """Wraps a model and records the mode and grad state of every forward call."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.calls: list[dict] = []

    def forward(self, x):
        self.calls.append({"training": self.training, "grad": torch.is_grad_enabled()})
        return self.inner(x)


def _bn_state(model: nn.Module) -> torch.Tensor:
    bn = modules_of_type(model, nn.BatchNorm1d)[0]
    return torch.cat([bn.running_mean, bn.running_var]).clone()


@CHECKS.observer
def loops(ctx) -> dict:
    train_epoch, evaluate = ctx.get("train_epoch"), ctx.get("evaluate")
    cpu = torch.device("cpu")
    out: dict = {}

    model = _Recorder(loop_model(seed=1))
    model.train()
    before = _bn_state(model)
    try:
        out["evaluate_returned"] = jsonable(evaluate(model, loop_batches(seed=2), cpu))
    except Exception as err:  # noqa: BLE001
        out["evaluate_error"] = describe_error(err, 300)
    out["evaluate_calls"] = model.calls
    out["evaluate_moved_bn"] = not torch.equal(before, _bn_state(model))

    model = _Recorder(loop_model(seed=1))
    model.eval()
    before, weights = _bn_state(model), [p.detach().clone() for p in model.parameters()]
    try:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        out["train_returned"] = jsonable(train_epoch(model, loop_batches(seed=3), optimizer, cpu))
    except Exception as err:  # noqa: BLE001
        out["train_error"] = describe_error(err, 300)
    out["train_calls"] = model.calls
    out["train_moved_bn"] = not torch.equal(before, _bn_state(model))
    out["train_updated_weights"] = any(
        not torch.equal(a, b) for a, b in zip(weights, model.parameters(), strict=True)
    )

    try:
        out["accuracy_returned"] = jsonable(evaluate(accuracy_model(), accuracy_batches(), cpu))
    except Exception as err:  # noqa: BLE001
        out["accuracy_error"] = describe_error(err, 300)

    # Plain SGD without dropout: the weights after one epoch are a known function of the
    # batches, different when gradients pile up because zero_grad() is never called.
    model = loop_model(seed=8, dropout=0.0)
    try:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        train_epoch(model, loop_batches(seed=9), optimizer, cpu)
        out["sgd_weights_tensor"] = _flat(model)
    except Exception as err:  # noqa: BLE001
        out["sgd_error"] = describe_error(err, 300)

    # With lr = 0 the weights stay put, so the loss train_epoch reports is a known number.
    model = loop_model(seed=4, dropout=0.0)
    try:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        out["loss_returned"] = jsonable(train_epoch(model, loop_batches(seed=5), optimizer, cpu))
    except Exception as err:  # noqa: BLE001
        out["loss_error"] = describe_error(err, 300)
    return out


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def reference_sgd_weights(zero_grad: bool) -> torch.Tensor:
    """loop_model(8) after SGD(lr=0.1) over loop_batches(9), with or without zero_grad()."""
    model = loop_model(seed=8, dropout=0.0).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in loop_batches(seed=9):
        if zero_grad:
            optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return _flat(model)


def reference_eval_accuracy() -> float:
    """correct / total of accuracy_model() on accuracy_batches(), computed by the judge itself."""
    model = accuracy_model().eval()
    with torch.no_grad():
        batches = accuracy_batches()
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
    return correct / sum(len(y) for _, y in batches)


def reference_train_loss() -> float:
    """Mean cross-entropy of loop_model(4) (train mode, no dropout) over loop_batches(5)."""
    model = loop_model(seed=4, dropout=0.0).train()
    with torch.no_grad():
        losses = [F.cross_entropy(model(x), y) for x, y in loop_batches(seed=5)]
    return float(torch.stack(losses).mean())


@CHECKS.check("evaluate_mode", observe=loops)
def _(obs, ctx) -> Verdict:
    calls = obs["evaluate_calls"]
    if not calls:
        return Verdict.wrong(
            f"evaluate never called the model ({obs.get('evaluate_error', 'no error raised')})"
        )
    if any(c["training"] for c in calls):
        return Verdict.wrong("evaluate ran the model in training mode: call model.eval() first")
    if any(c["grad"] for c in calls):
        return Verdict.wrong("evaluate computed gradients: wrap the loop in torch.no_grad()")
    if len(calls) != len(loop_batches()):
        return Verdict.wrong(f"evaluate called the model {len(calls)} times for 3 batches")
    return Verdict.ok("evaluate uses eval mode and no_grad on every batch")


@CHECKS.check("train_mode", observe=loops)
def _(obs, ctx) -> Verdict:
    calls = obs["train_calls"]
    if not calls:
        return Verdict.wrong(
            f"train_epoch never called the model ({obs.get('train_error', 'no error raised')})"
        )
    if not all(c["training"] for c in calls):
        return Verdict.wrong(
            "train_epoch ran the model in eval mode: call model.train() at its start "
            "(evaluate leaves the model in eval mode)"
        )
    if not obs["train_updated_weights"]:
        return Verdict.wrong("train_epoch did not update the weights (optimizer.step() missing?)")
    if len(calls) != len(loop_batches()):
        return Verdict.wrong(f"train_epoch called the model {len(calls)} times for 3 batches")
    return Verdict.ok("train_epoch trains in training mode on every batch")


@CHECKS.check("train_zero_grad", observe=loops)
def _(obs, ctx) -> Verdict:
    if "sgd_error" in obs:
        return Verdict.wrong(f"train_epoch raised {obs['sgd_error']}")
    seen = obs.get("sgd_weights_tensor")
    if not isinstance(seen, torch.Tensor) or seen.shape != reference_sgd_weights(True).shape:
        return Verdict.wrong("train_epoch changed the model's parameters' shapes")
    # Only the known mistake loses the point: loops that differ in other ways (clipping, a
    # summed loss) match neither trajectory and get the benefit of the doubt.
    accumulated = torch.allclose(seen, reference_sgd_weights(False), atol=1e-5)
    correct = torch.allclose(seen, reference_sgd_weights(True), atol=1e-5)
    return Verdict.expect(
        correct or not accumulated,
        "gradients are reset before every step",
        "train_epoch never resets the gradients: call optimizer.zero_grad() before "
        "loss.backward(), or every step also applies all earlier batches' gradients",
    )


@CHECKS.check("batchnorm_statistics", observe=loops)
def _(obs, ctx) -> Verdict:
    if obs["evaluate_moved_bn"]:
        return Verdict.wrong(
            "evaluate changed batch-norm running statistics (model left in train mode)"
        )
    if not obs["train_moved_bn"]:
        return Verdict.wrong("train_epoch did not update batch-norm running statistics")
    return Verdict.ok("batch-norm statistics move in training only")


def _close(value, target: float, *, tolerance: float = 1e-4) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and abs(value - target) <= tolerance
    )


@CHECKS.check("train_loss", observe=loops)
def _(obs, ctx) -> Verdict:
    if "loss_error" in obs:
        return Verdict.wrong(f"train_epoch raised {obs['loss_error']}")
    want = reference_train_loss()
    got = obs.get("loss_returned")
    return Verdict.expect(
        _close(got, want),
        "train_epoch returns the mean cross-entropy of the logits",
        f"train_epoch returned {got!r}, expected the mean cross-entropy {want:.4f} "
        "(apply nn.CrossEntropyLoss to raw logits, without softmax)",
    )


@CHECKS.check("evaluate_accuracy", observe=loops)
def _(obs, ctx) -> Verdict:
    if "accuracy_error" in obs:
        return Verdict.wrong(f"evaluate raised {obs['accuracy_error']}")
    want = reference_eval_accuracy()
    got = obs.get("accuracy_returned")
    ok = _close(got, want, tolerance=1e-6) or _close(got, 100 * want, tolerance=1e-4)
    return Verdict.expect(
        ok,
        "evaluate returns correct / total",
        f"evaluate returned {got!r}, expected the accuracy {want:.4f} (correct / total)",
    )


# ---------------------------------------------------------------- device placement


@CHECKS.observer
def devices(ctx) -> dict:
    train_epoch, evaluate = ctx.get("train_epoch"), ctx.get("evaluate")
    meta = torch.device("meta")
    model = loop_model(seed=6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen_train = device_probe(
        lambda m: train_epoch(m, loop_batches(seed=7), optimizer, meta), model
    )
    model = loop_model(seed=6)
    seen_eval = device_probe(lambda m: evaluate(m, loop_batches(seed=7), meta), model)
    return {"train": seen_train, "evaluate": seen_eval}


def _device_verdict(seen: dict, fn: str) -> Verdict:
    if "input_device" not in seen:
        reason = seen.get("error", "it returned without calling the model")
        return Verdict.wrong(f"{fn} never ran the model on the given device: {reason}")
    model_ok, batch_ok = seen["param_device"] == "meta", seen["input_device"] == "meta"
    if model_ok and batch_ok:
        return Verdict.ok(f"{fn} moves the model and the batches to the device it is given")
    missing = [what for what, ok in (("the model", model_ok), ("the batches", batch_ok)) if not ok]
    return Verdict.wrong(
        f"{fn} was given a device but left {' and '.join(missing)} on "
        f"{seen['param_device'] if not model_ok else seen['input_device']}: "
        "use model.to(device) and images.to(device), labels.to(device) with the device argument"
    )


@CHECKS.check("train_device", observe=devices)
def _(obs, ctx) -> Verdict:
    return _device_verdict(obs["train"], "train_epoch")


@CHECKS.check("evaluate_device", observe=devices)
def _(obs, ctx) -> Verdict:
    return _device_verdict(obs["evaluate"], "evaluate")


# ---------------------------------------------------------------- accuracy of submitted weights


@CHECKS.observer
def predictions(ctx) -> dict:
    """Load each submitted weights file into the student's class and predict the test split."""
    result = {}
    for spec in ctx.models:
        entry: dict = {}
        result[spec["key"]] = entry
        if problem := ctx.weights_problems.get(spec["weights"]):
            entry["error"] = problem
            continue
        try:
            model = ctx.get(spec["class_name"])(*spec["args"])
            state = torch.load(ctx.workdir / spec["weights"], map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise TypeError(
                    f"{spec['weights']} holds a {type(state).__name__}: save model.state_dict()"
                )
            model.load_state_dict(state)
            model.eval()
            with torch.no_grad():
                logits = torch.cat([model(x) for x in ctx.test_batches()])
            entry["logits_tensor"] = logits.float()
        except StopProbe:
            raise
        except Exception as err:  # noqa: BLE001
            entry["error"] = describe_error(err, 400)
    return result


def _accuracy_verdict(obs: dict, ctx, key: str) -> Verdict:
    entry = obs[key]
    weights = ctx.manifest.model(key).weights
    if "error" in entry:
        return Verdict.wrong(f"{weights} could not be evaluated: {entry['error']}")
    logits = entry.get("logits_tensor")
    labels = ctx.labels
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(labels), 10):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
        return Verdict.wrong(f"expected ({len(labels)}, 10) logits for the test split, got {shape}")
    accuracy = float((logits.argmax(1) == labels).float().mean())
    threshold = ctx.expected["accuracy"][key]["threshold"]
    return Verdict.expect(
        accuracy >= threshold,
        f"test accuracy {accuracy:.4f} >= {threshold:.2f}",
        f"test accuracy {accuracy:.4f} is below the threshold {threshold:.2f}",
    )


@CHECKS.check("resmlp_accuracy", observe=predictions)
def _(obs, ctx) -> Verdict:
    return _accuracy_verdict(obs, ctx, "resmlp")


@CHECKS.check("densenet_accuracy", observe=predictions)
def _(obs, ctx) -> Verdict:
    return _accuracy_verdict(obs, ctx, "densenet")


# ---------------------------------------------------------------- written answers


@CHECKS.observer
def answers(ctx) -> dict:
    return {"answers": jsonable(ctx.get("shape_answers")())}


def _normalise_answer(key: str, value):
    """Accept the usual ways of writing a size: [14, 14], (14, 14), 14, "14x14"."""
    if key.endswith("_spatial"):
        if isinstance(value, int) and not isinstance(value, bool):
            return [value, value]
        if isinstance(value, str):
            numbers = [int(n) for n in re.findall(r"\d+", value)]
            return numbers * 2 if len(numbers) == 1 else numbers
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@CHECKS.check("shape_answers", observe=answers)
def _(obs, ctx) -> Verdict:
    want, got = ctx.expected["answers"], obs["answers"]
    if not isinstance(got, dict):
        return Verdict.wrong(f"shape_answers() returned {got!r}, expected a dict")
    wrong = [
        f"{k}: {got.get(k)!r}, expected {v!r}"
        for k, v in want.items()
        if _normalise_answer(k, got.get(k)) != v
    ]
    return Verdict.partial(
        len(want) - len(wrong), len(want), "; ".join(wrong) or "all answers right"
    )
