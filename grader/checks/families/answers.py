"""Numbers that answer the sheet's questions, compared with the reference's answers.

The manifest's `[answers] function` returns a dict of plain numbers. Sizes may be written the
usual ways ([14, 14], (14, 14), 14, "14x14"), counts as ints, floats, numeric strings or
one-element shapes ((40,) for 40).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from torch import nn

from grader.checks import kit
from grader.checks.common import jsonable, names_read, param_count
from grader.spec import CheckSet, Verdict

NAME = "answers"
OBSERVER = "answers"


class AnswersSection(BaseModel):
    """`[answers]`: the student's function that returns a dict of numbers answering the sheet's
    questions. A check with source "answers" compares them with the reference's; without one,
    the assignment's own module judges them (with the student's own network, say). `constants`:
    module-level names the function reads, set to the sheet's values before it is called (an
    experiment cell further down may have left `HIDDEN_SIZE = 512`). `computed`: the sheet asks
    for code that computes the numbers, so a function that reads no name at all (every number
    typed in) earns nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: str
    constants: dict[str, int] = {}
    computed: bool = False


def observe(ctx) -> dict:
    function, constants = ctx.get(ctx.manifest.answers.function), ctx.manifest.answers.constants
    getattr(function, "__globals__", {}).update(constants)
    code = getattr(function, "__code__", None)
    typed_in = isinstance(code, types.CodeType) and not (names_read(code) or code.co_freevars)
    return {"answers": jsonable(function()), "typed_in": typed_in}


def model_sizes(ctx) -> dict:
    """Parameter counts of the manifest's `[[models]]` built from the student's own classes: all
    of them, those of batch-norm layers, and the biases of linear layers, per model key. Not
    registered by the family: an assignment's own observer (declared under this name) for a
    judge that accepts counts true of the student's own models."""
    models = ctx.manifest.models

    def run(i, spec):
        model = ctx.get(spec.class_name)(*spec.args, **spec.kwargs)
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        biases = [
            m.bias for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None
        ]
        return {
            "all": param_count(model),
            "norm": sum(param_count(m) for m in norms),
            "linear_bias": sum(b.numel() for b in biases),
        }

    sizes = kit.per_setting(models, 0, run)
    return {"sizes": {spec.key: size for spec, size in zip(models, sizes, strict=True)}}


def normalise(key: str, value: Any) -> Any:
    """One canonical form per answer: sizes as [H, W] lists, counts as ints."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list) and len(value) == 1 and not key.endswith(("_spatial", "_size")):
        value = value[0]  # a count given as a per-sample shape: (40,) for 40 features
    if key.endswith(("_spatial", "_size")):
        if isinstance(value, int) and not isinstance(value, bool):
            return [value, value]
        if isinstance(value, str):
            numbers = [int(n) for n in re.findall(r"\d+", value)]
            return numbers * 2 if len(numbers) == 1 else numbers
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def wrong_answers(got: Any, accepted: list[Mapping[str, Any]]) -> list[str] | None:
    """Keys answered wrongly (an answer right under any accepted set counts as right)."""
    if not isinstance(got, dict):
        return None
    wrong = []
    for key, want in accepted[0].items():
        value = normalise(key, got.get(key))
        if not any(value == normalise(key, answers.get(key)) for answers in accepted):
            wrong.append(f"{key}: {got.get(key)!r}, expected {want!r}")
    return wrong


def judge(seen, want, ctx, also: Mapping[str, Any] | None = None) -> Verdict:
    """Partial credit over the reference's answers; an answer equal to `also`'s (what is true of
    the student's own code, say, for an assignment's own judge) is right too."""
    got, expected = seen["answers"], want["answers"]
    if ctx.manifest.answers.computed and seen.get("typed_in"):
        name = ctx.manifest.answers.function
        return Verdict.wrong(f"{name}() reads nothing: its numbers are typed in, not computed")
    wrong = wrong_answers(got, [expected, *([also] if also else [])])
    if wrong is None:
        return Verdict.wrong(f"{ctx.manifest.answers.function}() returned {got!r}, not a dict")
    return Verdict.partial(
        len(expected) - len(wrong), len(expected), "; ".join(wrong) or "all answers right"
    )


def judge_also(observer: str, own: Callable[[dict], Mapping[str, Any]]):
    """The judge of answers that are also right when true of the student's own code: `own`
    gives them from the observation of `observer` (a dict; {} when it cannot tell), and the
    reference's answer stands for each one it leaves out."""

    def judge_own(seen, want, ctx) -> Verdict:
        observed = ctx.observations.get(observer)
        extra = own(observed) if isinstance(observed, dict) else {}
        return judge(seen, want, ctx, {**want["answers"], **extra})

    return judge_own


def source_problem(manifest, parts: list[str]) -> str | None:
    """What is wrong with the check source "answers", if anything."""
    if manifest.answers is None:
        return "the manifest has no [answers] section"
    return "write it as answers" if parts else None


def register(checks: CheckSet, manifest) -> None:
    """The answers observer (for the assignment's own judges too) and its family check."""
    if manifest.answers is None:
        return
    checks.add_observer(OBSERVER, observe)
    for check in manifest.sourced(NAME):
        checks.add_check(check.name, OBSERVER, judge)
