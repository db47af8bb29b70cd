"""Reference answers to the student part of `mlp_tuning`: one notebook cell per `# %% cell:`
marker, as `solutions/notebook_builder.py` says; the imports above the first marker are the
set-up cell's.
"""

import math
import time

import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, random_split
from torchvision import transforms

# %% cell: split


def split_train_validation(dataset, validation_size=5000, seed=0):
    """Split `dataset` at random into (train_subset, val_subset) of len - validation_size and
    validation_size items, with `torch.utils.data.random_split` and a `torch.Generator` seeded
    with `seed`: the same seed always gives the same split (the grader relies on it)."""
    ### BEGIN SOLUTION
    sizes = [len(dataset) - validation_size, validation_size]
    train_subset, val_subset = random_split(
        dataset, sizes, generator=torch.Generator().manual_seed(seed)
    )
    return train_subset, val_subset
    ### END SOLUTION


# %% cell: statistics


def standardisation_images(subset):
    """Per-pixel mean and standard deviation images of the images in `subset`, on the 0..1 scale.

    `subset` is a `torch.utils.data.Subset` of a Fashion-MNIST dataset: `subset.dataset.data`
    holds every image of the underlying dataset as uint8 (N, 28, 28) and `subset.indices` says
    which of them belong to the subset. Returns two float32 (28, 28) tensors:
    mean = (1/n) sum_i x_i and std = sqrt((1/n) sum_i (x_i - mean)^2) + 1e-5 over the subset's
    n images only.
    """
    ### BEGIN SOLUTION
    images = subset.dataset.data[torch.as_tensor(subset.indices)].float() / 255  # (n, 28, 28)
    mean_image = images.mean(dim=0)
    std_image = images.std(dim=0, correction=0) + 1e-5  # population std: divide by n
    return mean_image, std_image
    ### END SOLUTION


# %% cell: transforms


class Standardise:
    """Transform a (1, 28, 28) image tensor x into (x - mean_image) / std_image, pixel by pixel."""

    def __init__(self, mean_image, std_image):
        ### BEGIN SOLUTION
        self.mean_image = mean_image
        self.std_image = std_image
        ### END SOLUTION

    def __call__(self, x):
        ### BEGIN SOLUTION
        return (x - self.mean_image) / self.std_image  # (28, 28) broadcasts over the channel
        ### END SOLUTION


def make_transforms(
    mean_image, std_image, normalise=True, flip=False, rotation=False, resized_crop=False
):
    """(train_transform, eval_transform): each maps a PIL image to a (1, 28, 28) float tensor.

    The training transform applies the augmentations that are switched on, in this order:
    RandomHorizontalFlip(p=0.5) when `flip`, RandomRotation(degrees=10) when `rotation`,
    RandomResizedCrop(28, scale=(0.7, 1.0), antialias=True) when `resized_crop`; then ToTensor,
    then Standardise when `normalise`. The evaluation transform is ToTensor (+ Standardise when
    `normalise`) only, without augmentation: the same image always gives the same tensor.
    """
    ### BEGIN SOLUTION
    augment = []
    if flip:
        augment.append(transforms.RandomHorizontalFlip(p=0.5))
    if rotation:
        augment.append(transforms.RandomRotation(degrees=10))
    if resized_crop:
        augment.append(transforms.RandomResizedCrop(28, scale=(0.7, 1.0), antialias=True))
    to_tensor = [transforms.ToTensor()]
    if normalise:
        to_tensor.append(Standardise(mean_image, std_image))
    return transforms.Compose(augment + to_tensor), transforms.Compose(to_tensor)
    ### END SOLUTION


class TransformedSubset(Dataset):
    """`subset` with `transform` applied to each of its images: (image, label) pairs.

    Training and validation subsets share one underlying dataset object, so its own
    `transform` attribute cannot differ between them; this wrapper gives each its own.
    """

    def __init__(self, subset, transform):
        self.subset = subset
        self.transform = transform

    def __len__(self):
        return len(self.subset)

    def __getitem__(self, index):
        image, label = self.subset[index]
        return self.transform(image), label


# %% cell: mlp


class MLP(nn.Module):
    """A multilayer perceptron for (N, 1, 28, 28) or (N, 784) inputs, returning (N, classes)
    raw scores (logits, no softmax: nn.CrossEntropyLoss applies it).

    The input is flattened to (N, input_size), then `hidden_layers` hidden layers of `width`
    units, each Linear -> activation -> Dropout(p = `dropout`), then an output Linear layer.
    `activation` is "sigmoid", "tanh" or "relu".
    """

    def __init__(
        self, hidden_layers=2, width=256, activation="relu", dropout=0.0, input_size=784, classes=10
    ):
        super().__init__()
        ### BEGIN SOLUTION
        activations = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
        if activation not in activations:
            raise ValueError(f"activation must be one of {sorted(activations)}, got {activation!r}")
        layers = [nn.Flatten()]  # (N, 1, 28, 28) -> (N, 784); (N, 784) stays as it is
        features = input_size
        for _ in range(hidden_layers):
            layers += [nn.Linear(features, width), activations[activation](), nn.Dropout(dropout)]
            features = width
        layers.append(nn.Linear(features, classes))
        self.layers = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.layers(x)
        ### END SOLUTION


# %% cell: loops


def train_epoch(model, loader, optimizer, device):
    """Train `model` for one pass over `loader` on `device`; return the mean cross-entropy per
    image over the pass: the sum of each batch's mean loss times its size, divided by the
    number of images.

    Moves the model and every batch to `device`, puts the model in training mode first and
    clears the gradients before every batch.
    """
    ### BEGIN SOLUTION
    model.to(device)
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count
    ### END SOLUTION


def evaluate(model, loader, device):
    """Accuracy of `model` over `loader` as a fraction: correct predictions / number of images,
    counted over the whole loader (not an average of per-batch accuracies). Moves the model and
    every batch to `device`; in evaluation mode, without gradients."""
    ### BEGIN SOLUTION
    model.to(device)
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return correct / count
    ### END SOLUTION


# %% cell: search

# The sheet's search space. "choices": a categorical hyper-parameter; "low"/"high": a range,
# drawn on a log scale when "log" is true.
SEARCH_SPACE = {
    "normalise": {"choices": [True, False]},
    "flip": {"choices": [False, True]},
    "rotation": {"choices": [False, True]},
    "resized_crop": {"choices": [False, True]},
    "hidden_layers": {"choices": [1, 2, 4]},
    "width": {"choices": [64, 256, 1024]},
    "activation": {"choices": ["sigmoid", "tanh", "relu"]},
    "dropout": {"low": 0.0, "high": 0.8},
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "batch_size": {"choices": [8, 64, 128]},
}

# Coarse to fine. share: fraction of the trials; epochs: training epochs of each trial;
# reports: validation checks per epoch (what the pruner sees); keep: how many of the best
# trials define the next stage's narrower space (and are tried again there first).
STAGES = (
    {"share": 0.6, "epochs": 1, "reports": 4, "keep": 6},
    {"share": 0.25, "epochs": 5, "reports": 1, "keep": 3},
    {"share": 0.15, "epochs": 10, "reports": 1, "keep": 0},
)

# The first trial of the coarse stage, a configuration known to learn, so that the search starts
# from a baseline it must beat: two hidden layers of 256 ReLU units (MLP's default architecture)
# with dropout 0.2 (MLP's own default is 0), standardised inputs, no augmentation, Adam at 1e-3,
# batches of 64.
BASELINE = {
    "normalise": True, "flip": False, "rotation": False, "resized_crop": False,
    "hidden_layers": 2, "width": 256, "activation": "relu", "dropout": 0.2, "lr": 1e-3,
    "batch_size": 64,
}  # fmt: skip

# The configuration keys that are arguments of MLP(...).
ARCHITECTURE = ("hidden_layers", "width", "activation", "dropout")


def suggest_config(trial, space):
    """Draw one configuration (a dict) from `space` through the Optuna `trial`."""
    config = {}
    for name, spec in space.items():
        if "choices" in spec:
            config[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            config[name] = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
    return config


def best_trials(study, keep):
    """The `keep` finished trials with the highest validation accuracy, best first."""
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return sorted(done, key=lambda t: (-t.value, t.number))[:keep]


def narrow_space(space, trials):
    """The part of `space` where `trials` (the best of a stage) lie: the choices they used,
    and ranges from their lowest to their highest value, widened a little on either side."""
    if not trials:
        return space
    narrow = {}
    for name, spec in space.items():
        used = [t.params[name] for t in trials]
        if "choices" in spec:
            narrow[name] = {"choices": [c for c in spec["choices"] if c in used]}
        elif spec.get("log", False):
            low, high = max(spec["low"], min(used) / 2), min(spec["high"], max(used) * 2)
            narrow[name] = {"low": low, "high": high, "log": True}
        else:
            margin = 0.1 * (spec["high"] - spec["low"])
            low, high = max(spec["low"], min(used) - margin), min(spec["high"], max(used) + margin)
            narrow[name] = {"low": low, "high": high}
    return narrow


def stage_sizes(n_trials, stages):
    """How many of the `n_trials` trials each stage gets: at least one each while there are
    enough, in proportion to the stages' shares, adding up to `n_trials`."""
    stages = stages[: max(1, min(len(stages), n_trials))]
    sizes = [max(1, int(s["share"] * n_trials)) for s in stages]
    while sum(sizes) > n_trials:
        sizes[sizes.index(max(sizes))] -= 1
    sizes[0] += n_trials - sum(sizes)
    return list(zip(stages, sizes, strict=True))


def _parts(subset, n_parts, generator):
    """`subset` shuffled and cut into `n_parts` disjoint Subsets of (nearly) equal size."""
    order = torch.randperm(len(subset), generator=generator).tolist()
    return [Subset(subset, order[i::n_parts]) for i in range(n_parts)]


def train_and_validate(
    config, train_set, val_set, stats, epochs, reports=1, *, seed, device, report=None
):
    """Train an MLP with `config` on `train_set`; return (model, curve).

    Adam at config["lr"] with a cosine learning-rate decay over the epochs. Every epoch is
    trained in `reports` parts; after each part the validation accuracy is measured and passed
    to `report(accuracy, step)` (the pruner's hook). `curve` lists, per part, the mean training
    loss per image and the validation accuracy. A loss that is not finite stops the training
    with optuna.TrialPruned.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_transform, eval_transform = make_transforms(
        *stats, config["normalise"], config["flip"], config["rotation"], config["resized_crop"]
    )
    val_loader = DataLoader(TransformedSubset(val_set, eval_transform), batch_size=1000)
    model = MLP(**{k: config[k] for k in ARCHITECTURE}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    curve = {"loss": [], "val_accuracy": []}
    for _ in range(epochs):
        for part in _parts(train_set, reports, generator):
            loader = DataLoader(
                TransformedSubset(part, train_transform),
                batch_size=config["batch_size"],
                shuffle=True,
                generator=generator,
            )
            loss = train_epoch(model, loader, optimizer, device)
            if not math.isfinite(loss):
                raise optuna.TrialPruned(f"the training loss diverged ({loss})")
            curve["loss"].append(loss)
            curve["val_accuracy"].append(evaluate(model, val_loader, device))
            if report is not None:
                report(curve["val_accuracy"][-1], len(curve["val_accuracy"]))
        scheduler.step()
    return model, curve


def run_search(
    train_set, val_set, n_trials, *, stages=STAGES, seed=0, storage=None, device=None, callbacks=()
):
    """Search SEARCH_SPACE stage by stage on the validation split only, never touching the test
    split; return the last stage's optuna.Study.

    Stage k (0, 1, ...) runs its n of the `n_trials` trials (stage_sizes) in a study of its own
    in `storage` (an SQLAlchemy URL such as "sqlite:///mlp_tuning.db"; None keeps everything in
    memory), named after the run's start time and the stage, sampled with TPE (seeded with
    seed + k) and pruned with the median rule. It searches the space narrowed to the `keep`
    best trials of the stage before it (best_trials, narrow_space) and tries those trials again
    first, best first, at most n of them (study.enqueue_trial(trial.params)); stage 0 tries
    BASELINE first. A trial is trained by train_and_validate(config, train_set, val_set, stats,
    stage["epochs"], stage["reports"], seed=seed + trial.number, device=device, report=...),
    with `stats` the standardisation images of `train_set`, and its value is the validation
    accuracy after its last epoch, curve["val_accuracy"][-1]. `callbacks` go to
    study.optimize; `device` None: the GPU when there is one, else the CPU.

    The returned study's best_trial is the trial with the highest validation accuracy among the
    last stage's trials; its user attribute "stage_studies" lists the names of all stage
    studies, first to last.
    """
    ### BEGIN SOLUTION
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    storage = storage or optuna.storages.InMemoryStorage()
    stats = standardisation_images(train_set)  # training split only, as for the final model
    run = time.strftime("%Y%m%d-%H%M%S")  # a new run starts new studies beside the old ones
    space, previous, names = SEARCH_SPACE, [], []
    for index, (stage, size) in enumerate(stage_sizes(n_trials, stages)):
        study = optuna.create_study(
            study_name=f"mlp_tuning-{run}-stage{index + 1}",
            storage=storage,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed + index, n_startup_trials=min(10, size)),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            load_if_exists=True,  # a name taken already (a rerun within a second): continue it
        )
        names.append(study.study_name)
        study.set_user_attr("space", space)
        study.set_user_attr("stage", stage)
        # The best settings so far, now trained for longer: no more than the stage runs, since
        # a queued trial its budget never reaches would stay WAITING in the study.
        for params in [t.params for t in previous[:size]] or [BASELINE]:
            study.enqueue_trial(params)

        def objective(trial, space=space, stage=stage):
            config = suggest_config(trial, space)
            _, curve = train_and_validate(
                config, train_set, val_set, stats, stage["epochs"], stage["reports"],
                seed=seed + trial.number, device=device, report=_pruning_hook(trial),
            )  # fmt: skip
            return curve["val_accuracy"][-1]

        study.optimize(objective, n_trials=size, callbacks=list(callbacks))
        previous = best_trials(study, stage["keep"])
        space = narrow_space(space, previous)
    study.set_user_attr("stage_studies", names)
    return study
    ### END SOLUTION


def _pruning_hook(trial):
    """report(accuracy, step) for train_and_validate: tell Optuna, stop when it says so."""

    def report(accuracy, step):
        trial.report(accuracy, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}: validation accuracy {accuracy:.4f}")

    return report
