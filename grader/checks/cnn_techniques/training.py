"""`fit` (best epoch kept), the submitted learning curves, `BatchNormNet`'s modes, and
fine-tuning: `finetuning_setup` and the submitted fine-tuned weights against the MNIST ones."""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.checks import kit
from grader.checks.common import WrongValue, jsonable, modules_of_type
from grader.checks.families import accuracy
from grader.spec import Definitions, Verdict

OWN = Definitions()
CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
LAST_LAYER = "fc2."  # the layer fine-tuning trains (the notebook names it)
DRAW = kit.draws({"lr": [0.1, 0.5, 1.0]})  # the learning rate given to finetuning_setup


class ScriptedTests:
    """A test loader whose labels make the model's accuracy `right[k] / n` on pass k: before
    each pass it takes the model's predictions (evaluation mode, no gradients) and labels the
    first right[k] images with them, the others wrongly. It also keeps the model's weights at
    the start of each pass (the end of that epoch's training)."""

    def __init__(self, model: nn.Module, images: torch.Tensor, right: list[int]):
        self.model, self.images, self.right = model, images, right
        self.dataset = TensorDataset(images, torch.zeros(len(images), dtype=torch.int64))
        self.batch_size, self.snapshots = 8, []

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self):
        k = len(self.snapshots)
        self.snapshots.append({n: t.detach().clone() for n, t in self.model.state_dict().items()})
        was = self.model.training
        self.model.eval()
        with torch.no_grad():
            predicted = self.model(self.images).argmax(1)
        self.model.train(was)
        labels = predicted.clone()
        count = self.right[min(k, len(self.right) - 1)]
        labels[count:] = (predicted[count:] + 1) % 10
        self.dataset = TensorDataset(self.images, labels)
        for start in range(0, len(labels), self.batch_size):
            end = start + self.batch_size
            yield self.images[start:end], labels[start:end]


def _draw_fit(rng, manifest) -> dict:
    top, best = rng.randint(14, 18), rng.choice([1, 2])  # best epoch index 1 or 2 (of 0..3)
    right = [rng.randint(3, 8), rng.randint(9, 12), rng.randint(9, 12)]
    right[best] = top
    return {"seed": kit.seed(rng), "right": [*right, top]}  # a tie at the last epoch


@OWN.observer(draw=_draw_fit)
def fit_run(ctx) -> dict:
    """fit(...) of a small model of the grader's for 4 epochs, with test accuracies scripted by
    the test loader: best at epoch 2 or 3, tied at the last."""
    s, seed = ctx.settings, int(ctx.settings["seed"])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(24, 1, 28, 28, generator=g), torch.randint(0, 10, (24,), generator=g)
    train = DataLoader(TensorDataset(x, y), batch_size=8)
    tests = ScriptedTests(model, torch.randn(20, 1, 28, 28, generator=g), list(s["right"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def run() -> dict:
        epochs, cpu = len(s["right"]), torch.device("cpu")
        with contextlib.redirect_stdout(io.StringIO()):  # fit prints a line per epoch
            return {
                "returned": jsonable(ctx.get("fit")(model, optimizer, train, tests, epochs, cpu))
            }

    out = kit.once(ctx, run)
    final = model.state_dict()
    out["kept"] = next(
        (k + 1 for k, snap in enumerate(tests.snapshots)
         if all(torch.equal(final[n], t) for n, t in snap.items())),
        0,
    )  # fmt: skip
    return out


@OWN.check(observe=fit_run)
def fit_keeps_best_epoch(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "fit"):
        return problem
    if not isinstance(seen.get("returned"), dict):
        return Verdict.wrong(f"fit returned {seen.get('returned')!r}, not a dict")
    got = seen["returned"]
    # Judged on the student's own test curve, so that a mistake of evaluate is not charged here.
    curve = got.get("test_accuracy")
    numbers = isinstance(curve, list) and all(isinstance(a, float | int) for a in curve)
    if not numbers or len(curve) != 4:
        return Verdict.wrong(f"fit's test_accuracy is {curve!r}, not one number per epoch (4)")
    best = curve.index(max(curve)) + 1  # the earliest best epoch
    problems = []
    if short := [k for k in CURVES if not (isinstance(got.get(k), list) and len(got[k]) == 4)]:
        problems.append(f"{', '.join(short)} do not hold one value per epoch")
    if got.get("best_epoch") != best:
        problems.append(f"best_epoch is {got.get('best_epoch')!r}, expected {best}")
    if got.get("best_accuracy") != max(curve):
        problems.append(f"best_accuracy is {got.get('best_accuracy')!r}")
    if seen["kept"] != best:
        kept = f"those of epoch {seen['kept']}" if seen["kept"] else "none of an epoch's end"
        problems.append(f"the model's weights afterwards are {kept}")
    scripted = [round(a, 4) for a in curve]
    return Verdict.expect(
        not problems,
        "fit reports and keeps the best epoch",
        f"test accuracies {scripted} over 4 epochs: " + "; ".join(problems) + f" (the best "
        f"epoch is {best}: the highest test accuracy, the earliest on a tie; the model must "
        "hold that epoch's weights when fit returns)",
    )


@OWN.observer(reference=False)
def submitted_curves(ctx) -> dict:
    """The notebook's `histories` as the submission left it (read from histories.json)."""
    histories = ctx.ns.get("histories")
    return {"histories": jsonable(histories) if isinstance(histories, dict) else None}


def _curve_problem(run) -> str | None:
    """What is wrong with one run's entry of histories.json (the dict fit returned), if anything."""
    if not isinstance(run, dict):
        return "missing"
    lengths = {len(run[c]) if isinstance(run.get(c), list) else 0 for c in CURVES}
    if len(lengths) != 1 or 0 in lengths:
        return f"{', '.join(CURVES)} do not each hold one value per epoch"
    best, accuracies = run.get("best_epoch"), run["test_accuracy"]
    if not (isinstance(best, int) and 1 <= best <= len(accuracies)):
        return f"best_epoch {best!r} is not an epoch (1 to {len(accuracies)})"
    if run.get("best_accuracy") != max(accuracies) or accuracies[best - 1] != max(accuracies):
        return "best_epoch and best_accuracy are not the epoch with the highest test accuracy"
    return None


@OWN.check(observe=submitted_curves)
def curves_per_epoch(seen, want, ctx) -> Verdict:
    histories = seen["histories"]
    if histories is None:
        return Verdict.error(
            "no learning curves: hand in histories.json, which the notebook writes"
        )
    keys = [m.key for m in ctx.manifest.models]
    problems = [f"{k}: {p}" for k in keys if (p := _curve_problem(histories.get(k)))]
    return Verdict.expect(
        not problems,
        "histories.json holds every run's curves, one value per epoch, and its best epoch",
        "histories.json: " + "; ".join(problems),
    )


@OWN.observer(draw=DRAW)
def batchnorm_modes_seen(ctx) -> dict:
    """BatchNormNet's batch norm layers, and its outputs in training and evaluation mode with
    dropout switched off."""

    def run() -> dict:
        model = ctx.get("BatchNormNet")()
        x = torch.randn(8, 1, 28, 28) * 2 + 1
        model.train()
        for layer in modules_of_type(model, nn.Dropout):
            layer.eval()
        with torch.no_grad():
            trained = model(x)
            model.eval()
            evaluated = model(x)
        norms = len(modules_of_type(model, (nn.BatchNorm1d, nn.BatchNorm2d)))
        return {"norms": norms, "differ": not torch.allclose(trained, evaluated, atol=1e-4)}

    return kit.once(ctx, run)


@OWN.check(observe=batchnorm_modes_seen)
def batchnorm_modes(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "BatchNormNet"):
        return problem
    if not seen["norms"]:
        return Verdict.wrong("BatchNormNet has no nn.BatchNorm2d or nn.BatchNorm1d layer")
    return Verdict.expect(
        seen["differ"],
        f"BatchNormNet's {seen['norms']} batch norms normalise differently in train and eval mode",
        "BatchNormNet gives the same outputs in training and evaluation mode (dropout off): its "
        "batch norm layers are not applied in forward",
    )


@OWN.observer(draw=DRAW)
def finetuning(ctx) -> dict:
    """finetuning_setup(state, lr) with the state of a Net of the student's whose weights the
    grader drew: which parameters train, which the optimiser holds, whether the model holds
    the state."""

    def run() -> dict:
        state = {k: v + torch.randn_like(v) if v.is_floating_point() else v
                 for k, v in ctx.get("Net")().state_dict().items()}  # fmt: skip
        pair = ctx.get("finetuning_setup")(state, float(ctx.settings["lr"]))
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise WrongValue(f"it returned a {type(pair).__name__}, not (model, optimizer)")
        model, optimizer = pair
        names = {id(p): n for n, p in model.named_parameters()}
        held = [names.get(id(p), "a tensor not of the model") for g in optimizer.param_groups
                for p in g["params"]]  # fmt: skip
        own = model.state_dict()
        return {
            "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
            "held": sorted(held),
            "holds_state": own.keys() == state.keys()
            and all(torch.equal(own[k], v) for k, v in state.items()),
        }

    return kit.once(ctx, run)


@OWN.check(observe=finetuning)
def finetune_frozen(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "finetuning_setup"):
        return problem
    if not seen["holds_state"]:
        return Verdict.wrong("the model finetuning_setup returns does not hold the MNIST state")
    return Verdict.expect(
        seen["trainable"] == want["trainable"],
        "every parameter but the last layer's is frozen",
        f"trainable parameters: {seen['trainable']}, expected only {want['trainable']} "
        "(requires_grad = False for every other parameter)",
    )


@OWN.check(observe=finetuning)
def finetune_optimizer(seen, want, ctx) -> Verdict:
    if problem := kit.failed(seen, "finetuning_setup"):
        return problem
    return Verdict.expect(
        seen["held"] == want["held"],
        "the optimiser holds only the last layer's parameters",
        f"the optimiser holds {seen['held']}, expected exactly {want['held']}",
    )


@OWN.observer(reference=False)
def finetuned_files(ctx) -> dict:
    """Which tensors of the submitted fine-tuned weights differ from the submitted MNIST ones."""

    def run() -> dict:
        states = {}
        for key in ("mnist", "finetuned"):
            spec = ctx.manifest.model(key)
            if problem := ctx.weights_problems.get(spec.weights):
                raise WrongValue(problem)
            states[key] = accuracy.submitted_state(ctx, spec)
        mnist, tuned = states["mnist"], states["finetuned"]
        if mnist.keys() != tuned.keys():
            raise WrongValue("the two files hold differently named tensors")
        return {"changed": sorted(k for k in mnist if not torch.equal(mnist[k], tuned[k]))}

    return kit.once(ctx, run)


@OWN.check(observe=finetuned_files)
def finetune_from_mnist(seen, want, ctx) -> Verdict:
    files = f"{ctx.manifest.model('finetuned').weights} and {ctx.manifest.model('mnist').weights}"
    if "error" in seen or "wrong" in seen:
        return Verdict.wrong(f"{files}: {seen.get('wrong') or seen.get('error')}")
    changed = seen["changed"]
    frozen_changed = [k for k in changed if not k.startswith(LAST_LAYER)]
    return Verdict.expect(
        changed and not frozen_changed,
        f"{files} differ in the last layer only",
        f"{files} differ in {frozen_changed or 'nothing'}: the fine-tuned network must start "
        "from the MNIST weights and train only fc2",
    )
