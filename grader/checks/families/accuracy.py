"""Accuracy of the submitted weights on the real test split, measured by the grader itself.

The observer rebuilds each model of the manifest from the student's own class
(`class_name(*args, **kwargs)`), loads the submitted weights file (a read-only copy) with
`weights_only=True`, and predicts the grader's test images in evaluation mode under no_grad,
each batch reshaped to the model's `input_shape` when the manifest gives one (a flattened
(N, 784) for an FNN), else as (N, C, H, W) images. The images reach the probe in an order drawn
for the run and without labels; the judge, in the parent, scores the logits against the labels
in that order. A grading machine without the test split gives status "error" (`Unjudgeable`),
with the fix in the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from grader.checks.common import StopProbe, describe_error
from grader.spec import CheckSet, Verdict

OBSERVER = "predictions"


class Unjudgeable(Exception):
    """The grading machine lacks what the check needs (the test split): status "error"."""


def observe(ctx) -> dict:
    result = {}
    for spec in ctx.manifest["models"]:
        entry: dict = {}
        result[spec["key"]] = entry
        if problem := ctx.weights_problems.get(spec["weights"]):
            entry["error"] = problem
            continue
        if ctx.test_images is None:
            entry["no_test_split"] = True
            continue
        try:
            model = ctx.get(spec["class_name"])(*spec["args"], **spec["kwargs"])
            path = ctx.weights_dir / spec["weights"]
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise TypeError(
                    f"{spec['weights']} holds a {type(state).__name__}: save model.state_dict()"
                )
            model.load_state_dict(state)
            model.eval()
            shape = spec.get("input_shape")
            with torch.no_grad():
                logits = torch.cat(
                    [model(x.reshape(len(x), *shape) if shape else x) for x in ctx.test_batches()]
                )
            entry["logits_tensor"] = logits.float()
        except StopProbe:
            raise
        except Exception as err:  # noqa: BLE001
            entry["error"] = describe_error(err, 400)
    return result


def judge_model(key: str):
    def judge(seen, want, ctx) -> Verdict:
        entry = seen.get(key)
        weights = ctx.manifest.model(key).weights
        if not isinstance(entry, dict):
            return Verdict.wrong(f"no predictions were recorded for {weights}")
        if entry.get("no_test_split") or ctx.labels is None:
            raise Unjudgeable(ctx.no_test_split or "the grading machine has no test split")
        if "error" in entry:
            return Verdict.wrong(f"{weights} could not be evaluated: {entry['error']}")
        logits, labels = entry.get("logits_tensor"), ctx.labels
        classes = ctx.manifest.classes
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(labels), classes):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
            return Verdict.wrong(
                f"expected ({len(labels)}, {classes}) scores for the test split, got {shape}"
            )
        accuracy = float((logits.argmax(1) == labels).float().mean())
        threshold = ctx.expected["accuracy"][key]["threshold"]
        source = ctx.expected["accuracy"][key].get("threshold_source")
        why = f" ({source})" if source else ""
        # Generated stand-ins are not the test split the threshold was set for: say so.
        on = f" on {ctx.test_split}" if ctx.test_split else ""
        return Verdict.expect(
            accuracy >= threshold,
            f"test accuracy {accuracy:.4f}{on} >= {threshold:.2f}{why}",
            f"test accuracy {accuracy:.4f}{on} is below the threshold {threshold:.2f}{why}",
            value=round(accuracy, 6),
        )

    return judge


def register(checks: CheckSet, accuracy_checks: Mapping[str, Any]) -> None:
    checks.add_observer(OBSERVER, observe, reference=False)
    for key, name in accuracy_checks.items():
        checks.add_check(name, OBSERVER, judge_model(key))
