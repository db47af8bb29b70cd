"""`mlp_tuning`'s final model: `MLP(**architecture of final_config.json)` must load
`mlp_final.pt`, and its test accuracy is measured through the student's own evaluation
transform and statistics, judged like the accuracy family's (labels held by the judge,
threshold from the expected answers)."""

from __future__ import annotations

import json

import torch

from grader.checks import kit
from grader.checks.common import StopProbe, describe_error, diff_shapes, jsonable
from grader.checks.families import accuracy
from grader.checks.mlp_tuning.shared import ARCHITECTURE, SWITCHES
from grader.spec import Definitions, Verdict

OWN = Definitions()
TRANSFORM_KEYS = ("normalise", *SWITCHES)  # the configuration keys make_transforms takes


def _read_config(ctx, name: str) -> dict:
    path = ctx.workdir / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} was not submitted")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{name} is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise TypeError(f"{name} holds a {type(config).__name__}, not a JSON object")
    if missing := [k for k in (*ARCHITECTURE, "normalise") if k not in config]:
        raise KeyError(f"{name} lacks {', '.join(missing)}")
    return config


def _shapes(state: dict) -> list:
    return sorted(list(v.shape) for v in state.values() if isinstance(v, torch.Tensor))


def _draw_predictions(rng, manifest) -> dict:
    return {"seed": kit.seed(rng)}


@OWN.observer(draw=_draw_predictions, reference=False, needs_test_images=True)
def predictions(ctx) -> dict:
    """The submitted model, `MLP(**architecture of the submitted configuration)` with the
    submitted weights, and its scores on the test images through the student's own evaluation
    transform: `make_transforms(mean_image, std_image, **switches of the configuration)[1]`."""
    spec = ctx.manifest.model("mlp")
    entry: dict = {}
    out: dict = {"mlp": entry, "load": {}}
    try:
        config = _read_config(ctx, spec.config)
        out["config"] = jsonable(config)
        if problem := ctx.weights_problems.get(spec.weights):
            raise FileNotFoundError(problem)
        model = ctx.get(spec.class_name)(**{k: config[k] for k in ARCHITECTURE})
        state = accuracy.submitted_state(ctx, spec)
        out["load"] = {"file_shapes": _shapes(state), "model_shapes": _shapes(model.state_dict())}
        try:
            model.load_state_dict(state)
        except Exception as err:  # noqa: BLE001 - recorded for config_matches_weights
            out["load"]["error"] = describe_error(err, 400)
            raise
        if ctx.test_images is None:
            entry["no_test_split"] = True
            return out
        switches = {k: config[k] for k in TRANSFORM_KEYS if k in config}
        make = ctx.get("make_transforms")
        transform = make(ctx.get("mean_image"), ctx.get("std_image"), **switches)[1]
        # The run's seed: a model that drops units at evaluation gives one answer per run.
        batches = accuracy.transformed_batches(ctx, transform, seed=int(ctx.settings["seed"]))
        entry["logits_tensor"] = accuracy.scores(model, batches)
    except StopProbe:
        raise
    except Exception as err:  # noqa: BLE001 - reported as data; the judges decide
        entry["error"] = describe_error(err, 400)
    return out


@OWN.check(observe=predictions)
def config_matches_weights(seen, want, ctx) -> Verdict:
    spec = ctx.manifest.model("mlp")
    load = seen["load"]
    if "file_shapes" not in load:
        return Verdict.wrong(f"the final model could not be built: {seen['mlp']['error']}")
    built = "MLP(" + ", ".join(f"{k}={seen['config'][k]!r}" for k in ARCHITECTURE) + ")"
    if "error" in load or load["file_shapes"] != load["model_shapes"]:
        difference = diff_shapes(load["model_shapes"], load["file_shapes"])
        return Verdict.wrong(
            f"{spec.weights} does not fit {built} built from {spec.config}: "
            f"{difference or load.get('error')}; hand in the configuration of the model whose "
            "weights you saved"
        )
    return Verdict.ok(f"{spec.weights} loads into {built} built from {spec.config}")


OWN.check("final_accuracy", observe=predictions)(accuracy.judge_model("mlp"))
