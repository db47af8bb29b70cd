"""Build the student's classes with drawn arguments; compare shapes, parameters and behaviour.

One observer per manifest `[[modules]]` entry, named "module:<name>". For every drawn setting
it constructs `Class(*args, **kwargs)` (`args` positionally, in the order the notebook's stubs
give, so renamed arguments still work; `kwargs` by the names the notebook prescribes, for classes
it calls by keyword, such as `MLP(hidden_layers=2, width=256, ...)`), runs a forward pass on a
seeded batch of the setting's input shape and records the output's per-sample shape, the sorted
parameter shapes (layout and names do not matter) and, when the manifest asks for a behaviour
check, the outputs under fixed weights.
The reference solution answers the same settings; judges compare the two, setting by setting,
and give partial credit over the reference's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from grader.checks.common import (
    NOT_IMPLEMENTED,
    describe_error,
    describe_shapes,
    diff_shapes,
    inputs,
    looks_like_probabilities,
    param_count,
    param_shapes,
    same_values,
    sample_shape,
    summarise,
    unregistered_modules,
)
from grader.checks.families import behaviour
from grader.spec import CheckSet, Verdict

BATCH = 4  # samples per probe forward pass


def observer_name(spec: Mapping[str, Any]) -> str:
    return f"module:{spec['name']}"


def _drawn(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The drawn arguments of a setting, in the order of its values: args, kwargs, sizes."""
    return [*spec["args"], *spec.get("kwargs", ()), *spec["sizes"]]


def _arg_names(spec: Mapping[str, Any]) -> list[str]:
    return [a["name"] for a in _drawn(spec)]


def constructor(spec: Mapping[str, Any], values: list) -> tuple[list, dict]:
    """(positional, keyword) constructor arguments of one setting's values."""
    n_args, kwargs = len(spec["args"]), spec.get("kwargs", ())
    named = {a["name"]: v for a, v in zip(kwargs, values[n_args:], strict=False)}
    return list(values[:n_args]), named


def build(cls, spec: Mapping[str, Any], values: list):
    """`cls` built with one setting's constructor arguments."""
    args, kwargs = constructor(spec, values)
    return cls(*args, **kwargs)


def draw_settings(spec: Mapping[str, Any]):
    """A draw function: the fixed settings, then `settings` distinct random ones."""

    def draw(rng, manifest) -> dict:
        ranges = _drawn(spec)
        values = [list(v) for v in spec["fixed"]]
        wanted = len(values) + spec["settings"]
        for _ in range(200):
            if len(values) >= wanted:
                break
            value = [
                rng.choice(a["choices"]) if a["choices"] else rng.randint(a["low"], a["high"])
                for a in ranges
            ]
            if value not in values:
                values.append(value)
        return {"values": values, "seed": rng.randrange(2**31)}

    return draw


def input_shape(spec: Mapping[str, Any], values: list, manifest: Mapping[str, Any]) -> list[int]:
    """Per-sample input shape of one setting (the data set's image shape when not given)."""
    named = dict(zip(_arg_names(spec), values, strict=True))
    shape = [named[i] if isinstance(i, str) else i for i in spec["input"]]
    return shape or list(manifest["image_shape"])


def describe(spec: Mapping[str, Any], values: list, manifest: Mapping[str, Any]) -> str:
    """`ResBlock(in_features=37, hidden_features=12) on 37` for messages."""
    positional, named = constructor(spec, values)
    shown = [f"{a['name']}={v!r}" for a, v in zip(spec["args"], positional, strict=True)]
    shown += [f"{name}={v!r}" for name, v in named.items()]
    shape = "x".join(map(str, input_shape(spec, values, manifest)))
    return f"{spec['class_name']}({', '.join(shown)}) on {shape} inputs"


def _parts(module: nn.Module, classes: dict[str, type]) -> tuple[dict[str, int], list]:
    """How many registered instances of each part class, and the shapes of parameters outside
    them (sorted)."""
    counts, inside = {}, set()
    for name, cls in classes.items():
        found = [m for m in module.modules() if isinstance(cls, type) and isinstance(m, cls)]
        counts[name] = len(found)
        inside |= {id(p) for m in found for p in m.parameters()}
    outside = sorted(list(p.shape) for p in module.parameters() if id(p) not in inside)
    return counts, outside


def observe(spec: Mapping[str, Any], with_behaviour: bool):
    """The observer of one [[modules]] entry."""

    def observer(ctx) -> dict:
        cls = ctx.get(spec["class_name"])
        parts = {name: ctx.get(name) for name in spec["parts"]}
        result = {
            "is_class": isinstance(cls, type),
            "module_class": isinstance(cls, type) and issubclass(cls, nn.Module),
            "settings": [],
        }
        seed = int(ctx.settings["seed"])
        for i, values in enumerate(ctx.settings["values"]):
            entry: dict = {}
            try:
                torch.manual_seed(seed + i)
                module = build(cls, spec, values)
                entry["is_module"] = isinstance(module, nn.Module)
                if not entry["is_module"]:
                    raise TypeError(f"it returned a {type(module).__name__}, not an nn.Module")
                entry["param_shapes"] = param_shapes(module)
                entry["params"] = param_count(module)
                entry["unregistered"] = unregistered_modules(module)[:5]
                if parts:
                    entry["parts"], entry["outside_shapes"] = _parts(module, parts)
                x = inputs(BATCH, *input_shape(spec, values, ctx.manifest), seed=seed + i)
                module.eval()
                with torch.no_grad():
                    out = module(x)
                entry["output_shape"] = sample_shape(out, BATCH)
                entry["probabilities"] = looks_like_probabilities(out)
                if with_behaviour:
                    entry.update(behaviour.outputs(module, x, seed + i))
            except Exception as err:  # noqa: BLE001 - one bad setting must not hide the others
                entry["error"] = describe_error(err)
            result["settings"].append(entry)
        return result

    return observer


# ---------------------------------------------------------------- judges


def _each(spec, test):
    """A judge applying `test(seen_entry, want_entry) -> problem | None` to every setting the
    reference answered; the denominator is the reference's settings, never the student's."""

    def judge(seen, want, ctx) -> Verdict:
        values = ctx.settings["values"]
        seen_settings = seen.get("settings") if isinstance(seen.get("settings"), list) else []
        problems = []
        for i, want_entry in enumerate(want["settings"]):
            if "error" in want_entry:  # the reference itself failed: a grader bug, said loudly
                raise RuntimeError(f"reference failed on setting {values[i]}: {want_entry}")
            entry = seen_settings[i] if i < len(seen_settings) else None
            where = describe(spec, values[i], ctx.plain)
            if not isinstance(entry, dict):
                problems.append(f"{where}: nothing observed")
            elif "error" in entry:
                problems.append(f"{where} raised {entry['error']}")
            elif problem := test(entry, want_entry):
                problems.append(f"{where}: {problem}")
        total = len(want["settings"])
        return Verdict.partial(total - len(problems), total, summarise(problems) or "right")

    return judge


def _output_problem(spec, entry, want) -> str | None:
    if entry.get("output_shape") != want["output_shape"]:
        return f"output per sample {entry.get('output_shape')}, expected {want['output_shape']}"
    if spec["outputs"] == "logits" and entry.get("probabilities"):
        return (
            "returns probabilities (softmax applied): return raw scores (logits); "
            "the loss applies log-softmax itself"
        )
    return None


def _parameter_problem(spec, entry, want) -> str | None:
    hint = ""
    if entry.get("unregistered"):
        hint = (
            f" (attribute {entry['unregistered'][0]!r} keeps layers in a plain Python container, "
            "which PyTorch does not register: use nn.ModuleList or nn.Sequential)"
        )
    if spec["parts"]:
        for part, count in want["parts"].items():
            if entry.get("parts", {}).get(part) != count:
                return (
                    f"{entry.get('parts', {}).get(part)} registered {part} modules, expected "
                    f"{count}{hint}"
                )
        if entry.get("outside_shapes") != want["outside_shapes"]:
            difference = diff_shapes(want["outside_shapes"], entry.get("outside_shapes") or [])
            return f"layers outside the {'/'.join(spec['parts'])} blocks: {difference}{hint}"
        return None
    if entry.get("param_shapes") != want["param_shapes"]:
        return (
            f"{entry.get('params')} parameters, expected {want['params']}: "
            f"{diff_shapes(want['param_shapes'], entry.get('param_shapes') or [])}{hint}"
        )
    return None


def _behaviour_problem(entry, want) -> str | None:
    for mode, name in (("eval", "evaluation"), ("train", "training")):
        key = f"{mode}_tensor"
        if key not in entry:
            return f"in {name} mode it returned {entry.get(f'{mode}_output', 'nothing')}"
        if not same_values(entry[key], want[key]):
            return (
                f"with the same parameter values as the reference it computes other outputs in "
                f"{name} mode (check the order of the layers, activations, pooling and the "
                "skip or concatenation paths against the instructions)"
            )
    return None


def _module_judge(spec):
    name = spec["class_name"]

    def judge(seen, want, ctx) -> Verdict:
        if not seen.get("is_class"):
            return Verdict.wrong(f"{name} is not a class")
        if not seen.get("module_class"):
            return Verdict.wrong(f"{name} must be a subclass of nn.Module")
        errors = [e["error"] for e in seen.get("settings", []) if "error" in e]
        if any(e.startswith(NOT_IMPLEMENTED) for e in errors):
            return Verdict.wrong(f"{name} is {NOT_IMPLEMENTED}")
        if errors:
            return Verdict.wrong(f"{name}(...) could not be built and run: {errors[0]}")
        return Verdict.ok(f"{name} is an nn.Module subclass")

    return judge


KINDS = {
    "output": lambda spec: _each(spec, lambda e, w: _output_problem(spec, e, w)),
    "parameters": lambda spec: _each(spec, lambda e, w: _parameter_problem(spec, e, w)),
    "shape": lambda spec: _each(
        spec, lambda e, w: _output_problem(spec, e, w) or _parameter_problem(spec, e, w)
    ),
    "behaviour": lambda spec: _each(spec, _behaviour_problem),
    "module": _module_judge,
}


def register(checks: CheckSet, spec: Mapping[str, Any]) -> None:
    """The observer of one [[modules]] entry and the checks its `checks` table names."""
    name = observer_name(spec)
    with_behaviour = "behaviour" in spec["checks"]
    checks.add_observer(name, observe(spec, with_behaviour), draw=draw_settings(spec))
    for kind, check in spec["checks"].items():
        checks.add_check(check, name, KINDS[kind](spec))


__all__ = [
    "BATCH",
    "build",
    "constructor",
    "describe",
    "describe_shapes",
    "input_shape",
    "observer_name",
    "register",
]
