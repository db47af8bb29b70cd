"""res_dense_nets' own checks, in-process: a DenseBlock without dense connectivity loses all of
denseblock_layer_inputs in every course's settings; dropout in ResMLP costs its behaviour; a
block that is its skip path alone does not earn resblock_skip."""

from __future__ import annotations

import pytest

from tests.grader.families.conftest import Harness

# Every dense layer is fed the block's input alone; the outputs are concatenated at the end.
INPUT_ONLY = """
class DenseBlock(nn.Module):
    def __init__(self, in_channels, num_layers, growth_rate):
        super().__init__()
        c, k = in_channels, growth_rate
        layer = lambda: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, k, 3, padding=1))
        self.layers = nn.ModuleList(layer() for _ in range(num_layers))

    def forward(self, x):
        return torch.cat([x, *(layer(x) for layer in self.layers)], dim=1)
"""

# Dropout that only acts in training mode: the sheet's ResMLP has none (its text says so).
DROPOUT_MLP = """
class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.head = nn.Linear(28 * 28, 256), nn.Linear(256, 10)
        self.blocks = nn.Sequential(ResBlock(256, 128), ResBlock(256, 128))

    def forward(self, x):
        x = F.dropout(F.relu(self.stem(torch.flatten(x, 1))), 0.2, training=self.training)
        return self.head(self.blocks(x))
"""


def _lost(harness, code, check) -> dict:
    """check name -> (points, message) of the checks that lost points."""
    observer = harness.checkset.checks[check].observer
    results = harness.grade(harness.namespace(code), [observer])
    return {n: (r.points, r.message) for n, r in results.items() if r.points < r.max_points}


@pytest.mark.parametrize("seed", range(6))
def test_does_a_block_whose_layers_see_only_its_input_lose_every_setting(seed):
    # A one-layer block has no dense connectivity to get wrong: such settings paid this block.
    lost = _lost(Harness.of("res_dense_nets", seed=seed), INPUT_ONLY, "denseblock_layer_inputs")
    assert lost.keys() == {"denseblock_layer_inputs"} and lost["denseblock_layer_inputs"][0] == 0, (
        lost
    )


def test_is_dropout_in_the_residual_mlp_charged_to_its_behaviour_alone():
    lost = _lost(Harness.of("res_dense_nets"), DROPOUT_MLP, "resmlp_behaviour")
    assert set(lost) == {"resmlp_behaviour"}, lost


# The skip path alone: the layers are built (the widths are right) but never used.
SKIP_ONLY = """
class ResBlock(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return F.relu(x)
"""


def test_does_a_block_that_is_its_skip_path_alone_lose_resblock_skip():
    """The last notes' carried item: with every weight zeroed the reference gives relu(x), and
    so did a block that ignores its layers: resblock_skip's 2 points for no residual block."""
    lost = _lost(Harness.of("res_dense_nets"), SKIP_ONLY, "resblock_skip")
    assert lost.keys() == {"resblock_skip"} and "F(x)" in lost["resblock_skip"][1], lost
    # A residual branch whose last layer starts at zero (a known initialisation) is right.
    zero_init = SKIP_ONLY.replace(
        "return F.relu(x)", "return F.relu(x + self.fc2(F.relu(self.fc1(x))))"
    ).replace("in_features)\n", "in_features)\n        nn.init.zeros_(self.fc2.weight)\n", 1)
    assert "zeros_" in zero_init and not _lost(
        Harness.of("res_dense_nets"), zero_init, "resblock_skip"
    )


def test_does_a_skip_path_cut_out_of_autograd_lose_resblock_skip():
    """Blind round 13: `identity = x.detach()` added to the layers' output computes the
    reference's outputs, and kept resblock_skip's 2 points though training gets no gradient
    through the skip; behaviour, built on the skip, is not charged again."""
    detached = SKIP_ONLY.replace(
        "return F.relu(x)", "return F.relu(x.detach() + self.fc2(F.relu(self.fc1(x))))"
    )
    harness = Harness.of("res_dense_nets")
    lost = _lost(harness, detached, "resblock_skip")
    assert lost.keys() == {"resblock_skip"} and "autograd" in lost["resblock_skip"][1], lost
    kept = detached.replace("x.detach()", "x")
    assert not _lost(harness, kept, "resblock_skip")


# squeeze() before the classifier: a single image's logits lose their batch dimension, and the
# sheet's shape_answers, recording the classifier's input on one image, reads past its shape.
SQUEEZED_NET = """
class DenseNet(nn.Module):
    def __init__(self, growth_rate=12):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(2, 2))
        self.block1, self.block2 = DenseBlock(4, 3, growth_rate), DenseBlock(4, 3, growth_rate)
        self.transition = Transition(4 + 3 * growth_rate, 4)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(4 + 3 * growth_rate, 10)

    def forward(self, x):
        x = self.block2(self.transition(self.block1(self.stem(x))))
        return self.fc(self.pool(x).squeeze())


def shape_answers(growth_rate=12):
    model, seen = DenseNet(growth_rate).eval(), {}
    for name in ("block1", "block2", "fc"):
        hook = lambda m, i, o, name=name: seen.update({name: (i[0].shape, o.shape)})
        getattr(model, name).register_forward_hook(hook)
    model(torch.zeros(1, 1, 28, 28))
    return {
        "block1_spatial": list(seen["block1"][0][2:]),
        "block1_in_channels": seen["block1"][0][1],
        "block1_out_channels": seen["block1"][1][1],
        "block2_spatial": list(seen["block2"][0][2:]),
        "fc_in_features": seen["fc"][0][1],
    }
"""


def test_is_a_densenet_that_squeezes_a_batch_of_one_charged_once():
    """Blind round 12b: densenet_output charged the squeeze (1 point), and shape_answers,
    whose hooks ran that DenseNet on one image as the reference's do, raised IndexError and lost
    its 3 points for the same mistake."""
    harness = Harness.of("res_dense_nets")
    observers = [harness.checkset.checks[c].observer for c in ("shape_answers", "densenet_output")]
    results = harness.grade(harness.namespace(SQUEEZED_NET), observers)
    lost = {n: r.message for n, r in results.items() if r.points < r.max_points}
    assert lost.keys() == {"densenet_output"} and "batch of one" in lost["densenet_output"], lost
    # Where shape_answers itself breaks on one image (not the network), it is still charged.
    own_bug = SQUEEZED_NET.replace("self.pool(x).squeeze()", "torch.flatten(self.pool(x), 1)")
    own_bug = own_bug.replace('seen["fc"][0][1]', 'seen["fc"][0].squeeze()[1]')
    results = harness.grade(harness.namespace(own_bug), observers)
    assert results["shape_answers"].points == 0 and results["densenet_output"].points == 1


def test_is_noise_added_in_training_mode_alone_charged_to_densenet_behaviour():
    """Blind round 14: `if self.training: x = x + 0.05 * torch.randn_like(x)` before the stem,
    which the sheet's DenseNet lacks, kept densenet_behaviour: its masks' generator was seeded
    as the inputs' was, so randn_like(x) gave x back, and batch norm undid the rescaled x."""
    noisy = SQUEEZED_NET.replace("self.pool(x).squeeze()", "torch.flatten(self.pool(x), 1)")
    noisy = noisy.replace(
        "    def forward(self, x):\n",
        "    def forward(self, x):\n        if self.training:\n"
        "            x = x + 0.05 * torch.randn_like(x)\n",
    )
    assert "randn_like" in noisy
    lost = _lost(Harness.of("res_dense_nets"), noisy, "densenet_behaviour")
    assert lost.keys() == {"densenet_behaviour"}, lost
    assert "draws random numbers" in lost["densenet_behaviour"][1], lost


def test_is_a_classifier_made_inside_forward_told_so():
    """Blind round 14: `nn.Linear(x.shape[1], 10)` made in DenseNet.forward lost
    densenet_fc_input with "the final linear layer receives None": it now names a layer made
    inside forward."""
    made_in_forward = SQUEEZED_NET.replace(
        "self.fc(self.pool(x).squeeze())",
        "nn.Linear(x.shape[1], 10)(torch.flatten(self.pool(x), 1))",
    )
    assert "nn.Linear(x.shape[1], 10)(" in made_in_forward
    lost = _lost(Harness.of("res_dense_nets"), made_in_forward, "densenet_fc_input")
    told = lost["densenet_fc_input"][1]
    assert lost["densenet_fc_input"][0] == 0 and "inside forward" in told, told


# The blocks compiled with TorchScript: each one is a ScriptModule, no ResBlock instance.
COMPILED_BLOCKS = """
class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.head = nn.Linear(28 * 28, 256), nn.Linear(256, 10)
        x = torch.randn(2, 256)  # torch.jit.trace's example input
        self.blocks = nn.Sequential(*[COMPILE(ResBlock(256, 128)) for _ in range(2)])

    def forward(self, x):
        return self.head(self.blocks(F.relu(self.stem(x.view(x.size(0), -1)))))
"""

COMPILED_DENSENET = """
class DenseNet(nn.Module):
    def __init__(self, growth_rate=12):
        super().__init__()
        c = 4 + 3 * growth_rate
        x = torch.randn(2, 4, 14, 14)  # torch.jit.trace's example input
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(2))
        self.block1 = COMPILE(DenseBlock(4, 3, growth_rate))
        x = torch.randn(2, c, 14, 14)
        self.transition = COMPILE(Transition(c, 4))
        x = torch.randn(2, 4, 7, 7)
        self.block2 = COMPILE(DenseBlock(4, 3, growth_rate))
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        return self.fc(self.block2(self.transition(self.block1(self.stem(x)))).mean((2, 3)))
"""

COMPILERS = ["torch.jit.script", "(lambda module: torch.jit.trace(module, x))"]


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("compiler", COMPILERS)
def test_are_blocks_compiled_with_torch_jit_counted_as_resblocks(compiler):
    """Blind round 17: ResBlocks passed through torch.jit.script lost resmlp_structure with "0
    registered ResBlock modules, expected 2" (the family counted isinstance(m, ResBlock))."""
    code = COMPILED_BLOCKS.replace("COMPILE", compiler)
    lost = _lost(Harness.of("res_dense_nets"), code, "resmlp_structure")
    assert "resmlp_structure" not in lost, lost


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("compiler", COMPILERS)
def test_is_a_densenet_of_blocks_compiled_with_torch_jit_judged_on_its_wiring(compiler):
    """Blind round 17: DenseBlocks and the Transition passed through torch.jit.script lost
    densenet_block_inputs, _fc_input and _parameters ("0 DenseBlock and 0 Transition modules",
    "expected None"): isinstance missed them and no forward hook attaches to a ScriptModule."""
    code = COMPILED_DENSENET.replace("COMPILE", compiler)
    lost = _lost(Harness.of("res_dense_nets"), code, "densenet_block_inputs")
    assert not lost, lost


# The sheet's network with its dense layers and transition written inline, not from the classes.
INLINE_DENSENET = """
class DenseNet(nn.Module):
    def __init__(self, growth_rate=12):
        super().__init__()
        k, c = growth_rate, 4 + 3 * growth_rate
        layer = lambda n: nn.Sequential(nn.BatchNorm2d(n), nn.ReLU(), nn.Conv2d(n, k, 3, padding=1))
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(2))
        self.dense1 = nn.ModuleList(layer(4 + i * k) for i in range(3))
        self.trans = nn.Sequential(nn.BatchNorm2d(c), nn.Conv2d(c, 4, 1), nn.AvgPool2d(2))
        self.dense2 = nn.ModuleList(layer(4 + i * k) for i in range(3))
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        for layers in (self.dense1, self.dense2):
            for layer in layers:
                x = torch.cat([x, layer(x)], 1)
            x = self.trans(x) if layers is self.dense1 else x
        return self.fc(x.mean((2, 3)))
"""


def test_is_a_densenet_not_built_from_its_blocks_charged_once_and_told_so():
    """Blind round 17: a DenseNet with its dense layers inline lost densenet_block_inputs (the
    sheet says to build it from the blocks) and also _fc_input and _parameters, told "expected
    None" and "missing parameters of shape 10xNone"; these two now judge the whole network."""
    lost = _lost(Harness.of("res_dense_nets"), INLINE_DENSENET, "densenet_block_inputs")
    assert lost.keys() == {"densenet_block_inputs"}, lost
    assert "0 DenseBlock and 0 Transition" in lost["densenet_block_inputs"][1], lost
    wrong_fc = INLINE_DENSENET.replace("nn.Linear(c, 10)", "nn.Linear(c, 10, bias=False)")
    lost = _lost(Harness.of("res_dense_nets"), wrong_fc, "densenet_block_inputs")
    assert "missing parameters of shape 10" in lost["densenet_parameters"][1], lost
    assert "None" not in lost["densenet_parameters"][1], lost


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_is_a_dense_block_of_scripted_layers_judged_on_its_layers():
    """Blind round 17: each dense layer's nn.Sequential passed through torch.jit.script lost
    denseblock_layer_order with "0 BatchNorm2d layers": compiled modules are not nn.BatchNorm2d."""
    scripted = INPUT_ONLY.replace(
        "self.layers = nn.ModuleList(layer() for _ in range(num_layers))",
        "self.layers = nn.ModuleList(\n"
        "            torch.jit.script(nn.Sequential(nn.BatchNorm2d(c + i * k), nn.ReLU(),\n"
        "                             nn.Conv2d(c + i * k, k, 3, padding=1)))\n"
        "            for i in range(num_layers)\n"
        "        )",
    ).replace(
        "return torch.cat([x, *(layer(x) for layer in self.layers)], dim=1)",
        "for layer in self.layers:\n            x = torch.cat([x, layer(x)], dim=1)\n"
        "        return x",
    )
    assert "torch.jit.script(nn.Sequential" in scripted and "for layer in" in scripted
    lost = _lost(Harness.of("res_dense_nets"), scripted, "denseblock_layer_order")
    assert not lost, lost


# Dense layers of the student's own parameters: a batch norm through F.batch_norm with its own
# buffers, a 3x3 convolution through F.conv2d; `BATCH_STATS` always normalises with the batch's
# statistics (training=True), a real mistake: the running ones are never used in eval.
HAND_BUILT = """
class Norm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            BATCH_STATS)


class Conv(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(k, c, 3, 3) / (3 * c**0.5))
        self.bias = nn.Parameter(torch.zeros(k))

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=1)


class DenseBlock(nn.Module):
    def __init__(self, in_channels, num_layers, growth_rate):
        super().__init__()
        c, k = in_channels, growth_rate
        self.layers = nn.ModuleList(
            nn.Sequential(Norm(c + i * k), nn.ReLU(), Conv(c + i * k, k))
            for i in range(num_layers)
        )

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x
"""


@pytest.mark.parametrize(("batch_stats", "lost"), [("self.training", set()), ("True", {"be"})])
def test_is_a_dense_block_of_hand_built_layers_judged_on_what_they_compute(batch_stats, lost):
    """Blind round 18 (res x13): a dense layer's batch norm written with F.batch_norm lost
    denseblock_layer_order, told "0 BatchNorm2d layers" (a conv through F.conv2d: "no
    nn.Conv2d 3x3 layer was called"); only nn.BatchNorm2d and nn.Conv2d modules were seen. The
    F.batch_norm and F.conv2d calls are recorded now: right layers pass, and a norm that always
    uses the batch's statistics loses denseblock_behaviour alone."""
    harness = Harness.of("res_dense_nets")
    checks = harness.checkset.checks
    observers = sorted({checks[n].observer for n in checks if n.startswith("denseblock")})
    ns = harness.namespace(HAND_BUILT.replace("BATCH_STATS", batch_stats))
    results = harness.grade(ns, observers)
    failing = {n for n, r in results.items() if r.points < r.max_points}
    want = {"denseblock_behaviour"} if lost else set()
    assert failing == want, {n: results[n].message for n in failing}


OWN_CLASSIFIER = """
class Classifier(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in**0.5)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class DenseNet(nn.Module):
    def __init__(self, growth_rate=12):
        super().__init__()
        c = 4 + 3 * growth_rate
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(2))
        self.block1, self.block2 = DenseBlock(4, 3, growth_rate), DenseBlock(4, 3, growth_rate)
        self.transition = Transition(c, 4)
        self.fc = Classifier(c, 10)

    def forward(self, x):
        return self.fc(self.block2(self.transition(self.block1(self.stem(x)))).mean((2, 3)))
"""


def test_is_a_classifier_of_its_own_parameters_seen_as_the_final_layer():
    """Blind round 18 (res y18): a DenseNet whose classifier is a module of its own parameters
    applied with F.linear lost densenet_fc_input, told "no registered nn.Linear runs ... a layer
    made inside forward": F.linear calls on the model's own weights are recorded now (one made
    inside forward still is not: test_is_a_classifier_made_inside_forward_told_so)."""
    lost = _lost(Harness.of("res_dense_nets"), OWN_CLASSIFIER, "densenet_fc_input")
    assert not lost, lost
