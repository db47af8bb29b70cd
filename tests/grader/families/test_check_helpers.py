"""Do the kit's and the helper modules' pieces that own checks share do what they say, in-process?

The own checks of fnn_mnist, mlp_tuning and cnn_techniques use them (their variants run them
end to end); here each is asked the one thing a check relies on: a draw uses the run's
generator in a fixed order, a stand-in global is put back, a failure is recorded but a stop is
not swallowed, a tripwire records and raises, a transform's outputs are stacked or refused,
dropout is told apart from its mistakes, a loader over the `Splits` stand-in is judged by what
it serves.
"""

from __future__ import annotations

import errno
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from grader.checks import kit
from grader.checks.common import (
    StopProbe,
    WrongValue,
    describe_error,
    diff_shapes,
    jsonable,
    saved_state,
)
from grader.checks.families import behaviour, images, studies
from grader.checks.families.linears import linear_calls
from grader.checks.families.placement import placement_error
from grader.probe.packages import Absent
from grader.spec import Verdict


def test_is_a_decimal_read_as_the_number_it_is():
    """Blind round 15b (mlp_tuning v06): evaluate returned Decimal(correct) / Decimal(count), a
    number the notebook prints and Optuna takes; jsonable made it '<Decimal>' (Decimal is not a
    numbers.Real) and evaluate_accuracy said it "returned '<Decimal>'"."""
    from decimal import Decimal

    assert jsonable(Decimal(10) / Decimal(21)) == 10 / 21
    assert jsonable([Decimal("0.5")]) == [0.5] and jsonable(Decimal("NaN")) == "nan"


def test_is_a_missing_package_s_value_reported_as_what_it_is():
    """Blind round 10: evaluate returned torchmetrics' stand-in (not installed on the grading
    machine), whose tolist() gives another stand-in: the report said '<too deep>'."""
    value = Absent("torchmetrics.Accuracy")().compute()
    assert jsonable(value) == jsonable([value])[0] == repr(value)
    assert "torchmetrics.Accuracy().compute" in repr(value)


def test_does_draws_use_the_generator_as_the_hand_written_dict_does():
    spec = {"width": (200, 400), "p": [0.2, 0.5], "batch": (4, 12)}
    rng, same = random.Random(3), random.Random(3)
    expected = {
        "seed": kit.seed(same),
        "width": same.randint(200, 400),
        "p": same.choice([0.2, 0.5]),
        "batch": same.randint(4, 12),
    }
    assert kit.draws(spec)(rng, None) == expected
    assert rng.random() == same.random()  # nothing more drawn


def test_does_replaced_put_back_or_remove_the_notebook_globals():
    namespace = {"test_set": "the real one"}
    with pytest.raises(ValueError), kit.replaced(namespace, {"test_set": 1, "extra": 2}):
        assert namespace == {"test_set": 1, "extra": 2}
        raise ValueError("the student's search failed")
    assert namespace == {"test_set": "the real one"}


def test_does_recorded_keep_the_error_but_let_a_stop_through():
    entry: dict = {}
    with kit.recorded(entry):
        raise KeyError("final_config.json lacks width")
    assert entry["error"].startswith("KeyError")
    with pytest.raises(StopProbe), kit.recorded({}):
        raise StopProbe


def test_is_a_student_s_exit_one_setting_s_failure():
    """sys.exit() or KeyboardInterrupt in a student's function fails the setting it ran in, as
    any exception does; the other settings are still observed, and the grader's stop is not
    caught (blind round 8: an exit ended the whole observer)."""

    def run(i, item):
        if item == "exit":
            raise SystemExit("diverged")
        if item == "interrupt":
            raise KeyboardInterrupt
        if item == "stop":  # the grader's own stop, raised from a hook
            raise StopProbe
        return {"value": item}

    entries = kit.per_setting(["exit", 3, "interrupt", 4], 0, run)
    assert [e.get("value") for e in entries] == [None, 3, None, 4]
    assert "SystemExit: diverged" in str(entries[0]), entries[0]
    entry: dict = {}
    with kit.recorded(entry):
        raise SystemExit(1)
    assert entry["error"].startswith("SystemExit")
    with pytest.raises(StopProbe):
        kit.per_setting(["stop"], 0, run)


def test_does_an_error_say_output_past_the_size_limit_came_from_printing():
    # A print in a student's endless loop fills the probe's output up to RLIMIT_FSIZE: Python
    # then raises OSError(EFBIG, "File too large"), which alone tells the student nothing.
    told = describe_error(OSError(errno.EFBIG, "File too large"))
    assert told.startswith("OSError") and "print in a loop" in told
    assert describe_error(OSError(errno.EIO, "disk")) == f"OSError: [Errno {errno.EIO}] disk"


def test_does_mean_of_weigh_its_judges_alike():
    def right(seen, want, ctx):
        return Verdict.ok("fine")

    def half(seen, want, ctx):
        return Verdict(0.5, "half wrong")

    assert kit.mean_of(right, half, ok="all right")(None, None, None) == Verdict(0.75, "half wrong")
    assert kit.mean_of(right, right, ok="all right")(None, None, None) == Verdict(1.0, "all right")


def test_does_a_tripwire_record_every_use_and_raise():
    touched: list[str] = []
    wire = studies.Tripwire("test_loader", touched)
    for use in (len, iter, lambda w: w[0], lambda w: w.dataset):
        with pytest.raises(studies.TestSplitTouched):
            use(wire)
    assert touched == [
        "len(test_loader)",
        "iteration over test_loader",
        "test_loader[...]",
        "test_loader.dataset",
    ]


def _studies(sizes: tuple[int, ...]) -> list:
    """In-memory optuna studies that ran `sizes` trials each, every value 0.5."""
    import optuna

    made = []
    for size in sizes:
        study = optuna.create_study(direction="maximize")
        study.optimize(lambda t: (t.report(0.5, 1), 0.5)[1], n_trials=size)
        made.append(study)
    return made


def test_does_the_best_trial_judge_want_the_last_stage_s_study():
    first, last = (studies.study_summary(s) for s in _studies((3, 1)))
    judge = studies.judge_best_trial("run_search", "curve[-1]")
    assert judge(last, last, None).fraction == 1.0
    verdict = judge(first, last, None)
    assert verdict.fraction == 0.0 and "ran 3 trials, but the last stage runs 1" in verdict.message


def test_does_a_returned_trial_summarise_to_nothing_the_judge_then_names():
    (study,) = _studies((1,))
    assert studies.study_summary(study.best_trial) == {}
    seen = {"returned": "FrozenTrial"}
    verdict = studies.judge_best_trial("run_search", "curve[-1]")(seen, seen, None)
    assert verdict.fraction == 0.0 and "returned a FrozenTrial" in verdict.message


def test_does_transformed_stack_outputs_and_refuse_what_is_no_tensor():
    pixels = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8)
    pictures = [images.ImageSet(pixels)[i][0] for i in range(2)]  # PIL images

    def to_tensor(picture):
        return torch.from_numpy(np.array(picture)).float().unsqueeze(0)

    outputs = images.transformed(to_tensor, pictures, [1, 2, 3])
    assert outputs.shape == (6, 1, 28, 28)
    assert torch.equal(outputs[0, 0], pixels[0].float())
    with pytest.raises(WrongValue, match="not a tensor"):
        images.transformed(lambda picture: picture, pictures, [1])


def test_does_dropout_problem_accept_inverted_dropout_only():
    torch.manual_seed(0)
    plain = torch.rand(64, 300) + 0.1
    keep = (torch.rand(64, 300) > 0.5).float()
    assert behaviour.dropout_problem(plain * keep * 2, plain, 0.5) is None
    assert "not scaled" in behaviour.dropout_problem(plain * keep, plain, 0.5)
    assert "no unit is dropped" in behaviour.dropout_problem(plain, plain, 0.5)
    # nn.Dropout(1 - p): p = 0 drops every unit, and the message says what p means.
    assert "probability of dropping" in behaviour.dropout_problem(plain, plain * 0, 0.5)


class _NoisyInTraining(torch.nn.Linear):
    def forward(self, x):
        return super().forward(x + 0.05 * torch.randn_like(x) if self.training else x)


def test_does_dropout_before_a_sigmoid_say_so():
    """Blind round 14b (mlp_tuning n15): dropout before the sigmoid zeroes pre-activations,
    which sigmoid turns into 0.5: the message said "no unit is dropped", which the student's
    code does; it says where the dropout is instead."""
    torch.manual_seed(0)
    pre = torch.randn(8, 300)
    keep = (torch.rand(8, 300) > 0.5).float()
    message = behaviour.dropout_problem(torch.sigmoid(pre * keep * 2), torch.sigmoid(pre), 0.5)
    assert "no unit is dropped" not in message and "after the activation" in message
    assert "no unit is dropped" in behaviour.dropout_problem(pre, pre, 0.5)


def test_is_noise_in_training_mode_not_called_dropout():
    """Blind 14 (cifar f6): input noise under `if self.training:` was told "it drops units at
    random (dropout)", which the network has none of; dropout itself is still named."""
    x = torch.randn(5, 6)
    torch.manual_seed(0)
    plain, noisy = torch.nn.Linear(6, 3), _NoisyInTraining(6, 3)
    want = behaviour.outputs(plain, x, 3)
    problem = behaviour.training_only_problem(behaviour.outputs(noisy, x, 3), want)
    assert "draws random numbers" in problem and "dropout" not in problem, problem
    dropped = behaviour.outputs(torch.nn.Sequential(plain, torch.nn.Dropout(0.5)), x, 3)
    assert "(dropout)" in behaviour.training_only_problem(dropped, want)


def test_is_a_random_flip_judged_by_what_it_does_not_how_it_draws():
    from torchvision import transforms as T

    from grader.checks.families.transforms import with_reference_flips

    picture = images.ImageSet(torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8))[0][0]
    reference = T.Compose([T.RandomHorizontalFlip(0.5), T.RandomRotation(10), T.ToTensor()])

    def made(flip):
        return T.Compose([flip, T.RandomRotation(10), T.ToTensor()])

    applied = with_reference_flips(made(T.RandomApply([T.RandomHorizontalFlip(1.0)])), picture, 3)
    seeds = list(range(8))
    assert torch.equal(
        images.transformed(applied, [picture], seeds),
        images.transformed(reference, [picture], seeds),
    )
    for other in (T.RandomHorizontalFlip(0.5), T.RandomVerticalFlip(0.5)):
        assert with_reference_flips(made(other), picture, 3) is None
    assert (
        with_reference_flips(made(T.RandomApply([T.RandomHorizontalFlip(1.0)], 0.2)), picture, 3)
        is None
    )


def test_does_the_watched_training_name_leaks_and_hide_no_objective():
    record, val_mean, both_mean = {"leaks": [], "finals": []}, torch.zeros(2, 2), torch.ones(2, 2)
    leaked = {"the validation split": val_mean, "both splits": both_mean}

    def train(config, train_set, val_set, stats, epochs, **kwargs):
        return "model", {"val_accuracy": [0.5, 0.6]}

    watched = studies.watched_training(train, record, leaked)
    _, curve = watched({}, None, None, (torch.rand(2, 2) + 2, None), 1)
    assert not record["leaks"] and curve["val_accuracy"] == [1.0, 0.5, 0.6]  # max() is 1.0 now
    watched({}, None, None, (val_mean, None), 1)
    watched(config={}, train_set=None, val_set=None, stats=[both_mean.double(), None], epochs=1)
    assert record["leaks"] == [f"standardised with the statistics of {what}" for what in leaked]
    # A trial that reported nothing to the pruner must return the last point of some curve.
    (study,) = _studies((1,))
    seen = studies.study_summary(study) | record
    seen["trials"][0]["last_report"] = None
    judge = studies.judge_best_trial("run_search", "curve[-1]")
    assert "no training run of the search ended on" in judge(seen, seen, None).message
    assert judge(seen | {"finals": [0.5]}, seen, None).fraction == 1.0
    # Blind 16 (mlp s08): the curve's best is the planted 1.0, which the message explains.
    seen["trials"][0] |= {"value": 1.0, "last_report": 0.6}
    assert (
        "1.0000 (the point the grader puts first in every curve" in judge(seen, seen, None).message
    )


@pytest.mark.parametrize(
    ("train_kwargs", "test_kwargs", "found"),
    [
        ({"shuffle": True, "drop_last": True}, {}, ""),
        ({}, {}, "the training loader is not shuffled anew every pass"),
        ({"shuffle": True}, {"shuffle": True}, "the test loader does not serve its 2500 items in"),
        ({"shuffle": True, "batch_size": 64}, {}, "the training loader gives batches of [52, 64]"),
        ({"shuffle": True}, {"batch_size": 16}, "the test loader gives batches of [4, 16]"),
        # Blind round 12: a test loader with drop_last=True was told to use shuffle=False.
        ({"shuffle": True}, {"drop_last": True}, "the test loader serves 2000 of its 2500 items"),
    ],
)
def test_does_splits_served_name_each_loader_mistake(train_kwargs, test_kwargs, found):
    """Loaders over the `Splits` stand-in, shuffled and in batches or not as the instructions
    say (the training loader: batches of 16, shuffled; the test loader: 1,000, in order)."""
    tags = [images.named_transform(t) for t in ("train", "test")]
    made = [
        DataLoader(images.Splits(images.ROOT, train, tag), **{"batch_size": batch, **kwargs})
        for train, tag, batch, kwargs in [
            (True, tags[0], 16, train_kwargs),
            (False, tags[1], 1000, test_kwargs),
        ]
    ]
    problems = images.splits_served(made[0], "training", "train", 16, shuffled=True)
    problems += images.splits_served(made[1], "test", "test", 1000, shuffled=False)
    assert [p[: len(found)] for p in problems] == ([found] if found else [])


def test_does_splits_served_name_the_wrong_split_or_transform():
    data = images.Splits(images.ROOT, False, images.named_transform("train"))
    (problem,) = images.splits_served(DataLoader(data), "test", "test", 1, shuffled=False)
    assert problem.startswith("the test loader's data set gives 'train of the test split'")


@pytest.mark.parametrize("root", [images.ROOT + "/", "./" + images.ROOT, "/content/data"])
def test_does_splits_served_name_a_root_not_the_one_given(root):
    """make_loaders that typed Colab's '/content/data' over the root it was given scored the
    check in full (blind round 8): the data set must be stored under the root given."""
    data = images.Splits(root, False, images.named_transform("test"))
    problems = images.splits_served(DataLoader(data, 1000), "test", "test", 1000, shuffled=False)
    wrong = ["the test loader's data set has the root '/content/data', not the root it was"]
    assert [p[: len(wrong[0])] for p in problems] == (wrong if "content" in root else [])


class _Wrapped(torch.utils.data.Dataset):
    """A student's own Dataset around torchvision's, forwarding its attributes."""

    def __init__(self, base, transform):
        self.base, self.transform = base, transform
        self.classes, self.data, self.targets = base.classes, base.data, base.targets

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return self.transform(self.base[i][0]), i


def test_is_a_loader_over_a_wrapper_or_a_subset_told_what_loader_dataset_must_be():
    """Blind round 13: make_loaders with a Dataset of its own around the given class (reading
    `.classes`, as torchvision's data sets have it) or a random_split of the training split was
    told "AttributeError: 'Splits' object has no attribute 'classes'"."""
    train = images.Splits(images.ROOT, True)
    assert len(train.classes) == 10 and train.data.shape == (2100, 28, 28)
    assert train.data.dtype == torch.uint8 and len(train.targets) == 2100
    wrapped = _Wrapped(train, images.named_transform("train"))
    (problem,) = images.splits_served(DataLoader(wrapped, 16), "training", "train", 16, True)
    assert problem.startswith("the training loader's `dataset` is of type _Wrapped, not the data")
    full = images.Splits(images.ROOT, True, images.named_transform("train"))
    part = torch.utils.data.random_split(full, [0.9, 0.1])[0]
    (problem,) = images.splits_served(DataLoader(part, 16), "training", "train", 16, True)
    assert "of type Subset" in problem and "only part of the split" in problem


def test_does_a_study_made_up_without_searching_earn_nothing():
    """Blind round 8: run_search that, seeing the grader, returned a study holding one trial
    added with a value (optuna.trial.create_trial) and trained nothing, passed both checks."""
    import optuna

    study = optuna.create_study(direction="maximize")
    choice = optuna.distributions.CategoricalDistribution([1])
    study.add_trial(
        optuna.trial.create_trial(params={"a": 1}, distributions={"a": choice}, value=0.91)
    )
    seen = studies.study_summary(study) | {"leaks": [], "finals": [], "touched": []}
    never_tests = studies.judge_never_tests("run_search")(seen, seen, None)
    assert never_tests.raised and "trained no model" in never_tests.message
    best_trial = studies.judge_best_trial("run_search", "curve[-1]")(seen, seen, None)
    assert best_trial.fraction == 0 and "no training run of the search ended on" in (
        best_trial.message
    )
    trained = seen | {"finals": [0.91]}
    assert studies.judge_never_tests("run_search")(trained, trained, None).fraction == 1


def test_is_a_saved_checkpoint_dict_described_as_one_not_as_unloadable(tmp_path):
    """NetworkUser.save wrote {"model_state_dict": ..., "model_class": "FNN"} (blind 12, fnn
    m01): the report said the file was "not loadable with weights_only=True" (an AttributeError
    of the description's own), which it is not; it names the keys instead."""
    path = tmp_path / "weights.pt"
    torch.save({"model_state_dict": torch.nn.Linear(2, 1).state_dict(), "model_class": "FNN"}, path)
    described = saved_state(path)
    assert "not loadable" not in described
    assert "'model_state_dict', 'model_class'" in described and "checkpoint" in described
    torch.save(torch.nn.Linear(2, 1).state_dict(), path)  # a state_dict: its shapes, sums
    assert [shape for shape, _ in saved_state(path)] == [[1], [1, 2]]


def test_is_a_search_validated_on_its_training_split_charged():
    """Blind round 14 (mlp_tuning s13): run_search called train_and_validate(config, train_set,
    train_set, ...): every trial's value was the training accuracy it had reported, and both
    search checks passed. The watched training function counts runs given one data set (or
    Subsets with the same indices) as both splits; best_trial is then wrong."""
    from torch.utils.data import Subset

    data = images.ImageSet(torch.zeros(6, 28, 28, dtype=torch.uint8))
    train_set, val_set = Subset(data, [0, 1, 2, 3]), Subset(data, [4, 5])
    record = {"leaks": [], "finals": []}

    def train(config, train_set, val_set, stats, epochs, **kwargs):
        return "model", {"val_accuracy": [0.5]}

    watched = studies.watched_training(train, record, {})
    watched({}, train_set, val_set, None, 1)
    watched({}, train_set, val_set=Subset(data, [4, 5]), stats=None, epochs=1)
    assert "self_validated" not in record
    watched({}, train_set, train_set, None, 1)
    watched({}, train_set=train_set, val_set=Subset(data, [0, 1, 2, 3]), stats=None, epochs=1)
    assert record["self_validated"] == 2
    (study,) = _studies((1,))
    seen = studies.study_summary(study) | record
    judge = studies.judge_best_trial("run_search", "curve[-1]")
    verdict = judge(seen, seen, None)
    assert verdict.fraction == 0 and "on images they were trained on" in verdict.message
    assert judge(seen | {"self_validated": 0}, seen, None).fraction == 1


def test_is_a_search_validated_on_a_part_of_its_training_split_charged():
    """Blind round 14b (mlp_tuning n07): run_search validated on Subset(train_set, range(n)),
    training images under another object, and search_best_trial passed. Nested Subsets are
    unwound to the images they hold (copies of the data set too); a validation split carved
    from the training split, disjoint from what is trained on, is not charged."""
    import copy

    from torch.utils.data import Subset

    data = images.ImageSet(torch.arange(8 * 4, dtype=torch.uint8).reshape(8, 2, 2))
    train_set, val_set = Subset(data, [0, 1, 2, 3, 4, 5]), Subset(data, [6, 7])
    record = {"leaks": [], "finals": []}
    watched = studies.watched_training(lambda *a, **k: None, record, {})
    fit, held = Subset(train_set, [0, 1, 2, 3]), Subset(data, [4, 5])  # carved: fine
    watched({}, fit, held, None, 1)
    watched({}, Subset(data, list(train_set.indices)), val_set, None, 1)  # a copy: fine
    assert "self_validated" not in record
    watched({}, train_set, Subset(train_set, range(2)), None, 1)
    watched({}, train_set, Subset(copy.deepcopy(data), [5, 6]), None, 1)
    watched({}, Subset(data, range(8)), val_set, None, 1)  # trained on validation images too
    assert record["self_validated"] == 3


class _Products(torch.nn.Module):
    """Four linear layers applied without nn.Linear's forward: x @ W.T + b, torch.addmm,
    F.linear without its bias (added after) and torch.einsum (its bias added in place), a tanh
    after each but the last."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.ParameterList(torch.nn.Parameter(torch.randn(4, 4)) for _ in range(2))
        self.b = torch.nn.Parameter(torch.randn(4))
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = torch.tanh(x @ self.w[0].T + self.b)
        h = torch.tanh(torch.addmm(self.b, h, self.w[1].t()))
        h = torch.nn.functional.linear(h, self.w[1]) + self.b  # the bias added after F.linear
        out = torch.einsum("ni,oi->no", torch.tanh(h), self.head.weight)
        out += self.head.bias
        return out


def test_are_linear_layers_written_as_products_seen_by_linear_calls():
    """Blind round 14b (mlp_tuning n03, n04): an MLP computing its layers as x @ W.T + b, or with
    torch.addmm and torch.einsum on nn.Linear's parameters, lost mlp_activation and
    mlp_dropout_modes ("0 nn.Linear layer calls in forward"). Products with a parameter count as
    layer calls, their outputs taken after the bias added to them."""
    model, x = _Products(), torch.randn(5, 4)
    calls = linear_calls(model, x, training=False, seed=0)
    assert len(calls) == 4
    assert torch.allclose(calls[0][1], x @ model.w[0].T + model.b)
    for before, after in zip(calls[:-1], calls[1:], strict=True):
        assert torch.allclose(after[0], torch.tanh(before[1]))
    assert torch.allclose(calls[3][1], model(x))


_SHIFT = torch.ones(4)  # a notebook-level constant: .to(device) never moves it
_SCALE = torch.tensor(1.0)  # 0-d: torch mixes a CPU scalar with a GPU tensor


class _Placed(torch.nn.Module):
    """A linear layer, then what `kind` of tensor its forward adds: one of the CPU's whatever the
    model's device (charged), one that follows it, or the notebook's global device (not)."""

    DEVICE = torch.device("cpu")  # the notebook's `device` on the grader (cuda on Colab)

    def __init__(self, kind: str):
        super().__init__()
        self.layer, self.kind = torch.nn.Linear(6, 4), kind
        if kind == "plain attribute":
            self.shift = torch.ones(4)
        elif kind == "list attribute":  # res_dense_nets t03: self.index = [torch.arange(c), ...]
            self.shifts = [torch.ones(4)]
        elif kind == "buffer":
            self.register_buffer("shift", torch.ones(4))

    def forward(self, x):
        x = x.to(self.DEVICE) if self.kind == "global device" else x
        h = self.layer(x)
        if self.kind in ("plain attribute", "buffer"):
            return h + self.shift
        if self.kind == "list attribute":
            return h + self.shifts[0]
        if self.kind.startswith("global"):
            return h + _SHIFT if self.kind == "global tensor" else h * _SCALE
        if self.kind in ("index_select", "conv1d", "x[index]", "slice copy"):  # made on the CPU
            index, kernel, out = torch.arange(4), torch.ones(1, 1, 1), h.new_zeros(3, 4)
            out[:, :] = torch.zeros(3, 4)  # a copy: CUDA takes a CPU source
            return {
                "index_select": lambda: h.index_select(1, index),  # meta checks no device
                "conv1d": lambda: torch.conv1d(h[:, None], kernel)[:, 0],  # nor here
                "x[index]": lambda: h[:, index] + out,  # CUDA takes CPU indices
            }.get(self.kind, lambda: h + out)()
        made = {"torch.zeros(n)": torch.zeros(4), "torch.rand(shape)": torch.rand(h.shape)}
        return h + made.get(self.kind, h.new_zeros(4))


@pytest.mark.parametrize(
    ("kind", "charged"),
    [
        ("torch.zeros(n)", True),
        ("torch.rand(shape)", True),
        ("plain attribute", True),
        ("list attribute", True),
        ("buffer", False),
        ("new_zeros", False),
        ("global device", False),
        ("global tensor", True),
        ("global scalar", False),
        ("index_select", True),
        ("conv1d", True),
        ("x[index]", False),
        ("slice copy", False),
    ],
)
def test_is_a_forward_that_would_fail_on_a_gpu_told_apart(kind, charged):
    """Blind round 14 (mlp_tuning s16): a forward making its dropout mask with torch.rand(shape)
    kept full marks, though it raises on Colab's GPU. Moved to the meta device, a model shows
    what stays on the CPU; a device the code names (the notebook's global) is not charged.
    Blind round 14b (res_dense_nets t01): a pooling kernel made above the class, a global
    tensor that stays on the CPU, kept full marks; the global is put back afterwards. So did
    index_select with a CPU index (t03): torch's meta kernels of some operations check no
    devices, CUDA's do (`placement._SameDevice`)."""
    seen = behaviour.outputs(_Placed(kind), torch.randn(3, 6), 1)
    want = behaviour.outputs(_Placed("buffer"), torch.randn(3, 6), 1)
    problem = behaviour.gradient_problem(seen, want)
    assert (problem is not None and "raises on a GPU" in problem) == charged, problem
    assert not charged or "device=x.device" in problem
    assert kind != "global tensor" or "above the class" in problem
    assert _SHIFT.device.type == "cpu" and _SCALE.device.type == "cpu"


def test_is_a_scalar_parameter_named_in_a_shape_difference():
    """Blind round 14b (res_dense_nets t02): a frozen nn.Parameter(torch.ones(())) in ResMLP was
    reported as "unexpected parameters of shape none", as if there were none."""
    said = diff_shapes([[10, 256]], [[10, 256], []])
    assert said == "unexpected parameters of shape () (a scalar)", said
    assert diff_shapes([[3], []], [[3]]) == "missing parameters of shape () (a scalar)"


class _Forward(torch.nn.Module):
    def __init__(self, step):
        super().__init__()
        self.fc, self.step = torch.nn.Linear(4, 4), step

    def forward(self, x):
        return self.step(self.fc(x))


ON_THE_CPU = {  # each fails on a GPU; on meta only the dispatch check raises for them
    "matmul": lambda h: h @ torch.ones(4, 1),
    "F.linear": lambda h: torch.nn.functional.linear(h, torch.eye(4)),
    "index_select": lambda h: h.index_select(1, torch.arange(4)),
}
ON_ANY_DEVICE = {  # each runs on a GPU as on the CPU
    "0-d constant": lambda h: torch.maximum(h, torch.tensor(0.0)),
    "CPU index": lambda h: h[:, torch.arange(4)],
    "new_ones": lambda h: h @ h.new_ones(4, 1),
    "as the input": lambda h: h @ torch.ones(4, 1, device=h.device, dtype=h.dtype),
}


@pytest.mark.parametrize("case", sorted(ON_THE_CPU) + sorted(ON_ANY_DEVICE))
def test_does_the_meta_probe_charge_a_cpu_tensor_in_a_matrix_product(case):
    """Blind round 14b: Dense summing exp(z) with `z.exp() @ torch.ones(10, 1)` (made on the CPU)
    kept dense_behaviour, though it fails on a GPU: the meta kernels of matrix products check no
    devices. A dispatch mode raises for them as CUDA does, not for 0-d constants or indices."""
    step = ON_THE_CPU.get(case) or ON_ANY_DEVICE[case]
    error = placement_error(_Forward(step), torch.randn(3, 4))
    assert (error is not None) == (case in ON_THE_CPU), error
