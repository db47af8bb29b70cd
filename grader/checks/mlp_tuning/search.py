"""`mlp_tuning`'s search: `run_search` with a tiny budget on a tiny data set of the grader's own,
the test split replaced by a tripwire, statistics, MLP and epoch functions by the grader's. It
must never touch the test split nor standardise with validation images' statistics; each trial's
value is the validation accuracy it reported last to the pruner (on data where training and
validation accuracies differ), its best trial the best of them (judged by `families.studies`)."""

from __future__ import annotations

import functools

import torch
from torch.utils.data import Subset
from torchvision import transforms

from grader.checks import kit
from grader.checks.families import loop_models, studies
from grader.checks.families.images import ImageSet, class_images
from grader.checks.mlp_tuning.shared import CLASSES, EPSILON
from grader.spec import Definitions

OWN = Definitions()

# Two stages of three trials and one, one epoch each: every code path of a staged search, in
# seconds; stages of different sizes tell the last stage's study from the first's.
SEARCH_STAGES = (
    {"share": 0.75, "epochs": 1, "reports": 1, "keep": 2},
    {"share": 0.25, "epochs": 1, "reports": 1, "keep": 0},
)
SEARCH_TRIALS = 4
SEARCH_OPTIONS = {"stages": SEARCH_STAGES, "storage": None, "device": torch.device("cpu")}
WITHHELD = ("test_set", "test_loader")


def grader_statistics(subset) -> tuple[torch.Tensor, torch.Tensor]:
    """The sheet's mean and std images of a Subset's images, computed by the grader: put in
    place of the student's while the search is probed, so that a statistics mistake is charged
    to the statistics checks alone."""
    images = subset.dataset.data[torch.as_tensor(list(subset.indices))].float() / 255
    return images.mean(0), images.std(0, correction=0) + EPSILON


def _draw_search(rng, manifest) -> dict:
    return {
        # A smaller range than kit.seed's, as it always was: kit.seed would change the grades.
        "seed": rng.randrange(2**16),
        "data_seed": kit.seed(rng),
        "train_images": rng.randint(150, 200),
        "val_images": rng.randint(80, 120),
    }


@OWN.observer(draw=_draw_search)
def search(ctx) -> dict:
    """`run_search` on a tiny data set with a tiny budget, the test split replaced by tripwires,
    statistics, transforms, MLP and epoch functions by the grader's."""
    s, run_search = ctx.settings, ctx.get("run_search")
    images, labels = class_images(s["train_images"] + s["val_images"], s["data_seed"])
    # Every fourth validation image carries the next class's label: a trial that learns the
    # classes reaches about 1 on its training images but at most 0.75 on validation, so an
    # objective that returns another accuracy than the validation one shows.
    mislabelled = torch.arange(s["train_images"], len(labels), 4)
    labels[mislabelled] = (labels[mislabelled] + 1) % CLASSES
    data = ImageSet(images, labels)
    train_set = Subset(data, list(range(s["train_images"])))
    val_set = Subset(data, list(range(s["train_images"], len(data))))
    leaked = {"the validation split": val_set, "both splits": Subset(data, range(len(data)))}
    leaked = {what: grader_statistics(subset)[0] for what, subset in leaked.items()}
    searched = functools.partial(
        run_search, train_set, val_set, SEARCH_TRIALS, seed=int(s["seed"]), **SEARCH_OPTIONS
    )
    stand_ins = {"standardisation_images": grader_statistics, "MLP": loop_models.mlp}
    stand_ins |= {"train_epoch": loop_models.train_epoch, "evaluate": loop_models.evaluate}
    plain = transforms.ToTensor()  # make_transforms too, unaugmented (blind 15: Standardise)
    stand_ins["make_transforms"] = lambda m, sd, on=True, *_, **__: (
        (lambda image: (plain(image) - m) / sd if on else plain(image),) * 2
    )
    return studies.probed_search(ctx, searched, WITHHELD, stand_ins, "train_and_validate", leaked)


OWN.check("search_never_tests", observe=search)(studies.judge_never_tests("run_search"))
OWN.check("search_best_trial", observe=search)(
    studies.judge_best_trial("run_search", "curve['val_accuracy'][-1]")
)
