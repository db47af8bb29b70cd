"""Does the accuracy family feed the test images in a model's `input_shape`, prepared by the
transform of the notebook's own test loader (`test_transform`), and by the manifest's statistics
(saying so) when the notebook has none? On the toy, with a submitted model added: a linear layer
784 -> 10, which takes only vectors. And does a CNN get its own scores whether or not its forward
takes the channels-last layout that the family tries first?"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from grader.checks.families import accuracy
from grader.probe.context import ProbeContext
from tests.fixtures import toy

MODEL = """[[models]]
key = "linear"
class_name = "Linear"
args = [784, 10]
weights = "linear.pt"
max_weights_mb = 1
input_shape = [784]
test_transform = "test_loader"
threshold_margin = 0.03

"""
CHECK = """
[checks.test_accuracy]
linear_accuracy = { points = 1, source = "accuracy.linear" }
"""
OWN = (0.13, 0.25)  # the statistics of the notebook's own transform (a stand-in's std)


class Unlabelled(Dataset):  # what the notebook's test set is to the grader: a transform
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(*OWN)])


class Lying(torch.Tensor):  # a student's tensor subclass: len() of a batch is not its size
    def __len__(self):
        return 784


class LyingUnlabelled(Dataset):  # its values are right: measured by them (blind round 8)
    transform = transforms.Compose([Unlabelled.transform, lambda x: x.as_subclass(Lying)])


class Float64Unlabelled(Dataset):  # float64 statistics kept: the student's evaluate cast them
    transform = transforms.Compose([Unlabelled.transform, lambda x: x.double()])  # (round 13)


@pytest.mark.parametrize("own_loader", [Unlabelled, LyingUnlabelled, Float64Unlabelled, None])
def test_are_test_images_shaped_and_prepared_as_the_notebook_prepares_them(tmp_path, own_loader):
    text = toy.MANIFEST.read_text()
    text = text.replace("[loops]", MODEL + "[loops]", 1) + CHECK
    (tmp_path / toy.MANIFEST.name).write_text(text)
    manifest = toy.manifest(tmp_path)
    model = nn.Linear(784, 10)
    torch.save(model.state_dict(), tmp_path / "linear.pt")
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    torch.save(images, tmp_path / "test_images.pt")
    ns = {"Linear": nn.Linear}
    if own_loader:
        ns["test_loader"] = DataLoader(own_loader())
    ctx = ProbeContext(
        ns=ns, manifest=manifest, weights_dir=tmp_path, test_images=tmp_path / "test_images.pt"
    )
    seen = accuracy.observe(ctx)["linear"]
    mean, std = OWN if own_loader else (manifest.mean[0], manifest.std[0])
    if own_loader:
        assert seen["prepared"].startswith("test_loader's own transform (")
        assert "(ToTensor(), Normalize(mean=0.13, std=0.25)" in seen["prepared"]  # its steps
    else:
        assert seen["prepared"].startswith(f"the manifest's mean {list(manifest.mean)}")
        assert "test_loader is not defined" in seen["prepared"]
    with torch.no_grad():
        want = model((images.float().flatten(1) / 255 - mean) / std)
    torch.testing.assert_close(seen["logits_tensor"], want, rtol=1e-4, atol=1e-4)


class ConvNet(nn.Module):
    """A small CNN whose forward flattens with `flatten` or, as many students write, `.view`
    (which raises on the channels-last feature maps that `scores` tries first)."""

    def __init__(self, view: bool):
        super().__init__()
        self.view = view
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))  # (N, 4, 26, 26)
        return self.fc(x.view(-1, 4 * 26 * 26) if self.view else torch.flatten(x, 1))


@pytest.mark.parametrize("view", [False, True])
def test_are_a_cnn_s_scores_its_own_whatever_layout_it_accepts(view):
    torch.manual_seed(0)
    model, batches = ConvNet(view), [torch.randn(5, 1, 28, 28), torch.randn(3, 1, 28, 28)]
    with torch.no_grad():
        want = torch.cat([model(x) for x in batches])
    torch.testing.assert_close(accuracy.scores(model, batches), want, rtol=1e-4, atol=1e-4)


def _with_norm(i: int, o: int) -> nn.Module:
    """The submitted class of the toy's linear model, with a batch norm (running statistics and
    num_batches_tracked) to load too."""
    return nn.Sequential(nn.Linear(i, o), nn.BatchNorm1d(o))


def _no_counter(state: dict) -> dict:
    for key in [k for k in state if k.endswith("num_batches_tracked")]:
        del state[key]  # kept: the state dict's _metadata, which makes strict loading ask for it
    return state


SAVED = {  # how honest students save the same trained weights
    "as is": lambda s: s,
    "nn.DataParallel": lambda s: {f"module.{k}": v for k, v in s.items()},
    "torch.compile": lambda s: {f"_orig_mod.{k}": v for k, v in s.items()},
    "torch.compile of nn.DataParallel": lambda s: {
        f"_orig_mod.module.{k}": v for k, v in s.items()
    },
    "half precision": lambda s: {k: v.half() if v.is_floating_point() else v for k, v in s.items()},
    "float64": lambda s: {k: v.double() if v.is_floating_point() else v for k, v in s.items()},
    "no num_batches_tracked": _no_counter,
    "an extra tensor": lambda s: {**s, "head.weight": torch.zeros(2, 2)},
    "a checkpoint": lambda s: {"epoch": 3, "model_state_dict": s, "optimizer_state_dict": {}},
}


@pytest.mark.parametrize("how", SAVED)
def test_are_weights_saved_another_honest_way_measured_alike(tmp_path, how):
    text = toy.MANIFEST.read_text().replace("[loops]", MODEL + "[loops]", 1) + CHECK
    (tmp_path / toy.MANIFEST.name).write_text(text.replace('test_transform = "test_loader"\n', ""))
    torch.manual_seed(0)
    model = _with_norm(784, 10)
    model.train()(torch.randn(16, 784))  # running statistics of its own
    torch.save(SAVED[how](model.state_dict()), tmp_path / "linear.pt")
    torch.save(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8), tmp_path / "images.pt")
    ctx = ProbeContext(
        ns={"Linear": _with_norm},
        manifest=toy.manifest(tmp_path),
        weights_dir=tmp_path,
        test_images=tmp_path / "images.pt",
    )
    seen = accuracy.observe(ctx)["linear"]
    assert "error" not in seen, seen
    with torch.no_grad():
        want = model.eval()(torch.cat(list(ctx.test_batches(100))).flatten(1))
    precision = 1e-2 if how == "half precision" else 1e-4
    torch.testing.assert_close(seen["logits_tensor"], want, rtol=precision, atol=precision)
    assert ("loaded" in seen) == (how not in ("as is", "half precision", "float64"))
    # Blind round 12: accepted, and said so, but not what the notebook asks for next time.
    wrapped = how in ("nn.DataParallel", "torch.compile", "a checkpoint")
    wrapped = wrapped or how == "torch.compile of nn.DataParallel"  # blind round 19
    assert wrapped == ("next time save" in seen.get("loaded", "")), seen.get("loaded")


def _saved(tmp_path, saved) -> ProbeContext:
    """The toy's linear model handed in as `saved` (torch.save'd), two test images."""
    (tmp_path / toy.MANIFEST.name).write_text(
        toy.MANIFEST.read_text().replace("[loops]", MODEL + "[loops]", 1) + CHECK
    )
    torch.save(saved, tmp_path / "linear.pt")
    torch.save(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), tmp_path / "images.pt")
    return ProbeContext(
        ns={"Linear": _with_norm},
        manifest=toy.manifest(tmp_path),
        weights_dir=tmp_path,
        test_images=tmp_path / "images.pt",
    )


def test_does_a_whole_pickled_model_say_to_save_its_state_dict(tmp_path):
    error = accuracy.observe(_saved(tmp_path, _with_norm(784, 10)))["linear"]["error"]
    assert 'torch.save(model.state_dict(), "linear.pt")' in error


class _Holder(nn.Module):
    """A student's model whose layers live in an attribute called `module`, like the wrapper's."""

    def __init__(self, i: int, o: int):
        super().__init__()
        self.module = _with_norm(i, o)

    def forward(self, x):
        return self.module(x)


def test_are_keys_of_a_model_s_own_module_attribute_kept(tmp_path):
    """Blind 19's open item: "module." was stripped from every key starting with it, so a model
    keeping its layers in `self.module` could not load its own state dict."""
    torch.manual_seed(0)
    model = _Holder(784, 10).eval()
    ctx = _saved(tmp_path, model.state_dict())
    ctx.ns["Linear"] = _Holder
    seen = accuracy.observe(ctx)["linear"]
    assert "error" not in seen and "prefix" not in seen.get("loaded", ""), seen


def test_do_weights_of_another_width_say_which_tensor_differs(tmp_path):
    ctx = _saved(tmp_path, _with_norm(784, 12).state_dict())  # the toy asks for 10
    error = accuracy.observe(ctx)["linear"]["error"]
    # Blind round 12's open item: not load_state_dict's raw "size mismatch for ..." text.
    assert "the file does not fit Linear(784, 10): 0.weight is (12, 784) in the file" in error
    assert "(10, 784) in the model" in error and "size mismatch" not in error
    # A lazy layer (nn.LazyLinear) takes its shape from the file: nothing to misfit.
    ctx = _saved(tmp_path, nn.Sequential(nn.Linear(784, 10)).state_dict())
    ctx.ns["Linear"] = lambda i, o: nn.Sequential(nn.LazyLinear(o))
    assert "error" not in accuracy.observe(ctx)["linear"]


def test_are_two_weights_files_named_crosswise_told_so(tmp_path):
    """Blind round 19 (cifar_cnn_svm): dense.pt holding the CNN's weights was told only which
    tensor does not fit; a file shaped as another model's of the manifest says so."""
    ctx = _saved(tmp_path, _with_norm(784, 12).state_dict())
    other = MODEL.replace('"linear', '"wide').replace("784, 10", "784, 12")
    text = toy.MANIFEST.read_text().replace("[loops]", MODEL + other + "[loops]", 1) + CHECK
    (tmp_path / toy.MANIFEST.name).write_text(text)
    ctx = ProbeContext(
        ns=ctx.ns,
        manifest=toy.manifest(tmp_path),
        weights_dir=tmp_path,
        test_images=ctx.test_images,
    )
    error = accuracy.observe(ctx)["linear"]["error"]
    assert "shaped as Linear(784, 12)'s, whose file is wide.pt: the two files' names swapped?" in (
        error
    )


def test_are_the_steps_of_a_transform_without_normalize_named():
    """Blind 15: a later experiment cell rebinds test_loader to loaders without Normalize; the
    weights, trained on standardised images, fail on the raw ones. The report said only "test
    images prepared with test_loader's own transform": it names the steps, Normalize missing."""

    def flatten(image):
        return torch.flatten(image)

    steps = accuracy.transform_steps(transforms.Compose([transforms.ToTensor(), flatten]))
    assert steps == "ToTensor(), flatten"
    assert accuracy.transform_steps(Unlabelled.transform).startswith("ToTensor(), Normalize(")


def test_are_a_student_classes_sequentials_and_random_choices_named_as_they_run():
    """Blind 15b (cifar): a test transform with a class of the student's own showed as
    `<__main__.Standardise object at 0x7f...>` (an address, other every run), an nn.Sequential of
    v2 steps as its multi-line repr, and RandomChoice's options as if each ran."""

    class Standardise:
        def __call__(self, image):
            return image

    def flatten(image):
        return torch.flatten(image)

    sequential = nn.Sequential(transforms.Normalize((0.5,), (0.5,)), nn.Flatten(0))
    steps = accuracy.transform_steps(
        transforms.Compose([transforms.ToTensor(), Standardise(), sequential])
    )
    assert steps.startswith("ToTensor(), Standardise, Normalize(mean=(0.5,), std=(0.5,)), Flatten(")
    choice = transforms.RandomChoice([transforms.RandomHorizontalFlip(), transforms.Grayscale()])
    assert accuracy.transform_steps(transforms.Compose([choice])).startswith("RandomChoice(")
    assert accuracy.transform_steps(transforms.Lambda(flatten)) == "Lambda(flatten)"


def test_is_a_transform_class_of_the_student_s_named_without_its_address():
    """Blind 15b (fnn v09): a class with __call__ in the test transform was named
    "<__main__._Standard object at 0x7f...>", an address that changes with every run."""

    class Standard:
        def __init__(self, *steps):
            self.transforms = steps  # a tuple: opened as a Compose's list is

        def __call__(self, x):
            return x

    class Scale:
        def __call__(self, x):
            return x / 255

    own = transforms.Compose([transforms.ToTensor(), Standard(Scale(), transforms.Lambda(abs))])
    assert accuracy.transform_steps(own) == "ToTensor(), Scale, Lambda(abs)"


class _DropoutAlwaysOn(nn.Module):  # F.dropout(training=True): random in evaluation mode too
    def __init__(self, i, o):
        super().__init__()
        self.fc = nn.Linear(i, o)

    def forward(self, x):
        return self.fc(nn.functional.dropout(x, 0.5, training=True))


def test_does_a_model_that_draws_in_evaluation_mode_score_the_same_at_a_regrade(tmp_path):
    """Round 16's variant batches: dropout_always_on's accuracy moved between two gradings of
    the same files (0.093 and 0.110): near a threshold a regrade could have changed its points."""
    ctx = _saved(tmp_path, _DropoutAlwaysOn(784, 10).state_dict())
    torch.save(torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8), tmp_path / "images.pt")
    ctx.ns["Linear"] = _DropoutAlwaysOn
    first = accuracy.observe(ctx)["linear"]["logits_tensor"]
    torch.manual_seed(1234)  # whatever an earlier observer left the generator at
    assert torch.equal(accuracy.observe(ctx)["linear"]["logits_tensor"], first)


def test_does_a_model_with_dropout_left_on_score_the_same_whatever_the_split_s_order():
    """Blind 16, res_dense_nets: F.dropout always on scored 0.8978, then 0.8976 at a regrade;
    the seeded masks fell on other images since the test split is shuffled afresh per run."""
    from grader.checks.families.accuracy import scores

    class AlwaysDrops(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.dropout(x.flatten(1), p=0.5)

    images = torch.randn(40, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    order = torch.randperm(40, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = scores(AlwaysDrops(), list(images.split(16)))
    torch.manual_seed(0)
    shuffled = scores(AlwaysDrops(), list(images[order].split(16)))
    assert torch.equal(shuffled, plain[order])


def test_is_a_torchscript_weights_file_told_to_save_the_state_dict(tmp_path):
    """Blind round 17 (mlp_tuning p19): mlp_final.pt written by torch.jit.save was refused (as
    the notebook's own torch.load refuses it), but the message was torch's: "Re-running
    `torch.load` with `weights_only` set to `False` will likely succeed", advice to the grader,
    not to the student. It now says what the file is and what to save instead."""
    traced = torch.jit.trace(nn.Linear(4, 2), torch.zeros(1, 4))
    torch.jit.save(traced, tmp_path / "linear.pt")
    ctx = SimpleNamespace(weights_dir=tmp_path)
    with pytest.raises(TypeError) as raised:
        accuracy.submitted_state(ctx, SimpleNamespace(weights="linear.pt"))
    message = str(raised.value)
    assert "TorchScript" in message and "torch.save(model.state_dict()" in message, message
    assert "weights_only" not in message


def test_is_a_checkpoint_with_a_numpy_number_told_so_not_a_whole_model(tmp_path):
    """Blind round 19 (res s31): densenet.pt was a checkpoint {"model_state_dict", "epoch",
    "best_acc": np.max(...)}; weights_only loading refuses the numpy scalar (as the notebook's
    own torch.load does), but the message guessed "a whole model, saved with torch.save(model)".
    It now names the numpy value; a pickled model still names its class."""
    import numpy as np

    state = nn.Linear(4, 2).state_dict()
    ctx, spec = SimpleNamespace(weights_dir=tmp_path), SimpleNamespace(weights="linear.pt")
    torch.save({"model_state_dict": state, "best_acc": np.max([0.8, 0.9])}, tmp_path / "linear.pt")
    with pytest.raises(TypeError) as raised:
        accuracy.submitted_state(ctx, spec)
    told = str(raised.value)
    assert "numpy value" in told and "float(" in told and "whole model" not in told, told
    torch.save(_with_norm(4, 2), tmp_path / "linear.pt")
    with pytest.raises(TypeError) as raised:
        accuracy.submitted_state(ctx, spec)
    assert "whole model" in str(raised.value) and "Sequential" in str(raised.value), raised.value


def test_do_weights_without_batch_norm_statistics_say_so(tmp_path):
    """Blind round 19 (res s32): densenet.pt saved as dict(model.named_parameters()) lacks the
    batch norms' running statistics; refused (right), but with load_state_dict's raw "Missing
    key(s) in state_dict: ..." cut off mid-list. It now says which tensors and why."""
    model = _with_norm(784, 10)
    ctx = _saved(tmp_path, dict(model.named_parameters()))
    error = accuracy.observe(ctx)["linear"]["error"]
    assert "lacks 2 of the model's 7 tensors (1.running_mean, 1.running_var)" in error, error
    assert "named_parameters()" in error and "Missing key" not in error, error
    renamed = {f"net.{k}": v for k, v in model.state_dict().items()}  # another layout's names
    error = accuracy.observe(_saved(tmp_path, renamed))["linear"]["error"]
    assert "lacks 6 of the model's 7 tensors" in error and "holds 7 it does not have" in error
