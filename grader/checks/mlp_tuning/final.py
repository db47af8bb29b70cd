"""`mlp_tuning`'s final model: `MLP(**architecture of final_config.json)` must load
`mlp_final.pt`, and its test accuracy is measured through the student's own evaluation
transform and statistics, judged like the accuracy family's (labels held by the judge,
threshold from the expected answers)."""

from __future__ import annotations

from grader.checks import kit
from grader.checks.common import pair_of
from grader.checks.families import accuracy
from grader.checks.mlp_tuning.shared import ARCHITECTURE, SWITCHES
from grader.spec import Definitions

OWN = Definitions()
TRANSFORM_KEYS = ("normalise", *SWITCHES)  # the configuration keys make_transforms takes


@OWN.observer(draw=kit.draws({}), reference=False, needs_test_images=True)
def predictions(ctx) -> dict:
    """The submitted model, `MLP(**architecture of the submitted configuration)` with the
    submitted weights, and its scores on the test images through the student's own evaluation
    transform: `_, eval = make_transforms(mean_image, std_image, **switches of the config)`."""
    spec = ctx.manifest.model("mlp")
    entry: dict = {}
    out: dict = {"mlp": entry, "load": {}}
    with kit.recorded(entry, 400):
        model, config = accuracy.configured_model(ctx, spec, ARCHITECTURE, ("normalise",), out)
        if ctx.test_images is None:
            entry["no_test_split"] = True
            return out
        switches = {k: config[k] for k in TRANSFORM_KEYS if k in config}
        make, stats = ctx.get("make_transforms"), (ctx.get("mean_image"), ctx.get("std_image"))
        _, transform = pair_of(make(*stats, **switches), "(train_transform, eval_transform)")
        # The run's seed: a model that drops units at evaluation gives one answer per run.
        batches = accuracy.transformed_batches(ctx, transform, seed=int(ctx.settings["seed"]))
        entry["logits_tensor"] = accuracy.scores(model, batches)
    return out


OWN.check("config_matches_weights", observe=predictions)(
    accuracy.judge_config_fits("mlp", ARCHITECTURE)
)
OWN.check("final_accuracy", observe=predictions)(accuracy.judge_model("mlp"))
