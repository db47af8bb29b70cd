"""The grader's own models and batches for the loops and devices families, and for the own
checks of an assignment's training code: small seeded classifiers (with batch norm, with marks
that make a mode or gradient mistake change the predictions), a control model whose predictions
no mode changes, a model whose parameters have both signs (for penalties), a multilayer
perceptron and epoch functions (stand-ins for a student's), seeded loaders with a known number
of right labels, loaders that count their passes (`CountedLoader`) or script a model's test
accuracy epoch by epoch (`ScriptedTests`; both: `scripted_loaders`), a model whose predictions
the grader writes into the images (`Lookup`, for `confusion_probe` and `confusion_problem`),
what the observers read back from them, and the losses and trainer a probe hands the student's
code (`criterion`, `given_criterion`, `build_trainer`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

from grader.checks.common import STUDENT_EXITS, WrongValue, a_tensor, modules_of_type
from grader.checks.gpu import resident_outputs

HIDDEN = 16
MODE_CLASS, GRAD_CLASS = 0, 1  # predictions collapse here in training mode / with gradients


class Marks(nn.Module):
    """Pushes every score towards MODE_CLASS in training mode and towards GRAD_CLASS while
    gradients are recorded, so a mode mistake changes the predictions, not just their values."""

    def __init__(self, classes: int, *, mode: bool, grad: bool):
        super().__init__()
        self.mode, self.grad = mode, grad
        self.register_buffer("to_mode", F.one_hot(torch.tensor(MODE_CLASS), classes).float() * 1e3)
        self.register_buffer("to_grad", F.one_hot(torch.tensor(GRAD_CLASS), classes).float() * 1e3)

    def forward(self, x):
        if self.mode and self.training:
            x = x + self.to_mode
        if self.grad and torch.is_grad_enabled():
            x = x + self.to_grad
        return x


def marked(layers: list[nn.Module], classes: int) -> list[nn.Module]:
    """`layers` (ending in an nn.Linear to `classes` scores), then `Marks`: the marked classes
    pushed out of reach first, so that they are predicted only where a mark pushes them."""
    with torch.no_grad():  # never predicted unless a mark pushes them
        layers[-1].bias[[MODE_CLASS, GRAD_CLASS]] -= 50.0
    return [*layers, Marks(classes, mode=True, grad=True)]


def classifier(
    features: int,
    classes: int,
    seed: int,
    hidden: int = HIDDEN,
    *,
    batch_norm: bool = False,
    marks: bool = False,
) -> list[nn.Module]:
    """The layers of a small seeded classifier of (N, features) inputs: linear -> [batch norm]
    -> ReLU -> linear, [marks]."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(features, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, classes)]
    return marked(layers, classes) if marks else layers


def probe_model(
    manifest,
    seed: int,
    *,
    batch_norm: bool = False,
    marks: bool = False,
    loss: str = "",
) -> nn.Module:
    """A small seeded classifier for the data set's image shape: flatten, then `classifier`,
    [log-softmax for the NLL convention: `loss`, by default the manifest's]."""
    c, h, w = manifest.image_shape
    made = classifier(c * h * w, manifest.classes, seed, batch_norm=batch_norm, marks=marks)
    layers = [nn.Flatten(), *made]
    if (loss or manifest.loops.loss) == "log_probabilities":
        layers.append(nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


def signed_model(a: int, b: int, c: int, seed: int) -> nn.Module:
    """Linear(a, b) -> BatchNorm1d(b) -> Linear(b, c), every parameter (batch norm's too) drawn
    from a standard normal, so of both signs: what a penalty of absolute values or squares of
    the parameters is probed on."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.Linear(b, c))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model


def mlp(
    hidden_layers=2, width=256, activation="relu", dropout=0.0, input_size=784, classes=10
) -> nn.Module:
    """A multilayer perceptron: flatten, `hidden_layers` linear layers of `width` units, each
    followed by its `activation` ("sigmoid", "tanh" or "relu") and dropout p=`dropout`, then a
    linear layer to the class scores. The grader's stand-in for a student's MLP class of these
    arguments where other code of the student's is probed, so that an MLP mistake (one that
    cannot be trained, say) is charged to the MLP's own checks alone."""
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers, features = [nn.Flatten()], input_size
    for _ in range(hidden_layers):
        layers += [nn.Linear(features, width), act(), nn.Dropout(dropout)]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, classes))


def _batch(x: torch.Tensor, device) -> torch.Tensor:
    """A batch on `device`, float32 when floating: a student's transform that gives float64
    tensors (statistics kept in float64) is fed on as their own loops cast it, not charged here."""
    return x.to(device, torch.float32) if x.is_floating_point() else x.to(device)


# The grader's own epoch functions (the "epoch_functions" convention): stand-ins for a student's
# where other code of the student's that calls them is probed (a search), so that a loops
# mistake (a missing return, a value of a package the grading machine lacks) is charged to the
# loops checks alone. Extra arguments a student's own calls pass are ignored.
def train_epoch(model, loader, optimizer, device, *_, **__) -> float:
    """One pass of training; the mean cross-entropy per image."""
    model.to(device).train()
    total, count = 0.0, 0
    for x, y in loader:
        x, y = _batch(x, device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(y), count + len(y)
    return total / count


@torch.no_grad()
def evaluate(model, loader, device, *_, **__) -> float:
    """The accuracy over the whole loader, in evaluation mode."""
    model.to(device).eval()
    right, count = 0, 0
    for x, y in loader:
        right += (model(_batch(x, device)).argmax(1).cpu() == y).sum().item()
        count += len(y)
    return right / count


class FrozenNorm(nn.Module):
    """A batch norm that always normalises with its running statistics, whatever the mode."""

    def __init__(self, norm: nn.BatchNorm1d):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        n = self.norm
        return F.batch_norm(x, n.running_mean, n.running_var, n.weight, n.bias, False, 0.0, n.eps)


def control_model(model: nn.Sequential) -> nn.Module:
    """A copy of a marked batch-norm probe model whose predictions are the original's
    evaluation-mode, no-gradient predictions in every mode: no marks, the batch norm frozen."""
    layers = []
    for layer in copy.deepcopy(model):
        if isinstance(layer, Marks):
            continue
        layers.append(FrozenNorm(layer) if isinstance(layer, nn.BatchNorm1d) else layer)
    return nn.Sequential(*layers)


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x).argmax(1)
    model.train(was)
    return out


def loader(
    manifest,
    seed: int,
    sizes: tuple[int, ...],
    *,
    model: nn.Module | None = None,
    right: tuple[int, ...] = (),
    listed: bool = False,
) -> DataLoader | BatchList:
    """A `SeededOnCpu` DataLoader over seeded images in batches of `sizes` (all but the last equal),
    or with `listed` its batches in a `BatchList`.

    With `model` and `right`, the first `right[b]` labels of batch b are the model's own
    evaluation-mode predictions and the others wrong ones. Wrong and random labels are never
    MODE_CLASS or GRAD_CLASS; right ones are not either when the model is marked (`marks`).
    """
    g = torch.Generator().manual_seed(seed)
    classes = manifest.classes
    x = torch.randn(sum(sizes), *manifest.image_shape, generator=g)
    allowed = torch.tensor([k for k in range(classes) if k not in (MODE_CLASS, GRAD_CLASS)])
    y = allowed[torch.randint(0, len(allowed), (sum(sizes),), generator=g)]
    if model is not None:
        predicted = _predict(model, x)
        start = 0
        for size, count in zip(sizes, right, strict=True):
            for i in range(start, start + size):
                if i - start < count:
                    y[i] = predicted[i]
                elif y[i] == predicted[i]:  # make it wrong, still avoiding the marked classes
                    y[i] = allowed[(int((allowed == y[i]).nonzero()) + 1) % len(allowed)]
            start += size
    batches = SeededOnCpu(TensorDataset(x, y), batch_size=sizes[0], shuffle=False)
    return BatchList(batches) if listed else batches


class BatchList(list):
    """(images, labels) batches in a plain list, as a notebook may hand its evaluation function
    some (cifar_cnn_svm's part 2: `evaluate(model, [(X_test, y_test)], "cpu")`): no DataLoader's
    `dataset` or `batch_size` to divide by; reading one says so (blind round 19)."""

    def __init__(self, batches: DataLoader):
        super().__init__((images, labels) for images, labels in batches)
        self.loader = batches  # where they came from, for `other_images`

    def __getattr__(self, name: str):
        raise AttributeError(
            f"{name!r}: the notebook itself hands evaluate a plain list of (images, labels) "
            f"batches (held_out in part 2), which has no {name}: count the labels it scores"
        )


class SeededOnCpu(DataLoader):
    """A DataLoader whose iterator draws its seed on the CPU whatever the default device: code
    that makes its sums on the device it is given by making that the default (`with
    torch.device(device):` around the loop, `torch.set_default_device(device)`), right on a GPU,
    raised at the devices probe's meta device, ".item() cannot be called on meta tensors", in
    torch's own DataLoader before the first batch (blind round 15b)."""

    def __iter__(self):
        with torch.device("cpu"):
            return super().__iter__()


def bn_state(model: nn.Module) -> torch.Tensor:
    """Running mean and variance of the model's first batch norm, concatenated."""
    norm = modules_of_type(model, (nn.BatchNorm1d, nn.BatchNorm2d))[0]
    return torch.cat([norm.running_mean, norm.running_var]).detach().clone()


def flat_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def step_record(model: nn.Module, optimizer) -> Callable[[], dict]:
    """Hooks that count `optimizer`'s steps (gradients accumulated over batches take fewer) and
    note, per backward pass through `model`'s first parameter, whether its gradient was cleared
    (None or zeros) before the pass added to it: `cleared` tells a forgotten zero_grad() from
    gradients of another loss (blind round 17, mlp_tuning p26). The function reads both back."""
    first, steps, cleared = next(model.parameters()), [], []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    first.register_hook(lambda _: cleared.append(first.grad is None or not first.grad.any()))
    return lambda: {
        "steps": len(steps),
        "cleared": bool(cleared) and all(map(bool, cleared)),
        "backward": len(cleared),  # backward passes that reached the weights
    }


def scheduler_on(optimizer, *owners) -> str | None:
    """What attached a learning-rate scheduler to `optimizer`, even one that has not changed its
    rate yet (StepLR(step_size=5) after one epoch, blind round 19): one kept in an attribute of
    `owners` (ReduceLROnPlateau leaves no mark on the optimizer), or any other, which writes
    "initial_lr" into its parameter groups. None without one."""
    kinds = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for value in (v for owner in owners for v in getattr(owner, "__dict__", {}).values()):
        if isinstance(value, kinds) and getattr(value, "optimizer", None) is optimizer:
            return f"a {type(value).__name__} is kept on the optimizer it was given"
    if any("initial_lr" in group for group in optimizer.param_groups):
        return "a learning-rate scheduler is attached to the optimizer it was given"
    return None


def unmoved_advice(seen: dict, fn: str) -> str:
    """Why `fn`'s steps left the weights where they were, from `step_record`'s record. Steps
    taken but no backward pass through the weights: the loss had no graph (blind round 18:
    `@torch.no_grad()` on train_epoch, backward's error silenced by `loss.requires_grad_()`),
    which the advice about step() and zero_grad() did not name."""
    if seen.get("steps") and seen.get("backward") == 0:
        return (
            f"{fn} called optimizer.step() but no gradient ever reached the weights: compute "
            f"the loss with gradients on (no @torch.no_grad() on {fn}, no torch.no_grad() or "
            "torch.set_grad_enabled(False) around it, no .detach()) and call loss.backward() "
            "on it (loss.requires_grad_() only hides that the loss has no graph)"
        )
    return (
        f"{fn} did not change the weights: is optimizer.step() called, after "
        "loss.backward() and with no optimizer.zero_grad() between the two?"
    )


# An evaluate that switched gradients off for good (blind round 18, mlp_tuning): every later
# training in the notebook (train_and_validate's next epoch) then fails in backward().
GRAD_LEFT_OFF = (
    "left gradients switched off after it returned (torch.set_grad_enabled(False), never "
    "switched back on): code run after it, a training included, records no gradients unless it "
    "switches them on again (loss.backward() raises); evaluate inside `with torch.no_grad():`"
)


class Recorder(nn.Module):
    """Wraps a model and records the mode, gradient state, batch size and images (their sum,
    whatever their order in the batch) of every forward call."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.calls: list[dict] = []

    def forward(self, x):
        batch = int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() else None
        images = round(float(x.detach().double().sum()), 3) if batch else None
        self.calls.append(
            {"training": self.training, "grad": torch.is_grad_enabled(), "batch": batch}
            | {"images": images}
        )
        return self.inner(x)


class CountedLoader(DataLoader):
    """A DataLoader counting its passes (the epochs begun) and keeping `optimizer`'s learning
    rate at each; a pass counts at its first batch (tqdm.auto calls iter() on a loader twice).
    A pass without gradients is an evaluation (a fit evaluating on its training loader), counted
    in `evaluations`: not an epoch, so that a scheduler stepped once per epoch shows so."""

    passes, evaluations, optimizer, lrs = 0, 0, None, ()

    def __iter__(self):
        if not torch.is_grad_enabled():
            self.evaluations += 1
        else:
            self.passes += 1
            self.lrs = (*self.lrs, self.optimizer.param_groups[0]["lr"])
        yield from super().__iter__()


class ScriptedTests:
    """A test loader whose labels make the model's accuracy `right[e - 1] / n` after training
    epoch e (`train.passes`, a `CountedLoader`; 0 before any): before each pass it labels the
    first right[e - 1] images with the model's predictions, the others wrongly, and keeps the
    model's weights by the epochs trained, so a fit evaluating more often (before training, say)
    is judged alike. The model must predict alike in either mode (no dropout, no batch norm).
    `dataset` is labelled alike, for an evaluate re-batching `loader.dataset` (blind round 14b:
    its fit was told it never evaluated on test_loader)."""

    def __init__(self, model: nn.Module, images: torch.Tensor, right: list[int], train):
        self.model, self.images, self.right, self.train = model, images, right, train
        self.batch_size, self.snapshots = 8, {}

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self):
        yield from DataLoader(self.dataset, batch_size=self.batch_size)

    @property
    def dataset(self) -> TensorDataset:
        epoch = self.train.passes
        count = self.right[min(epoch, len(self.right)) - 1] if epoch else 0
        state = {n: t.detach().clone() for n, t in self.model.state_dict().items()}
        self.snapshots[epoch] = state
        with torch.no_grad():  # in the model's dtype: an evaluate may run it in float64
            dtype = next(self.model.parameters()).dtype
            predicted = self.model(self.images.to(dtype)).argmax(1)
        right = torch.arange(len(predicted)) < count
        return TensorDataset(self.images, torch.where(right, predicted, (predicted + 1) % 10))

    def unused(self) -> str | None:
        """Why a fit given this loader never evaluated on it (None when it did)."""
        if self.snapshots:
            return None
        instead = " but on the training loader" if self.train.evaluations else ""
        return (
            f"fit never evaluated the model on test_loader{instead}: after each epoch's "
            "train_epoch, call evaluate(model, test_loader, device) and keep the best epoch by it"
        )

    def kept(self) -> int:
        """The first epoch (1 on) at whose evaluation the model held the weights it holds now;
        0 for none. The best epoch when it is one of them: weights that training left unchanged
        (a mistake of the training code, charged there) cannot show which epoch fit kept."""
        final, snaps = self.model.state_dict(), self.snapshots.items()
        kept = [
            e for e, snap in snaps if e and all(torch.equal(final[n], t) for n, t in snap.items())
        ]
        best = self.right.index(max(self.right)) + 1
        return best if best in kept else kept[0] if kept else 0


def scripted_loaders(model: nn.Module, right: list[int], seed: int) -> tuple:
    """(train, tests) for a fit of `model` on (1, 28, 28) images: a `CountedLoader` of 24 seeded
    images with random labels in batches of 8, and `ScriptedTests` of 20 seeded images whose
    labels make `model`'s test accuracy `right[e - 1] / 20` after epoch e."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(24, 1, 28, 28, generator=g), torch.randint(0, 10, (24,), generator=g)
    train = CountedLoader(TensorDataset(x, y), batch_size=8)
    return train, ScriptedTests(model, torch.randn(20, 1, 28, 28, generator=g), right, train)


class Lookup(nn.Module):
    """Predicts the class written in each image's first pixel (in training mode the next
    class, so that a confusion matrix taken in training mode is another one)."""

    def forward(self, x):
        label = x[:, 0, 0, 0].round().long().clamp(0, 9)
        return F.one_hot((label + int(self.training)) % 10, 10).float() * 5


def confusion_probe(confusion, n: int, absent: int, seed: int) -> dict:
    """`confusion(model, loader, device)` with a `Lookup` model whose predictions on `n` images
    (batches of 16) the grader chose: whether the matrix is right (rows: true class), transposed,
    or that of the predictions in training mode. One class (`absent`) never occurs, neither as a
    label nor as a prediction: the matrix is (10, 10) all the same. The model computes as on a
    GPU (`Resident` outputs): predictions given to scikit-learn without `.cpu()` raise."""
    g = torch.Generator().manual_seed(seed)
    # Drawn from the nine other classes: 0..8, shifted past the absent one.
    predicted, truth = (torch.randint(0, 9, (n,), generator=g) for _ in range(2))
    predicted, truth = (t + (t >= absent).long() for t in (predicted, truth))
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, 0, 0] = predicted.float()
    expected = torch.bincount(truth * 10 + predicted, minlength=100).view(10, 10)
    in_training = torch.bincount(truth * 10 + (predicted + 1) % 10, minlength=100).view(10, 10)
    loader = DataLoader(TensorDataset(x, truth), batch_size=16)
    got = a_tensor(confusion(resident_outputs(Lookup()), loader, torch.device("cpu")), "the matrix")
    if got.shape != (10, 10):
        raise WrongValue(
            f"the matrix has shape {list(got.shape)}, not (10, 10), when class {absent} never "
            "occurs (give scikit-learn's confusion_matrix labels=list(range(10)))"
        )
    rows = expected.sum(1, keepdim=True).clamp(min=1)  # confusion_matrix(normalize="true")
    normalised = got.is_floating_point() and torch.allclose(
        got.double(), (expected / rows).double()
    )
    got = got.long()
    return {
        "right": bool(torch.equal(got, expected)),
        "transposed": bool(torch.equal(got, expected.T)),
        "training_mode": bool(torch.equal(got, in_training)),
        "normalised": bool(normalised),
    }


def confusion_problem(entry: dict) -> str | None:
    """What is wrong with the matrix a `confusion_probe` entry describes, if anything."""
    if entry["right"]:
        return None
    if entry.get("training_mode"):
        return "it counts the predictions the model makes in training mode: call model.eval()"
    if entry.get("normalised"):
        return (
            'it holds each row\'s fractions (normalize="true"), not the counts the docstring asks'
        )
    how = "it is transposed: " if entry["transposed"] else ""
    return (
        f"{how}entry [i, j] must count images of true class i predicted as j (rows sum to "
        "the number of images of each class)"
    )


# ---------------------------------------------------------------- the loss and the trainer


def criterion(manifest) -> nn.Module:
    return nn.CrossEntropyLoss() if manifest.loops.loss == "logits" else nn.NLLLoss()


# The loss `criterion_argument` passes to train, with a model returning logits: the default of
# neither convention (NLL of raw scores, or plain cross-entropy, is another number).
GIVEN_CRITERION = "nn.CrossEntropyLoss(label_smoothing=0.1)"


class GivenCriterion(nn.CrossEntropyLoss):
    """GIVEN_CRITERION, noting each call's (loss, batch size) in `calls`: a train whose mean
    loss is not the reference's either never called it or counted its values otherwise."""

    def __init__(self):
        super().__init__(label_smoothing=0.1)
        self.calls: list[tuple[float, int]] = []

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(input, target)
        self.calls.append((float(loss.detach()), len(target)))
        return loss


def given_criterion() -> nn.Module:
    return GivenCriterion()


def count_correct(outputs: torch.Tensor, targets: torch.Tensor) -> int:
    """The family's own count of right predictions (argmax over dim 1), handed to trainers that
    take one (`counter_keyword`)."""
    return int((outputs.argmax(dim=1) == targets).sum().item())


def other_images(data: DataLoader | BatchList) -> DataLoader:
    """What a trainer gets as the loader that the method under test must not read: one batch
    of the first images of `data`, one fewer than its batches hold, so a method that reads it
    (validate iterating self.train_loader) runs on batches of another size and computes other
    numbers."""
    data = data.loader if isinstance(data, BatchList) else data
    first = Subset(data.dataset, range(max(1, data.batch_size - 1)))
    return DataLoader(first, batch_size=len(first))


def other_accuracy(model: nn.Module, data: DataLoader | BatchList) -> float:
    """The accuracy on `other_images(data)`: what validate reading the wrong loader returns."""
    return evaluate(model, other_images(data), "cpu")


def other_loss(model: nn.Module, data: DataLoader, loss: nn.Module) -> float | None:
    """The mean `loss` on `other_images(data)` (one batch), in eval mode without gradients:
    the validation loss that validate reading the wrong loader returns (None where the model,
    changed by the student's code, cannot tell). Leaves the mode be."""
    was = model.training
    try:
        images, labels = next(iter(other_images(data)))
        with torch.no_grad():
            return float(loss(model.eval()(images), labels))
    except STUDENT_EXITS:  # noqa: BLE001 - only a message depends on it, not validate's verdict
        return None
    finally:
        model.train(was)


def build_trainer(
    ctx, class_name: str, model, data, optimizer, device, loss=None, reads="", **extra
):
    """The student's trainer class `class_name` on loader `data`, with `loss` or the family's
    criterion and counting function (`counter_keyword`), and `extra` keyword arguments (an
    assignment's own, such as a regularisation). `reads`: "train_loader" or "val_loader", the
    one the method under test reads, which is `data`, the other being `other_images(data)`;
    else `data` is both."""
    spec = ctx.manifest.loops
    counter = {spec.counter_keyword: count_correct} if spec.counter_keyword else {}
    loss = loss or criterion(ctx.manifest)
    other = other_images(data) if reads else data
    loaders = (other, data) if reads == "val_loader" else (data, other)
    return ctx.get(class_name)(model, *loaders, loss, optimizer, device, **counter, **extra)
