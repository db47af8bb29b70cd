"""Do the module families (shapes, parameters, behaviour under fixed weights) tell another
layout from another computation, in-process?"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grader.checks.families import behaviour

BLOCK = ["module:block"]
TINY_NET = ["module:block", "module:tiny_net"]


def _statuses(results: dict) -> dict[str, str]:
    return {name: r.status for name, r in results.items()}


CORRECT_BLOCKS = {
    "nn.Sequential inside": """
        class Block(nn.Module):
            def __init__(self, a, b):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, a))
            def forward(self, x):
                return torch.relu(self.body(x) + x)
    """,
    "other names, functional ReLU": """
        class Block(nn.Module):
            def __init__(self, in_features, hidden_features):
                super().__init__()
                self.expand = nn.Linear(in_features, hidden_features)
                self.project = nn.Linear(hidden_features, in_features)
            def forward(self, inputs):
                return F.relu(inputs + self.project(F.relu(self.expand(inputs))))
    """,
}


@pytest.mark.parametrize("layout", sorted(CORRECT_BLOCKS))
def test_does_another_layout_of_the_same_computation_pass(harness, layout):
    results = harness.grade(harness.namespace(CORRECT_BLOCKS[layout]), BLOCK)
    assert set(_statuses(results).values()) == {"pass"}, {n: r.message for n, r in results.items()}


def test_does_an_activation_in_another_place_fail_only_behaviour(harness):
    code = """
        class Block(nn.Module):
            def __init__(self, a, b):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(a, b), nn.Linear(b, a)
            def forward(self, x):
                return x + F.relu(self.fc2(F.relu(self.fc1(x))))
    """
    results = harness.grade(harness.namespace(code), BLOCK)
    assert _statuses(results) == {
        "block_is_module": "pass",
        "block_widths": "pass",
        "block_behaviour": "fail",
    }


def test_is_a_width_mistake_charged_once(harness):
    code = """
        class Block(nn.Module):
            def __init__(self, a, b):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(a, a), nn.Linear(a, a)
            def forward(self, x):
                return F.relu(x + self.fc2(F.relu(self.fc1(x))))
    """
    statuses = _statuses(harness.grade(harness.namespace(code), BLOCK))
    assert statuses["block_widths"] == "fail"
    assert statuses["block_behaviour"] == "skipped"  # not charged: it builds on the widths


def test_are_layers_in_a_plain_list_named_in_the_message(harness):
    code = """
        class TinyNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Linear(784, 16)
                self.blocks = [Block(16, 8), Block(16, 8)]
                self.head = nn.Linear(16, 10)
            def forward(self, x):
                x = F.relu(self.stem(x.flatten(1)))
                for block in self.blocks:
                    x = block(x)
                return self.head(x)
    """
    results = harness.grade(harness.namespace(code), TINY_NET)
    assert results["tiny_net_structure"].status == "fail"
    assert "plain Python container" in results["tiny_net_structure"].message
    assert results["tiny_net_behaviour"].status == "skipped"


NET_OF_BLOCKS = """
    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(784, 16)
            self.blocks = nn.Sequential({blocks})
            self.head = nn.Linear(16, 10)
        def forward(self, x):
            return self.head(self.blocks(F.relu(self.stem(x.flatten(1)))))
"""


@pytest.mark.parametrize(
    ("blocks", "status"),
    [
        ("Block(16, HIDDEN), Block(16, HIDDEN)", "fail"),
        ("Block(hidden=8, features=16), Block(16, 8)", "pass"),
    ],
)
def test_are_the_parts_constructor_arguments_the_nets_to_get_right(harness, blocks, status):
    # Blind round 9: a ResMLP reading a global HIDDEN that a later experiment cell set to 64
    # built ResBlock(256, 64) and passed its structure (only layers outside its blocks compared).
    ns = harness.namespace("HIDDEN = 4", NET_OF_BLOCKS.format(blocks=blocks))
    results = harness.grade(ns, TINY_NET)
    assert results["tiny_net_structure"].status == status, results["tiny_net_structure"].message
    assert results["tiny_net_behaviour"].status in {"pass", "skipped"}
    if status == "fail":
        assert (
            "[[16, 4], [16, 4]], expected [[16, 8], [16, 8]]"
            in results["tiny_net_structure"].message
        )


def test_are_probabilities_refused_where_logits_are_asked_for(harness):
    code = """
        _Reference = TinyNet
        class TinyNet(_Reference):
            def forward(self, x):
                return torch.softmax(super().forward(x), dim=1)
    """
    results = harness.grade(harness.namespace(code), TINY_NET)
    assert results["tiny_net_output"].status == "fail"
    assert "probabilities" in results["tiny_net_output"].message


def test_is_a_stub_told_it_is_not_implemented_yet(harness):
    code = """
        class Block(nn.Module):
            def __init__(self, in_features, hidden_features):
                super().__init__()
                raise NotImplementedError()
    """
    results = harness.grade(harness.namespace(code), BLOCK)
    assert "not implemented yet" in results["block_is_module"].message
    assert "subclass" not in results["block_is_module"].message


def test_do_fixed_values_depend_on_the_shape_and_seed_alone():
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    behaviour.fix_parameters(a, 7)
    behaviour.fix_parameters(b, 7)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    other = nn.Linear(5, 3)
    behaviour.fix_parameters(other, 8)
    assert not torch.equal(a.weight, other.weight)
    assert bool((a.bias >= 0.5).all())  # vectors positive: a batch-norm scale never flips
    norm = nn.BatchNorm1d(3)
    norm(torch.randn(4, 3))  # a dummy pass in training mode moves the running statistics
    behaviour.fix_parameters(norm, 7)
    assert torch.equal(norm.running_mean, torch.zeros(3))


LYING_OUTPUTS = {
    "probabilities whose sum() lies": (
        "tiny_net_output",
        """
        _Reference = TinyNet
        class Unsummed(torch.Tensor):
            def sum(self, *args, **kwargs):
                return torch.zeros(len(self))
        class TinyNet(_Reference):
            def forward(self, x):
                return torch.softmax(super().forward(x), dim=1).as_subclass(Unsummed)
        """,
    ),
    "other outputs whose float() lies": (
        "tiny_net_behaviour",
        """
        _Reference = TinyNet
        class Shifted(torch.Tensor):
            def float(self):
                return self.as_subclass(torch.Tensor) - 1
        class TinyNet(_Reference):
            def forward(self, x):
                return (super().forward(x) + 1).as_subclass(Shifted)
        """,
    ),
}


@pytest.mark.parametrize("case", sorted(LYING_OUTPUTS))
def test_is_an_output_judged_as_a_plain_tensor(harness, case):
    # A student's Tensor subclass overrides the methods the checks call on the outputs.
    check, code = LYING_OUTPUTS[case]
    results = harness.grade(harness.namespace(code), TINY_NET)
    assert results[check].status == "fail", results[check].message


class _HandDropout(nn.Module):
    """Inverted dropout with its own torch.rand masks: right, but other draws than nn.Dropout's."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) / (1 - self.p)


def _mlp(dropout: nn.Module, extra: nn.Module | None = None) -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 8), nn.Tanh(), dropout, extra or nn.Identity(), nn.Linear(8, 3)
    )


def test_is_dropout_drawn_by_hand_left_to_the_dropout_check():
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    want = behaviour.outputs(_mlp(nn.Dropout(0.5)), x, 3)
    by_hand = behaviour.outputs(_mlp(_HandDropout(0.5)), x, 3)
    assert _behaviour_problem(None, by_hand, want) is None
    # Training mode is still compared where the reference draws nothing, and evaluation always.
    assert "training" in _behaviour_problem(
        None, by_hand, behaviour.outputs(_mlp(nn.Identity()), x, 3)
    )
    wrong = behaviour.outputs(_mlp(_HandDropout(0.5), nn.ReLU()), x, 3)
    assert "evaluation" in _behaviour_problem(None, wrong, want)
    # nn.Dropout draws the reference's masks: another p is still told in training mode.
    other_p = behaviour.outputs(_mlp(nn.Dropout(0.2)), x, 3)
    assert "training" in _behaviour_problem(None, other_p, want)


class _AlwaysDropout(nn.Module):
    """F.dropout without training=self.training: it drops in evaluation mode too."""

    def forward(self, x):
        return torch.nn.functional.dropout(x, 0.5)


def test_is_dropout_left_on_in_evaluation_mode_named_in_the_message():
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    want = behaviour.outputs(_mlp(nn.Dropout(0.5)), x, 3)
    problem = _behaviour_problem(None, behaviour.outputs(_mlp(_AlwaysDropout()), x, 3), want)
    assert "evaluation mode" in problem and "training=self.training" in problem
    # Another computation with dropout that follows eval() keeps the general message.
    wrong = behaviour.outputs(_mlp(nn.Dropout(0.5), nn.ReLU()), x, 3)
    assert "order of the layers" in _behaviour_problem(None, wrong, want)
    assert _behaviour_problem(None, behaviour.outputs(_mlp(nn.Dropout(0.5)), x, 3), want) is None


def test_is_one_block_registered_twice_told_it_shares_its_weights(harness):
    # Blind round 11: `nn.Sequential(*[ResBlock(256, 128)] * 2)` was told "1 registered ResBlock
    # modules, expected 2", though the student's Sequential lists two.
    ns = harness.namespace(NET_OF_BLOCKS.format(blocks="*[Block(16, 8)] * 2"))
    results = harness.grade(ns, TINY_NET)
    message = results["tiny_net_structure"].message
    assert results["tiny_net_structure"].status == "fail"
    assert "1 registered Block modules, expected 2" in message
    assert "2 places" in message and "shares its weights" in message


def test_is_dropout_the_instructions_do_not_list_named_in_the_message():
    # cifar_cnn_svm's Dense with nn.Dropout(0.2) after each ReLU: evaluation mode agrees, and
    # the message sent the student to "the order of the layers, activations, pooling".
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    plain = behaviour.outputs(_mlp(nn.Identity()), x, 3)
    dropped = behaviour.outputs(_mlp(nn.Dropout(0.2)), x, 3)
    problem = _behaviour_problem(None, dropped, plain)
    assert "dropout" in problem and "do not list" in problem, problem
    assert "order of the layers" not in problem
    assert "applies no dropout" in _behaviour_problem(None, plain, dropped)


def test_is_a_batch_of_one_squeezed_to_a_vector_charged_once(harness):
    # cifar_cnn_svm's CNN returned self.fc2(x).squeeze(): (10,) for one image, right for four.
    code = """
        class TinyNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Linear(28 * 28, 16)
                self.blocks = nn.Sequential(Block(16, 8), Block(16, 8))
                self.head = nn.Linear(16, 10)
            def forward(self, x):
                return self.head(self.blocks(F.relu(self.stem(x.flatten(1))))).squeeze()
    """
    results = harness.grade(harness.namespace(code), TINY_NET)
    assert results["tiny_net_output"].status == "fail"
    assert "on a batch of one sample its output is [10], expected [1, 10]" in (
        results["tiny_net_output"].message
    )
    assert results["tiny_net_structure"].status == "pass"


def test_does_a_batch_of_one_that_raises_say_the_error():
    # Blind round 12b (cifar_cnn_svm): Dense returned F.log_softmax(self.fc3(x).squeeze(), dim=1),
    # which raises on one image; the message said "its output is an error", not which.
    from grader.checks.families.modules import _single_shape, single_problem

    class Squeezed(nn.Module):
        def forward(self, x):
            return torch.log_softmax(x.flatten(1).squeeze(), dim=1)

    seen = {"single_shape": _single_shape(Squeezed(), torch.randn(4, 3, 2, 2))}
    problem = single_problem(seen, {"single_shape": [12]})
    assert problem.startswith("on a batch of one sample it raised IndexError: Dimension out of")
    assert "expected [1, 12]" in problem
    assert single_problem({"single_shape": [12]}, {"single_shape": [12]}) is None


@pytest.mark.parametrize("track", [False, True])
def test_is_batch_norm_without_running_statistics_told_so_on_a_batch_of_one(track):
    # Blind round 13b (cnn_techniques): BatchNorm1d(128, track_running_stats=False) raises on one
    # sample in evaluation mode; the message advised against squeeze(), which it did not call.
    from grader.checks.families.modules import _single_shape, single_problem

    net = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8, track_running_stats=track)
    )
    seen = {"single_shape": _single_shape(net.eval(), torch.randn(4, 3, 2, 2))}
    problem = single_problem(seen, {"single_shape": [8]})
    if track:
        assert problem is None
        return
    assert "in evaluation mode it raised ValueError: Expected more than 1 value" in problem
    assert "track_running_stats=False" in problem and "running statistics" in problem
    assert "squeeze" not in problem
    # Blind round 14 (cnn_techniques): nn.BatchNorm1d(128) made inside forward raises alike.
    assert "a layer made inside forward" in problem


@pytest.mark.parametrize("track", [False, True])
def test_is_batch_norm_without_running_statistics_named_by_norm_modes(track):
    # Blind round 13b (cnn_techniques): with track_running_stats=False batchnorm_modes said
    # "its batch norm layers are not applied in forward", though forward applied them.
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8, track_running_stats=track)
    )
    entry = behaviour.norm_modes(net, torch.randn(4, 3, 2, 2))
    problem = behaviour.norm_modes_problem(entry)
    if track:
        assert problem is None
        return
    assert entry["untracked"] == 1
    assert "1 of its batch norm layers keep no running statistics" in problem
    assert "not applied" not in problem


class _NoGradForward(nn.Sequential):
    """The right computation under @torch.no_grad(): outputs carry no gradient (blind 13, fnn)."""

    @torch.no_grad()
    def forward(self, x):
        return super().forward(x)


class _DetachedFirst(nn.Sequential):
    def forward(self, x):
        return self[1](self[0](x).detach())


class _Spare(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.body, self.spare = nn.Sequential(*layers), nn.Linear(3, 3)  # spare: never used

    def forward(self, x):
        return self.body(x)


def test_is_a_forward_that_cuts_off_the_gradients_told_so():
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    layers = lambda: [nn.Linear(6, 8), nn.Sequential(nn.Tanh(), nn.Linear(8, 3))]  # noqa: E731
    want = behaviour.outputs(nn.Sequential(*layers()), x, 3)
    assert (want["unreached"], want["reached"]) == ([], 4)
    for cut, unreached in ((_NoGradForward, 4), (_DetachedFirst, 2)):
        seen = behaviour.outputs(cut(*layers()), x, 3)
        assert len(seen["unreached"]) == unreached
        assert "no gradient reaches 0.weight, 0.bias" in _behaviour_problem(None, seen, want)
    frozen = nn.Sequential(*layers())
    frozen[0].requires_grad_(False)  # frozen and forgotten
    assert "requires_grad_(False)" in _behaviour_problem(
        None, behaviour.outputs(frozen, x, 3), want
    )
    # A layer built and never used trains no fewer parameters: the parameter checks' matter,
    # not charged again here. Nor is grad mode a late cell left off.
    extra = _Spare(*layers())
    with torch.no_grad():
        assert _behaviour_problem(None, behaviour.outputs(extra, x, 3), want) is None


class _Dense(nn.Module):
    """A dense block of two BN -> ReLU -> conv layers; `cut` feeds the second one detached
    maps, `checkpointed` runs each layer under a reentrant torch.utils.checkpoint."""

    def __init__(self, cut=False, checkpointed=False):
        super().__init__()
        self.cut, self.checkpointed = cut, checkpointed
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 2, 3, padding=1))
            for c in (3, 5)
        )

    def forward(self, x):
        from torch.utils.checkpoint import checkpoint

        features = [x]
        for layer in self.layers:
            joined = torch.cat([f.detach() if self.cut else f for f in features], 1)
            run = lambda t, layer=layer: layer(t)  # noqa: E731
            new = checkpoint(run, joined, use_reentrant=True) if self.checkpointed else run(joined)
            features.append(new)
        return torch.cat(features, 1)


def test_are_gradient_paths_judged_as_inside_a_network():
    # Blind round 13b (res_dense_nets): a DenseBlock (or ResBlock) run under a reentrant
    # checkpoint trains every parameter inside its network, whose input carries a gradient, but
    # none on the probe's plain input: it was charged. A DenseBlock feeding its later layers
    # detached maps computes the right outputs and leaves each parameter some gradient (through
    # the final concatenation), yet the earlier layers learn nothing from the later: it passed.
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(4, 3, 6, 6)
    want = behaviour.outputs(_Dense(), x, 2)
    assert (
        _behaviour_problem(None, behaviour.outputs(_Dense(checkpointed=True), x, 2), want) is None
    )
    cut = _behaviour_problem(None, behaviour.outputs(_Dense(cut=True), x, 2), want)
    assert cut is not None and "gradient that flows back through it" in cut


class _Checkpointed(nn.Sequential):
    """Blind round 13b (mlp_tuning): each layer through torch.utils.checkpoint."""

    reentrant = True

    def forward(self, x):
        from torch.utils.checkpoint import checkpoint

        for layer in self:
            x = checkpoint(layer, x, use_reentrant=self.reentrant)
        return x


def test_is_a_reentrant_checkpoint_on_the_images_told_as_the_cut():
    # MLP.forward checkpointed its hidden blocks with use_reentrant=True (blind round 13b,
    # mlp_tuning): on images that need no gradient no hidden layer trains. A classifier is fed
    # the data (data=True); a block, whose input carries a gradient inside its network, is not.
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    layers = lambda: [nn.Linear(6, 8), nn.Sequential(nn.Tanh(), nn.Linear(8, 3))]  # noqa: E731
    want = behaviour.outputs(nn.Sequential(*layers()), x, 3, data=True)
    problem = _behaviour_problem(
        None, behaviour.outputs(_Checkpointed(*layers()), x, 3, data=True), want
    )
    assert "no gradient reaches 0.weight, 0.bias" in problem and "use_reentrant=False" in problem
    kept = _Checkpointed(*layers())
    kept.reentrant = False
    assert _behaviour_problem(None, behaviour.outputs(kept, x, 3, data=True), want) is None
    block = behaviour.outputs(_Checkpointed(*layers()), x, 3)
    assert (
        _behaviour_problem(None, block, behaviour.outputs(nn.Sequential(*layers()), x, 3)) is None
    )


AUTOGRAD_CUT_BLOCKS = {
    # Blind round 13 (res_dense_nets): Transition's forward carried @torch.no_grad(), ResMLP
    # froze its stem; the outputs are right, so each passed. (ResBlock's skip of x.detach(),
    # which trains every parameter, is resblock_skip's matter: test_res_dense_nets_checks.)
    "@torch.no_grad() on forward": ("identity = x", "identity", "@torch.no_grad()", "reaches"),
    "a layer frozen in __init__": ("identity = x", "identity", "", "requires_grad_(False)"),
}


@pytest.mark.parametrize("case", sorted(AUTOGRAD_CUT_BLOCKS))
def test_is_a_forward_that_cuts_autograd_charged_to_behaviour(harness, case):
    keep, skip, decorator, said = AUTOGRAD_CUT_BLOCKS[case]
    freeze = "self.fc1.requires_grad_(False)" if "frozen" in case else "pass"
    code = f"""
        class Block(nn.Module):
            def __init__(self, a, b):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(a, b), nn.Linear(b, a)
                {freeze}
            {decorator}
            def forward(self, x):
                {keep}
                return F.relu({skip} + self.fc2(F.relu(self.fc1(x))))
    """
    results = harness.grade(harness.namespace(code), BLOCK)
    assert results["block_widths"].status == "pass"
    assert results["block_behaviour"].status == "fail"
    assert said in results["block_behaviour"].message, results["block_behaviour"].message


def test_does_a_batch_norm_cut_from_autograd_fail_behaviour():
    # The sum of a training-mode batch norm's outputs does not depend on its input: a gradient
    # of the summed outputs told @torch.no_grad() on Transition.forward from the reference only
    # where average pooling dropped a row (odd sizes).
    from grader.checks.families.modules import _behaviour_problem

    def layer():
        return nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 2, 1), nn.AvgPool2d(2))

    class Cut(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = layer()

        @torch.no_grad()
        def forward(self, x):
            return self.body(x)

    x = torch.randn(4, 3, 8, 8)
    want = behaviour.outputs(layer(), x, 5)
    assert _behaviour_problem(None, behaviour.outputs(layer(), x, 5), want) is None
    assert "no gradient reaches" in _behaviour_problem(None, behaviour.outputs(Cut(), x, 5), want)


def test_are_parameters_unlike_the_references_named_where_outputs_differ():
    # Blind round 13 (res_dense_nets): DenseBlock's convolutions with bias=False were told "with
    # the same parameter values as the reference ... check the order of the layers".
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(4, 3, 6, 6)
    want = behaviour.outputs(nn.Conv2d(3, 2, 3), x, 5)
    seen = behaviour.outputs(nn.Conv2d(3, 2, 3, bias=False), x, 5)
    want["param_shapes"], seen["param_shapes"] = [[2], [2, 3, 3, 3]], [[2, 3, 3, 3]]
    problem = _behaviour_problem(None, seen, want)
    assert "missing parameters of shape 2" in problem and "biases" in problem, problem
    assert "same parameter values" not in problem


class _Renormalised(nn.Module):
    """res_dense_nets' ResMLP of blind round 13: the data's mean and std as buffers, the inputs
    (normalised by the data cell already) normalised again in forward."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(0.286))
        self.register_buffer("std", torch.tensor(0.353))
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc((x - self.mean) / self.std)


def test_are_buffers_the_reference_has_not_named_where_outputs_differ():
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    want = behaviour.outputs(nn.Linear(6, 3), x, 3)
    problem = _behaviour_problem(None, behaviour.outputs(_Renormalised(), x, 3), want)
    assert "buffers the reference has not (of shape a scalar, a scalar" in problem, problem
    # Batch norm's running statistics, the reference's own buffers, are not named.
    norm = nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 3))
    wrong = behaviour.outputs(nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 3), nn.ReLU()), x, 3)
    assert "buffers" not in _behaviour_problem(None, wrong, behaviour.outputs(norm, x, 3))


def test_are_buffers_the_student_lacks_named_where_outputs_differ():
    # Blind round 13b (fnn_mnist): dense_layer's BatchNorm1d(out, track_running_stats=False)
    # was told "check the order of the layers, activations, pooling and the skip ... paths".
    from grader.checks.families.modules import _behaviour_problem

    x = torch.randn(5, 6)
    want = behaviour.outputs(nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3)), x, 3)
    seen = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3, track_running_stats=False))
    problem = _behaviour_problem(None, behaviour.outputs(seen, x, 3), want)
    assert "lacks buffers the reference holds (of shape a scalar, 3, 3)" in problem, problem
    assert "track_running_stats=False" in problem and "has not" not in problem, problem


def test_is_a_layer_built_in_forward_told_so_and_not_taken_for_dropout():
    from grader.checks.families.modules import _behaviour_problem, _parameter_problem

    x = torch.randn(5, 6)  # forward builds a new nn.Linear(8, 8), new weights on every call
    built = type("Built", (nn.Module,), {"forward": lambda self, x: nn.Linear(8, 8)(x)})()
    seen = behaviour.outputs(_mlp(nn.Identity(), built), x, 3)
    problem = _behaviour_problem(None, seen, behaviour.outputs(_mlp(nn.Identity()), x, 3))
    assert "builds a new Linear" in problem and "dropout" not in problem, problem
    entry, want = type("Entry", (), {"parts": ()}), {"param_shapes": [[8], [8, 8]], "params": 72}
    assert "in __init__" in _parameter_problem(entry, {**seen, "param_shapes": []}, want)
