"""Do the family extensions `fnn_mnist` needs work, in-process: builder functions, torch.nn
classes as values and kinds judged as one check (modules); the validation loss of a trainer
class (loops)? Each variant's verdicts: tests/grader/test_variants.py; the accuracy family's
input shape and test transform: tests/grader/families/test_accuracy_inputs.py."""

from __future__ import annotations

import re
import textwrap

import pytest
import torch

from grader.checks.families.modules import describe, torch_value
from grader.checks.fnn_mnist.training import HISTORY
from tests.fixtures.variants.mutations import reference_cells
from tests.grader.families.conftest import Harness

ID = "fnn_mnist"


@pytest.fixture(scope="module")
def fnn() -> Harness:
    return Harness.of(ID, seed=3)


# ---------------------------------------------------------------- modules family extensions


def test_are_settings_only_entries_no_observers(fnn):
    assert "module:fnn" not in fnn.checkset.observers
    assert "module:deep_fnn" not in fnn.checkset.observers
    assert {"fnn_structure", "deep_fnn_structure"} <= set(fnn.checkset.observers)


def test_are_torch_nn_names_the_classes_and_described_by_name(fnn):
    assert torch_value("nn.Tanh") is torch.nn.Tanh and torch_value("nnet") == "nnet"
    spec = fnn.manifest.module("dense_layer_batchnorm")
    text = describe(spec, [20, 7, "nn.ReLU", True], fnn.manifest)
    assert text == (
        "dense_layer(in_features=20, out_features=7, activation=nn.ReLU, batch_norm=True) "
        "on 20 inputs"
    )


DENSE = reference_cells(ID)["dense_layer"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("nn.Sequential(*layers)", "torch.zeros(in_features, out_features)", "not an nn.Module"),
        # shape and behaviour are one check: a missing bias is told as a parameter problem.
        ("bias=not batch_norm", "bias=False", "missing parameters"),
    ],
)
def test_is_a_dense_layer_mistake_told_by_what_it_gets_wrong_first(fnn, old, new, message):
    assert DENSE.count(old) == 1
    results = fnn.grade(fnn.namespace(DENSE.replace(old, new)), ["module:dense_layer"])
    assert results["dense_layer_shapes"].points == 0
    assert message in results["dense_layer_shapes"].message


def test_is_a_softmax_in_fnn_charged_to_fnn_output_only(fnn):
    """Probabilities are fnn_output's mistake, as other assignments' networks' output checks:
    the outputs that differ by it are not fnn_behaviour's again (it cost both, blind round 5)."""
    old = "return self.layers(torch.flatten(x, start_dim=1))"
    code = reference_cells(ID)["fnn"].replace(old, f"return torch.softmax({old[7:]}, dim=1)")
    results = fnn.grade(fnn.namespace(code), ["module:fnn_images", "fnn_structure"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"fnn_output", "fnn_behaviour"}
    assert results["fnn_output"].points == 0 and results["fnn_behaviour"].status == "skipped"


def test_is_a_log_softmax_in_fnn_and_deep_fnn_named(fnn):
    """forward returning F.log_softmax (blind 14, fnn m10): fnn_behaviour and deep_fnn_behaviour
    said "check the order of the layers". The text asks for raw scores, no softmax: FNN's is
    fnn_output's, named as such (fnn_mnist's fnn_images outputs "raw_logits"); DeepFNN's
    behaviour message names the softmax among what forward must not add."""
    old = "return self.layers(torch.flatten(x, start_dim=1))"
    code = reference_cells(ID)["fnn"].replace(old, f"return torch.log_softmax({old[7:]}, dim=1)")
    results = fnn.grade(fnn.namespace(code), ["module:fnn_images", "fnn_structure"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"fnn_output", "fnn_behaviour"}
    assert results["fnn_behaviour"].status == "skipped"
    assert "log-probabilities (log_softmax applied)" in results["fnn_output"].message
    deep = reference_cells(ID)["deep_fnn"]
    old = "    def forward(self, x):\n"
    assert deep.count(old) == 1
    code = deep.replace(
        old,
        f"{old}        return torch.log_softmax(self._logits(x), dim=1)\n\n"
        "    def _logits(self, x):\n",
    )
    results = fnn.grade(fnn.namespace(code), ["deep_fnn_structure"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"deep_fnn_behaviour"}
    assert "no softmax or log_softmax" in results["deep_fnn_behaviour"].message


def test_is_a_spectral_normed_output_layer_named_in_deep_fnn_behaviour(fnn):
    """DeepFNN's output layer wrapped in spectral_norm (blind round 17, fnn s15): the same
    parameters, other outputs; deep_fnn_behaviour's own message names the parametrized layer."""
    deep = reference_cells(ID)["deep_fnn"]
    old = "dense_layer(widths[-1], output_size)"
    assert deep.count(old) == 1
    normed = "nn.utils.parametrizations.spectral_norm(nn.Linear(widths[-1], output_size))"
    results = fnn.grade(fnn.namespace(deep.replace(old, normed)), ["deep_fnn_structure"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"deep_fnn_behaviour"}
    assert "carries a parametrization" in results["deep_fnn_behaviour"].message


def test_are_flatten_s_tensor_subclasses_read_by_their_values(fnn):
    """flatten returning a tensor subclass whose len() lies, values right (blind round 8): the
    test images of make_loaders are read by their values (a reshape to len() failed)."""
    lying = "class Lying(torch.Tensor):\n    def __len__(self):\n        return 784\n"
    cells = reference_cells(ID)
    old = "return torch.flatten(image)"
    code = cells["data_tools"].replace(old, f"{old}.as_subclass(Lying)")
    ns = fnn.namespace(lying, code, cells["loaders"])
    results = fnn.grade(ns, ["data_statistics", "flatten_transform"])
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(results, "pass")
    assert set(results) == {"normalisation_stats", "flatten_transform"}


def test_is_a_test_loader_of_other_images_told_by_its_size(fnn):
    """A make_loaders that reads another folder than `root` (hard-coded "/content/data", blind
    round 8) or another split is told how many images its test loader holds, not 'unshuffled'."""
    code = reference_cells(ID)["loaders"].replace("root, train=False", "root, train=True")
    result = fnn.grade(fnn.namespace(code), ["data_statistics"])["normalisation_stats"]
    assert result.points == 1 and "expected the" in result.message, result.message


@pytest.mark.parametrize(
    "mean_std",
    [
        "def mean_std(dataset):\n    return 0.1307, 0.3081\n",  # MNIST's, typed in
        "def mean_std(dataset):\n    x = dataset.dataset.data[dataset.indices].float() / 255\n"
        "    return x.mean().item(), x.std().item()\n",  # the sample std, and Subsets only
    ],
)
def test_does_a_wrong_mean_std_cost_its_own_half_alone(fnn, mean_std):
    """make_loaders is judged with a right mean_std in place (blind round 8: typed-in numbers
    also lost make_loaders' half, which calls mean_std)."""
    ns = fnn.namespace(reference_cells(ID)["loaders"], mean_std)  # make_loaders reads ns
    result = fnn.grade(ns, ["data_statistics"])["normalisation_stats"]
    assert result.points == 1 and "make_loaders" not in result.message, result.message


def test_are_answers_typed_in_worth_nothing(fnn):
    """The sheet asks for code that computes the numbers: the reference's own numbers typed in
    (blind round 8) earn nothing, the reference's code all."""
    typed = f"def answers():\n    return {fnn.reference_ns['answers']()!r}\n"
    results = {c: fnn.grade(fnn.namespace(c), ["answers"])["answers"] for c in (typed, "")}
    assert results[typed].points == 0 and "typed in" in results[typed].message
    assert results[""].status == "pass", results[""].message


# ---------------------------------------------------------------- loops family extensions


def test_is_the_validation_loss_judged_too(fnn):
    """A validation loss wrong without the penalty is trainer_loss's alone: regularized_step
    judges only that validate leaves the penalty out (blind 9: it charged both)."""
    code = reference_cells(ID)["trainer"].replace(
        "val_loss / seen,", "val_loss / len(self.val_loader),"
    )
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"trainer_loss"}
    assert "NetworkTrainer.validate returned" in results["trainer_loss"].message


TRAINER = reference_cells(ID)["trainer"]
TRAIN_ACCURACY = "self.train_accuracy = correct / seen"


def test_is_a_validation_loss_written_as_text_told_so(fnn):
    """validate returning f"{val_loss / seen:.6f}" (blind 15b, fnn v13) lost trainer_loss,
    rightly, but was told only the expected mean and how to average: the loss is a str."""
    code = TRAINER.replace("return val_loss / seen,", 'return f"{val_loss / seen:.6f}",')
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert "a number written as text" in results["trainer_loss"].message
    # train_network's f"{val_loss:.4f}" then raised: that is validate's text, not the step's
    assert {n for n, r in results.items() if r.status != "pass"} == {"trainer_loss"}, results


def test_does_a_validate_that_raises_cost_the_step_nothing(fnn):
    """validate reading the notebook's global loader raises on the grader's data (blind 9,
    fnn b3): that is validate's mistake, charged where validate is judged; the regularized
    step (its weights and training loss) is judged without it."""
    code = TRAINER.replace("in self.val_loader:", "in val_loader:")
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert results["regularized_step"].status == "pass"
    assert results["trainer_loss"].status != "pass"


@pytest.mark.parametrize(
    ("old", "new", "method"),
    [  # validate sums the cross-entropy itself (blind 12, fnn m08: full marks), or train_epoch
        (
            "self.criterion(outputs, targets).item() * len(targets)",
            'F.cross_entropy(outputs, targets, reduction="sum").item()',
            "NetworkTrainer.validate",
        ),
        ("loss = self.criterion(", "loss = F.cross_entropy(", "NetworkTrainer.train_epoch"),
    ],
)
def test_is_a_trainer_that_ignores_the_criterion_it_is_given_trainer_loss_s(fnn, old, new, method):
    """Right with the family's nn.CrossEntropyLoss(), so a trainer built with a label-smoothed
    one shows it: trainer_loss's alone, the method named."""
    assert TRAINER.count(old) == 1
    results = fnn.grade(fnn.namespace(TRAINER.replace(old, new)), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"trainer_loss"}
    assert results["trainer_loss"].message.startswith(f"{method} of a trainer given")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TRAIN_ACCURACY, "self.train_accuracy = 100 * correct / seen"),  # a percentage
        (TRAIN_ACCURACY, "self.train_accuracy = correct / len(self.train_loader)"),
        ("seen, correct / seen", "seen, 100 * correct / seen"),  # validate's, a percentage
        (  # the mean of the batch accuracies, the last batch shorter (blind round 6)
            "targets)\n            seen += len(targets)\n        " + TRAIN_ACCURACY,
            "targets) / len(targets)\n            seen += len(targets)\n"
            "        self.train_accuracy = correct / len(self.train_loader)",
        ),
    ],
)
def test_is_a_wrong_accuracy_trainer_accuracys_only(fnn, old, new):
    """The text gives train_accuracy and validate's accuracy one unit, a fraction: both are
    trainer_accuracy's; regularized_step, whose run and history read them, is not charged."""
    assert TRAINER.count(old) == 1
    results = fnn.grade(fnn.namespace(TRAINER.replace(old, new)), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"trainer_accuracy"}


def test_are_results_rounded_to_four_decimals_right(fnn):
    """train_epoch's loss and accuracy rounded to 4 decimals (blind 9): regularized_step and
    trainer_accuracy judge them as the loops family judges the same numbers (1e-4)."""
    code = TRAINER.replace(TRAIN_ACCURACY, "self.train_accuracy = round(correct / seen, 4)")
    code = code.replace("return train_loss / seen", 'return float(f"{train_loss / seen:.4f}")')
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == set()


def test_is_the_training_accuracy_judged_when_train_network_is_missing(fnn):
    start = "    def train_network(self, epochs):\n"
    code = TRAINER.replace(
        start, f"{start}        raise NotImplementedError\n\n    def _x(self, e):\n"
    )
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert results["regularized_step"].status == "error"
    assert results["trainer_accuracy"].status == "pass"
    wrong = code.replace(TRAIN_ACCURACY, "self.train_accuracy = 100 * correct / seen")
    assert fnn.grade(fnn.namespace(wrong), ["loops"])["trainer_accuracy"].status == "fail"


def test_are_weights_that_never_move_trainer_zero_grads_only(fnn):
    """zero_grad() between backward() and step(): no step moves the weights, which
    trainer_zero_grad says; regularized_step still judges the penalty by the loss (blind 6)."""
    zero, backward = "            self.optimizer.zero_grad()\n", "            loss.backward()\n"
    assert TRAINER.count(zero) == TRAINER.count(backward) == 1
    code = TRAINER.replace(zero, "").replace(backward, backward + zero)
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"trainer_zero_grad"}


# ---------------------------------------------------------------- own checks: NetworkUser

USER = reference_cells(ID)["user"]


def test_is_a_predict_that_squeezes_a_batch_of_one_told_so(fnn):
    """predict(...).argmax(dim=1).squeeze(): labels (16,) for 16 inputs but a 0-d tensor for one
    (blind 12, fnn m07: full marks); the docstring says int64 (N,), for every N."""
    old = "return outputs.argmax(dim=1).cpu()"
    assert USER.count(old) == 1
    code = USER.replace(old, "return outputs.argmax(dim=1).squeeze().cpu()")
    result = fnn.grade(fnn.namespace(code), ["save_load_roundtrip"])["save_load_roundtrip"]
    assert result.status == "fail" and result.points < result.max_points
    assert "on one input (1, 784) predict returned shape ()" in result.message


def test_is_a_step_with_clipped_gradients_right_and_one_without_the_penalty_wrong(fnn):
    """clip_grad_norm_(max_norm=1.0) between backward and step (blind 12, fnn m11) lost
    regularized_step, told "add regularization(model) to the loss", which it did; the loops
    family allows clipping. The step is judged by its direction: a missing penalty turns it."""
    backward = "            loss.backward()\n"
    clip = "            nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=1.0)\n"
    clipped = fnn.namespace(TRAINER.replace(backward, backward + clip))
    results = fnn.grade(clipped, ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == set()
    unpenalised = TRAINER.replace("loss = loss + self.regularization", "_ = self.regularization")
    assert unpenalised != TRAINER
    step = fnn.grade(fnn.namespace(unpenalised), ["regularized_step"])["regularized_step"]
    assert step.status == "fail" and "add regularization(model) to the loss" in step.message


@pytest.mark.parametrize(
    "old, new",
    [  # StepLR made in __init__, stepped after every train_epoch; a rate halved in train_network
        (
            "        self.train_accuracy = correct / seen\n",
            "        self.train_accuracy = correct / seen\n        self.scheduler.step()\n",
        ),
        (
            "            val_loss, val_accuracy = self.validate()\n",
            "            val_loss, val_accuracy = self.validate()\n"
            "            self.optimizer.param_groups[0]['lr'] /= 2\n",
        ),
    ],
    ids=["step_lr_in_train_epoch", "rate_halved_in_train_network"],
)
def test_is_a_learning_rate_scheduler_in_the_trainer_charged_to_regularized_step(fnn, old, new):
    """NT3: "No learning-rate scheduler is used." A StepLR the trainer built and stepped kept
    full marks (blind 17, fnn s13): the step is judged by its direction, blind to the rate."""
    init = "        self.model.to(device)\n"
    sched = "        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1, 0.5)\n"
    assert TRAINER.count(init) == TRAINER.count(old) == 1
    code = TRAINER.replace(init, init + sched).replace(old, new)
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"regularized_step"}
    assert "no learning-rate scheduler" in results["regularized_step"].message


def test_is_a_trainer_with_an_optimizer_of_its_own_charged_to_trainer_loss_alone(fnn):
    """A NetworkTrainer that replaced the optimizer it was given by its own Adam (blind 17,
    fnn s19) lost trainer_train_mode, trainer_loss and regularized_step (5 points), each told
    of a mistake it had not made. The given SGD never steps: trainer_loss says so; the mode is
    right, and regularized_step judges the penalty by the loss."""
    init = "        self.model.to(device)\n"
    adam = "        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.001)\n"
    assert TRAINER.count(init) == 1
    results = fnn.grade(
        fnn.namespace(TRAINER.replace(init, init + adam)), ["loops", "regularized_step"]
    )
    failing = {n for n, r in results.items() if r.status != "pass"}
    assert failing == {"trainer_loss", "trainer_zero_grad"}, {
        n: r.message for n, r in results.items()
    }
    assert results["trainer_zero_grad"].status == "skipped"  # builds on trainer_loss
    assert "never called step() of the optimizer it is given" in results["trainer_loss"].message


def test_is_a_history_kept_in_a_class_attribute_regularized_step_s(fnn):
    """`history = {...}` a class attribute that train_network appends to (blind 12, fnn m09):
    every trainer shares its lists, so the second trainer's train_network(1) gives two entries
    per key. It kept full marks while the check called train_network once."""
    start = "    def __init__(\n"
    fresh = "        history = {" + ", ".join(f'"{k}": []' for k in HISTORY) + "}\n"
    assert TRAINER.count(start) == TRAINER.count(fresh) == 1
    code = TRAINER.replace(fresh, "        history = self.history\n").replace(
        start, f"    history = {{k: [] for k in {list(HISTORY)}}}\n\n{start}"
    )
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"regularized_step"}
    assert "a new dict, 1 entry per epoch" in results["regularized_step"].message


def test_is_a_deep_fnn_that_squeezes_a_batch_of_one_told_so(fnn):
    """DeepFNN's forward ending in .squeeze() (blind 12b, fnn m01): (N, out) for a batch, (out,)
    for one sample, against "forward as FNN's"; deep_fnn is a settings-only entry, so the
    modules family's batch of one never met it (40/40). Charged to deep_fnn_shapes, unless the
    student's own dense_layer squeezes too (then dense_layer_shapes'). FNN's stays fnn_output's."""
    old = "return self.layers(torch.flatten(x, start_dim=1))"
    deep = reference_cells(ID)["deep_fnn"]
    assert deep.count(old) == 1
    code = deep.replace(old, f"{old}.squeeze()")
    results = fnn.grade(fnn.namespace(code), ["deep_fnn_structure"])
    assert {n for n, r in results.items() if r.status != "pass"} == {"deep_fnn_shapes"}
    assert "on a batch of one sample its output is" in results["deep_fnn_shapes"].message
    squeeze = "class Squeeze(nn.Module):\n    def forward(self, x):\n        return x.squeeze()\n"
    dense = DENSE.replace("nn.Sequential(*layers)", "nn.Sequential(*layers, Squeeze())")
    assert dense != DENSE
    both = fnn.grade(fnn.namespace(squeeze, dense, code), ["deep_fnn_structure"])
    assert both["deep_fnn_shapes"].status == "pass"


def test_is_a_dense_layer_that_raises_for_tanh_charged_to_dense_layer_only(fnn):
    """activation(inplace=True) (blind 13, fnn): nn.Tanh and nn.Sigmoid take no such argument.
    dense_layer_shapes lost points for it, and FNN and DeepFNN, built of that dense_layer, lost
    them again where their settings drew Tanh or Sigmoid (36.47/40): the same error from the
    student's own dense layers is theirs, not charged again."""
    dense = DENSE.replace("layers.append(activation())", "layers.append(activation(inplace=True))")
    assert dense != DENSE
    observers = ["module:dense_layer", "fnn_structure", "deep_fnn_structure"]
    cells = reference_cells(ID)  # FNN and DeepFNN defined again: they find this dense_layer
    results = fnn.grade(fnn.namespace(dense, cells["fnn"], cells["deep_fnn"]), observers)
    assert {n for n, r in results.items() if r.points < r.max_points} == {"dense_layer_shapes"}
    assert "unexpected keyword argument 'inplace'" in results["dense_layer_shapes"].message
    # An FNN that raises what its dense layers do not is still charged.
    fnn_cell = cells["fnn"].replace(
        "super().__init__()", "super().__init__()\n" + " " * 8 + "assert activation is nn.ReLU"
    )
    assert fnn_cell != cells["fnn"]
    own = fnn.grade(fnn.namespace(fnn_cell), ["fnn_structure"])
    assert own["fnn_parameters"].points < own["fnn_parameters"].max_points
    # A dense_layer not written yet excuses nothing: work not done earns no points anywhere.
    stub = DENSE.split('    """\n', 2)[0] + '    """\n    raise NotImplementedError()\n'
    undone = fnn.grade(fnn.namespace(stub, cells["fnn"]), ["fnn_structure"])
    assert all(r.points == 0 for r in undone.values()), undone


CHECKPOINTED = "torch.utils.checkpoint.checkpoint(self.layers, torch.flatten(x, 1), use_reentrant="


@pytest.mark.parametrize(
    ("cell", "old", "new"),
    [
        # Blind 13 (fnn): the right outputs, but nothing in it can train (it kept 40/40).
        (
            "deep_fnn",
            "    def forward(self, x):",
            "    @torch.no_grad()\n    def forward(self, x):",
        ),
        # A reentrant checkpoint on the images, which need no gradient, trains nothing either;
        # the probe fed FNN and DeepFNN inputs with a gradient, as a block's (the last note).
        ("deep_fnn", "self.layers(torch.flatten(x, start_dim=1))", CHECKPOINTED + "True)"),
        ("fnn", "self.layers(torch.flatten(x, start_dim=1))", CHECKPOINTED + "True)"),
    ],
)
def test_is_a_network_that_cannot_train_its_behaviour_s(fnn, cell, old, new):
    code = reference_cells(ID)[cell]
    assert code.count(old) == 1
    observer = f"{cell}_structure"
    results = fnn.grade(fnn.namespace(code.replace(old, new)), [observer])
    assert {n for n, r in results.items() if r.points < r.max_points} == {f"{cell}_behaviour"}
    assert "no gradient reaches" in results[f"{cell}_behaviour"].message
    if CHECKPOINTED in new:  # use_reentrant=False trains every layer
        kept = fnn.grade(fnn.namespace(code.replace(old, CHECKPOINTED + "False)")), [observer])
        assert all(r.points == r.max_points for r in kept.values()), kept


BOTH = {"trainer_loss", "trainer_accuracy"}


@pytest.mark.parametrize(
    ("old", "new", "check", "said"),
    [  # validate reads the training loader (blind 14, fnn m12: 40/40), or train_epoch validation's
        ("in self.val_loader:", "in self.train_loader:", "trainer_accuracy", "self.val_loader"),
        ("in self.train_loader:", "in self.val_loader:", "trainer_loss", "self.train_loader"),
    ],
)
def test_is_a_trainer_method_that_reads_the_other_loader_charged(fnn, old, new, check, said):
    """The grader's trainers were given one loader as both train_loader and val_loader, so a
    method reading the other one computed the right numbers. Now the loader a method must not
    read holds other images: its loss and accuracy are wrong (trainer_loss, trainer_accuracy,
    one saying which loader to read); its mode, steps, device placement and the regularized
    step are not charged."""
    assert TRAINER.count(old) == 1
    code = fnn.namespace(TRAINER.replace(old, new))
    results = fnn.grade(code, ["loops", "loops_evaluate", "regularized_step"])
    assert {n for n, r in results.items() if r.points < r.max_points} == BOTH
    assert said in results[check].message
    devices = fnn.grade(code, ["devices", "devices_evaluate"])
    assert all(r.status == "pass" for r in devices.values()), devices


def test_is_a_validation_loss_of_the_training_loader_told_so(fnn):
    """Blind 16, fnn s06: validate over self.train_loader lost trainer_loss (as it should) with
    the advice for a mean of batch means, which was not its mistake: say which loader to read."""
    code = TRAINER.replace("in self.val_loader:", "in self.train_loader:")
    result = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])["trainer_loss"]
    assert result.points == 0 and "self.val_loader" in result.message, result.message
    assert "batch means" not in result.message, result.message


CLASS_LIST = """
class DeepFNN(nn.Module):
    layers = nn.ModuleList()

    def __init__(self, input_size=784, hidden_sizes=(256, 256), output_size=10,
                 activation=nn.ReLU, batch_norm=False):
        super().__init__()
        widths = [input_size, *hidden_sizes]
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            self.layers.append(dense_layer(n_in, n_out, activation, batch_norm))
        self.layers.append(dense_layer(widths[-1], output_size))

    def forward(self, x):
        x = torch.flatten(x, start_dim=1)
        for layer in self.layers:
            x = layer(x)
        return x
"""


def test_is_a_module_list_kept_on_the_class_named(fnn):
    """DeepFNN with `layers = nn.ModuleList()` in its class body, appended to in __init__
    (blind 14, fnn m14): no parameter is registered and every instance adds to one list.
    deep_fnn_shapes is right to charge it, but said only "0 parameters": it names the class
    attribute now."""
    results = fnn.grade(fnn.namespace(CLASS_LIST), ["deep_fnn_structure"])
    assert results["deep_fnn_shapes"].points == 0
    assert "(DeepFNN.layers is a class attribute" in results["deep_fnn_shapes"].message


MOVED = re.compile(
    r"^( +)inputs, targets = inputs.to\(self.device\), targets.to\(self.device\)$", re.M
)
PINNED = """if torch.device(self.device).type != "cpu":  # pinned: an asynchronous copy
    inputs, targets = inputs.pin_memory(), targets.pin_memory()
    torch.cuda.synchronize()
inputs = inputs.to(self.device, non_blocking=True)
targets = targets.to(self.device, non_blocking=True)"""


def test_are_pinned_batches_guarded_by_not_cpu_right_on_the_meta_device(fnn):
    """Batches pinned where the device is not the CPU, then moved with non_blocking=True
    (blind 14b, fnn v12): right on Colab and on a CPU, but the devices probe's meta device took
    the GPU branch, where pin_memory raised "Found no NVIDIA driver": both devices checks lost.
    Pinning and synchronising are no-ops under the probe now."""
    pinned, count = MOVED.subn(lambda m: textwrap.indent(PINNED, m.group(1)), TRAINER)
    assert count == 2
    devices = fnn.grade(fnn.namespace(pinned), ["devices", "devices_evaluate"])
    assert all(r.status == "pass" for r in devices.values()), devices


def test_is_a_generator_on_the_trainer_s_device_right(fnn):
    """torch.Generator(device=self.device) in train_epoch (blind 15b, fnn v02): right on Colab
    and on a CPU, but the devices probe's meta device has no generator, and train_device was
    lost ("META device type not an accelerator"). A CPU generator stands in for it now."""
    old = "        self.model.train()\n"
    code = TRAINER.replace(
        old, old + "        torch.Generator(device=self.device).manual_seed(0)\n"
    )
    assert code != TRAINER
    devices = fnn.grade(fnn.namespace(code), ["devices"])
    assert devices["trainer_train_device"].status == "pass", devices


def test_is_a_validate_that_drops_the_short_last_batch_told_so(fnn):
    """validate re-batching its loader's data set with drop_last=True (blind 14b, fnn v09)
    loses trainer_accuracy rightly, but was told "not an average of per-batch accuracies": the
    mode pass's equal batches hid the dropped one. The accuracy pass's batches (8, 8, 5) are
    recorded now, and the message names the dropped batch."""
    old = "for inputs, targets in self.val_loader:"
    new = (
        "for inputs, targets in torch.utils.data.DataLoader(self.val_loader.dataset, "
        "batch_size=self.val_loader.batch_size, drop_last=True):"
    )
    assert TRAINER.count(old) == 1
    code = fnn.namespace(TRAINER.replace(old, new))
    results = fnn.grade(code, ["loops", "loops_evaluate", "regularized_step"])
    assert results["trainer_accuracy"].points == 0
    assert "2 of the 3 batches" in results["trainer_accuracy"].message


def test_does_a_train_network_that_never_ends_cost_trainer_accuracy_nothing(fnn):
    """Blind 15: a `while epoch < epochs` that never counts up. The probe is stopped in
    regularized_step's observer, whose whole run (train_epoch's accuracy with it) is lost:
    regularized_step says so, and trainer_accuracy judges train_epoch by the loops pass alone."""
    from grader.probe.context import ProbeContext

    session = fnn.session.only(["regularized_step", "trainer_accuracy"])
    seen = session.observe(ProbeContext(ns=fnn.namespace(TRAINER), manifest=fnn.manifest))
    seen["regularized_step"] = {"__error__": "stopped while checking: it ran longer than 60 s"}
    results = {r.name: r for r in session.judge(seen)}
    assert "60 s" in results["regularized_step"].message
    assert results["trainer_accuracy"].status == "pass", results["trainer_accuracy"].message


def test_is_a_trainer_that_trains_in_float64_right(fnn):
    """Blind 15: __init__ calls model.double() and every batch goes in as float64. Putting the
    weights back for train_network(1) made them float32 again (vector_to_parameters takes the
    vector's dtype): regularized_step failed on "mat1 and mat2 must have the same dtype"."""
    moved = "inputs, targets = inputs.to(self.device), targets.to(self.device)"
    assert TRAINER.count(moved) == 2 and TRAINER.count("self.model.to(device)") == 1
    code = TRAINER.replace("self.model.to(device)", "self.model.to(device).double()")
    code = code.replace(
        moved, moved.replace("inputs.to(self.device)", "inputs.to(self.device).double()")
    )
    results = fnn.grade(fnn.namespace(code), ["loops", "regularized_step"])
    assert {n: r.message for n, r in results.items() if r.status != "pass"} == {}
