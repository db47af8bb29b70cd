"""Build the student's classes with drawn arguments; compare shapes, parameters and behaviour.

One observer per manifest `[[modules]]` entry, named "module:<name>". For every drawn setting
it constructs `Class(*args, **kwargs)` (`args` positionally, in the order the notebook's stubs
give, so renamed arguments still work; `kwargs` by the names the notebook prescribes, for classes
it calls by keyword, such as `MLP(hidden_layers=2, width=256, ...)`; a keyword drawn from one
choice is a fixed one), or
calls the builder function of a `kind = "function"` entry the same way (a list of layers it
returns is wrapped in nn.Sequential), runs a forward pass on a seeded batch of the setting's
input shape and records the output's per-sample shape, the sorted parameter shapes (layout and
names do not matter) and, when the manifest asks for a behaviour check, the outputs under fixed
weights. Values "nn.<Name>" are the classes `torch.nn.<Name>` (activations passed as classes).
The reference solution answers the same settings; judges compare the two, setting by setting,
and give partial credit over the reference's settings. Kinds that name the same check are
judged together: a setting passes when it passes each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from grader.checks.common import (
    NOT_IMPLEMENTED,
    a_module,
    describe_shapes,
    diff_shapes,
    failure,
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


TORCH_NN_PREFIX = "nn."


def torch_value(value: Any) -> Any:
    """A manifest value as the student's code gets it: "nn.ReLU" is the class nn.ReLU."""
    if isinstance(value, str) and value.startswith(TORCH_NN_PREFIX):
        return getattr(nn, value[len(TORCH_NN_PREFIX) :])
    return value


def as_module(built: Any) -> Any:
    """A builder's result as one module: a list or tuple of layers becomes nn.Sequential of
    them, in order; anything else is returned as it is."""
    if isinstance(built, list | tuple) and all(isinstance(m, nn.Module) for m in built):
        return nn.Sequential(*built)
    return built


def _drawn(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The drawn arguments of a setting, in the order of its values: args, kwargs, sizes."""
    return [*spec["args"], *spec["kwargs"], *spec["sizes"]]


def constructor(spec: Mapping[str, Any], values: list) -> tuple[list, dict]:
    """(positional, keyword) constructor arguments of one setting's values."""
    n_args, kwargs = len(spec["args"]), spec["kwargs"]
    named = {
        a["name"]: torch_value(v)
        for a, v in zip(kwargs, values[n_args : n_args + len(kwargs)], strict=True)
    }
    return [torch_value(v) for v in values[:n_args]], named


def build(spec: Mapping[str, Any], make: Any, values: list) -> Any:
    """`make(*args, **kwargs)` for one setting (values in args, kwargs, sizes order), a
    builder function's list of layers wrapped in nn.Sequential."""
    args, kwargs = constructor(spec, values)
    built = make(*args, **kwargs)
    return as_module(built) if spec["kind"] == "function" else built


def _arg_names(spec: Mapping[str, Any]) -> list[str]:
    return [a["name"] for a in _drawn(spec)]


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


def _shown(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith(TORCH_NN_PREFIX) else repr(value)


def describe(spec: Mapping[str, Any], values: list, manifest: Mapping[str, Any]) -> str:
    """`ResBlock(in_features=37, hidden_features=12) on 37` for messages."""
    # The manifest's values as written ("nn.ReLU", not the class's repr).
    n_args, n_kwargs = len(spec["args"]), len(spec["kwargs"])
    shown = [
        f"{a['name']}={_shown(v)}"
        for a, v in zip([*spec["args"], *spec["kwargs"]], values[: n_args + n_kwargs], strict=True)
    ]
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
        function = spec["kind"] == "function"
        result = {
            "is_class": callable(cls) if function else isinstance(cls, type),
            "module_class": function or (isinstance(cls, type) and issubclass(cls, nn.Module)),
            "settings": [],
        }
        seed = int(ctx.settings["seed"])
        for i, values in enumerate(ctx.settings["values"]):
            entry: dict = {}
            try:
                torch.manual_seed(seed + i)
                module = build(spec, cls, values)
                entry["is_module"] = isinstance(module, nn.Module)
                a_module(module)
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
                entry.update(failure(err))
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
        raised = False  # some setting raised or was not observed
        for i, want_entry in enumerate(want["settings"]):
            if "error" in want_entry:  # the reference itself failed: a grader bug, said loudly
                raise RuntimeError(f"reference failed on setting {values[i]}: {want_entry}")
            entry = seen_settings[i] if i < len(seen_settings) else None
            where = describe(spec, values[i], ctx.plain)
            if not isinstance(entry, dict):
                problems.append(f"{where}: nothing observed")
                raised = True
            elif "wrong" in entry:
                problems.append(f"{where}: {entry['wrong']}")
            elif "error" in entry:
                problems.append(f"{where} raised {entry['error']}")
                raised = True
            elif problem := test(entry, want_entry):
                problems.append(f"{where}: {problem}")
        total = len(want["settings"])
        return Verdict.partial(
            total - len(problems), total, summarise(problems) or "right", raised=raised
        )

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
            what = "a function" if spec["kind"] == "function" else "a class"
            return Verdict.wrong(f"{name} is not {what}")
        if not seen.get("module_class"):
            return Verdict.wrong(f"{name} must be a subclass of nn.Module")
        errors = [e["error"] for e in seen.get("settings", []) if "error" in e]
        if any(e.startswith(NOT_IMPLEMENTED) for e in errors):
            return Verdict.error(f"{name} is {NOT_IMPLEMENTED}")
        if errors:
            return Verdict.error(f"{name}(...) could not be built and run: {errors[0]}")
        if wrong := [e["wrong"] for e in seen.get("settings", []) if "wrong" in e]:
            return Verdict.wrong(f"{name}(...) could not be built and run: {wrong[0]}")
        if spec["kind"] == "function":
            return Verdict.ok(f"{name}(...) builds and runs")
        return Verdict.ok(f"{name} is an nn.Module subclass")

    return judge


# Per-setting kinds: (spec, the student's entry, the reference's entry) -> problem or None.
PROBLEMS = {
    "output": _output_problem,
    "parameters": _parameter_problem,
    "shape": lambda spec, e, w: _output_problem(spec, e, w) or _parameter_problem(spec, e, w),
    "behaviour": lambda spec, e, w: _behaviour_problem(e, w),
}


def _judge(spec, kinds: list[str]):
    """The judge of one check named by `kinds`: "module" alone, or per-setting kinds judged
    together (a setting's problem is the first of theirs, in MODULE_CHECK_KINDS order: output and
    parameter shapes before behaviour)."""
    if kinds == ["module"]:
        return _module_judge(spec)
    if "module" in kinds:
        raise ValueError(f"{spec['name']}: the 'module' check kind cannot share its check")

    def test(entry, want):
        return next((p for k in kinds if (p := PROBLEMS[k](spec, entry, want))), None)

    return _each(spec, test)


def register(checks: CheckSet, spec: Mapping[str, Any]) -> None:
    """The observer of one [[modules]] entry and the checks its `checks` table names (none for
    an entry that only declares settings for an assignment's own observers)."""
    if not spec["checks"]:
        return
    name = observer_name(spec)
    with_behaviour = "behaviour" in spec["checks"]
    checks.add_observer(name, observe(spec, with_behaviour), draw=draw_settings(spec))
    kinds_of: dict[str, list[str]] = {}
    for kind, check in spec["checks"].items():
        kinds_of.setdefault(check, []).append(kind)
    for check, kinds in kinds_of.items():
        checks.add_check(check, name, _judge(spec, kinds))


__all__ = [
    "BATCH",
    "as_module",
    "build",
    "constructor",
    "describe",
    "describe_shapes",
    "input_shape",
    "observer_name",
    "register",
    "torch_value",
]
