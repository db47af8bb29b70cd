"""Build the student's classes with drawn arguments; compare shapes, parameters and behaviour.

The manifest's `[[modules]]` entries (`ModuleEntry`) name a class, or a builder function whose
list of layers is wrapped in nn.Sequential, and the ranges its arguments are drawn from. One
observer per entry used by a check ("module:<name>"): for every drawn setting it constructs
`Class(*args, **kwargs)` (`args` positionally, in the order the notebook's stubs give, so
renamed arguments still work; `kwargs` by the names the notebook prescribes; a keyword drawn
from one choice is a fixed one), runs a forward pass on a seeded batch of the setting's input
shape and records the output's per-sample shape, the sorted parameter shapes (layout and names
do not matter) and, when a check asks for behaviour, the outputs under fixed weights. Values
"nn.<Name>" are the classes `torch.nn.<Name>` (activations passed as classes). The reference
answers the same settings; judges compare the two, setting by setting, with partial credit over
the reference's settings. A check's source names its kinds ("modules.resblock.shape" or
"modules.dense_layer.shape+behaviour"): kinds that share a check are judged together, a setting
passing when it passes each of them. "output" judges the output's shape per sample and what its
rows must be (the entry's `outputs`); "shape" the output's shape and the parameter shapes.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from grader.checks import kit
from grader.checks.common import (
    NOT_DONE,
    a_module,
    describe_shapes,
    diff_shapes,
    inputs,
    jsonable,
    looks_like_probabilities,
    param_count,
    param_shapes,
    plain,
    same_values,
    sample_shape,
    unregistered_hint,
    unregistered_modules,
)
from grader.checks.families import behaviour
from grader.checks.families.layouts import hand_matrices, transposed_layout
from grader.spec import CheckSet, Verdict

NAME = "modules"
KINDS = ("module", "output", "parameters", "shape", "behaviour")
TORCH_NN_PREFIX = "nn."


class Arg(BaseModel):
    """One drawn argument: an integer in `range = [low, high]`, or one of `choices`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    range: tuple[int, int] | None = None
    choices: tuple[Any, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Arg:
        if (self.range is None) == (self.choices is None):
            raise ValueError(f"argument {self.name!r}: give either 'range' or 'choices'")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"argument {self.name!r}: 'range' must be [low, high]")
        for value in self.choices or ():
            _check_torch_class(value)
        return self


def _check_torch_class(value: Any) -> None:
    """Every "nn.<Name>" string in `value` (nested) must name a class of torch.nn."""
    if isinstance(value, list | tuple):
        for item in value:
            _check_torch_class(item)
    elif isinstance(value, str) and value.startswith(TORCH_NN_PREFIX):
        if not isinstance(getattr(nn, value[len(TORCH_NN_PREFIX) :], None), type):
            raise ValueError(f"{value!r} is not a class of torch.nn")


class ModuleEntry(BaseModel):
    """A `[[modules]]` entry: a class (`class_name`) or builder function (`function`) of the
    student's, built with drawn arguments (`args` positional, `kwargs` by name, `sizes` for the
    input only); `input` is the per-sample input shape (argument names or numbers; empty: the
    data set's image shape); `settings` random settings are probed per grading run besides every
    `fixed` one (values in args, kwargs, sizes order); `parts` are the student's classes it is
    built from (its parameter check then counts their registered instances, compares the
    arguments they are built with and only the parameters outside them); `outputs`: what a
    classifier's rows must be (OUTPUT_RULES); `data`: whether it is fed the data itself, not a
    layer's outputs (`behaviour.outputs`; implied by an `outputs` rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    class_name: str | None = None
    function: str | None = None
    args: tuple[Arg, ...] = ()
    kwargs: tuple[Arg, ...] = ()
    sizes: tuple[Arg, ...] = ()
    input: tuple[int | str, ...] = ()
    settings: int = Field(default=3, ge=0)
    fixed: tuple[tuple[Any, ...], ...] = ()
    outputs: Literal["logits", "raw_logits", "log_probabilities", "any"] = "any"
    data: bool = False
    parts: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ModuleEntry:
        if (self.class_name is None) == (self.function is None):
            raise ValueError(f"module {self.name!r}: give either 'class_name' or 'function'")
        names = [a.name for a in self.drawn]
        if len(set(names)) != len(names):
            raise ValueError(f"module {self.name!r}: argument names repeat in {names}")
        for item in self.input:
            if not (isinstance(item, int) or item in names):
                raise ValueError(f"module {self.name!r}: input entry {item!r} is not an argument")
        for entry in self.fixed:
            if len(entry) != len(names):
                raise ValueError(
                    f"module {self.name!r}: each 'fixed' entry needs {len(names)} values "
                    "(args, then kwargs, then sizes)"
                )
            _check_torch_class(entry)
        return self

    @property
    def kind(self) -> str:
        return "class" if self.function is None else "function"

    @property
    def fed_data(self) -> bool:
        return self.data or self.outputs != "any"

    @property
    def callable_name(self) -> str:
        """The name the student's code defines: the class or the builder function."""
        return self.class_name or self.function

    @property
    def drawn(self) -> tuple[Arg, ...]:
        """The drawn arguments of a setting, in the order of its values: args, kwargs, sizes."""
        return (*self.args, *self.kwargs, *self.sizes)


def source_problem(manifest, parts: list[str]) -> str | None:
    """What is wrong with a check source "modules.<entry>.<kind>[+<kind>...]", if anything."""
    if len(parts) != 2:
        return "write it as modules.<entry>.<kind>"
    entry, kinds = parts[0], parts[1].split("+")
    if entry not in {m.name for m in manifest.modules}:
        return f"there is no [[modules]] entry {entry!r}"
    if unknown := [k for k in kinds if k not in KINDS]:
        return f"unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})"
    if "module" in kinds and len(kinds) > 1:
        return "the 'module' kind cannot share its check"
    return None


BATCH = 4  # samples per probe forward pass


def observer_name(entry: ModuleEntry) -> str:
    return f"module:{entry.name}"


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


def constructor(entry: ModuleEntry, values: list) -> tuple[list, dict]:
    """(positional, keyword) constructor arguments of one setting's values."""
    n_args, kwargs = len(entry.args), entry.kwargs
    named = {
        a.name: torch_value(v)
        for a, v in zip(kwargs, values[n_args : n_args + len(kwargs)], strict=True)
    }
    return [torch_value(v) for v in values[:n_args]], named


def build(entry: ModuleEntry, make: Any, values: list) -> Any:
    """`make(*args, **kwargs)` for one setting (values in args, kwargs, sizes order), a
    builder function's list of layers wrapped in nn.Sequential."""
    args, kwargs = constructor(entry, values)
    built = make(*args, **kwargs)
    return as_module(built) if entry.kind == "function" else built


def draw_settings(entry: ModuleEntry):
    """A draw function: the fixed settings, then `settings` distinct random ones."""

    def draw(rng, manifest) -> dict:
        values = [list(v) for v in entry.fixed]
        wanted = len(values) + entry.settings
        for _ in range(200):
            if len(values) >= wanted:
                break
            value = [
                rng.choice(a.choices) if a.choices else rng.randint(*a.range) for a in entry.drawn
            ]
            if value not in values:
                values.append(value)
        return {"values": values, "seed": kit.seed(rng)}

    return draw


def module_settings(name: str):
    """A draw function for an assignment's own observer that probes `[[modules]]` entry `name`:
    the entry's settings drawn afresh from the run's generator (the course's settings key)."""

    def draw(rng, manifest) -> dict:
        return draw_settings(manifest.module(name))(rng, manifest)

    return draw


def input_shape(entry: ModuleEntry, values: list, manifest) -> list[int]:
    """Per-sample input shape of one setting (the data set's image shape when not given)."""
    named = dict(zip([a.name for a in entry.drawn], values, strict=True))
    shape = [named[i] if isinstance(i, str) else i for i in entry.input]
    return shape or list(manifest.image_shape)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith(TORCH_NN_PREFIX) else repr(value)


def describe(entry: ModuleEntry, values: list, manifest) -> str:
    """`ResBlock(in_features=37, hidden_features=12) on 37 inputs`, for messages."""
    # The manifest's values as written ("nn.ReLU", not the class's repr).
    named = [*entry.args, *entry.kwargs]
    shown = [f"{a.name}={_shown(v)}" for a, v in zip(named, values[: len(named)], strict=True)]
    shape = "x".join(map(str, input_shape(entry, values, manifest)))
    return f"{entry.callable_name}({', '.join(shown)}) on {shape} inputs"


def _parts(module: nn.Module, classes: dict[str, type]) -> tuple[dict[str, int], list, dict]:
    """How many registered instances of each part class, the shapes of parameters outside
    them (sorted), and how many places each part class is registered at, one instance counted
    as often as it is registered (`[ResBlock(256, 128)] * 2` registers one block twice)."""
    counts, inside, places = {}, set(), {}
    for name, cls in classes.items():
        found = [m for m in module.modules() if isinstance(cls, type) and isinstance(m, cls)]
        counts[name] = len(found)
        places[name] = sum(
            isinstance(cls, type) and isinstance(m, cls)
            for _, m in module.named_modules(remove_duplicate=False)
        )
        inside |= {id(p) for m in found for p in m.parameters()}
    outside = sorted(list(p.shape) for p in module.parameters() if id(p) not in inside)
    return counts, outside, places


def _built_with_part_args(make, classes: dict[str, type]) -> tuple[Any, dict[str, list]]:
    """`make()`, recording the arguments each part class is constructed with (bound to its
    signature, defaults applied): a ResMLP whose blocks are ResBlock(256, 64) where the sheet
    says ResBlock(256, 128) is its own mistake, which the parts' parameters cannot tell."""
    calls: dict[str, list] = {name: [] for name in classes}
    patched, seen_ids = [], set()
    for name, cls in classes.items():
        if not isinstance(cls, type):
            continue
        original, own = cls.__init__, "__init__" in vars(cls)

        def init(self, *args, _name=name, _original=original, **kwargs):
            if id(self) not in seen_ids:  # a subclass's super().__init__() is the same part
                seen_ids.add(id(self))
                with contextlib.suppress(TypeError, ValueError):
                    bound = inspect.signature(_original).bind(self, *args, **kwargs)
                    bound.apply_defaults()
                    calls[_name].append([jsonable(v) for v in list(bound.arguments.values())[1:]])
            _original(self, *args, **kwargs)

        cls.__init__ = init
        patched.append((cls, original, own))
    try:
        return make(), {name: sorted(c, key=repr) for name, c in calls.items()}
    finally:
        for cls, original, own in patched:
            if own:
                cls.__init__ = original
            else:
                del cls.__init__


def observe(entry: ModuleEntry, with_behaviour: bool):
    """The observer of one [[modules]] entry."""

    def observer(ctx) -> dict:
        cls = ctx.get(entry.callable_name)
        parts = {name: ctx.get(name) for name in entry.parts}
        function = entry.kind == "function"
        seed = int(ctx.settings["seed"])

        def run(i: int, values: list) -> dict:
            module, part_args = _built_with_part_args(lambda: build(entry, cls, values), parts)
            seen = {"is_module": isinstance(module, nn.Module)}
            a_module(module)
            x = inputs(BATCH, *input_shape(entry, values, ctx.manifest), seed=seed + i)
            behaviour.shape_lazy(module.eval(), x)
            seen["param_shapes"] = param_shapes(module)
            seen["hand_shapes"] = sorted(list(p.shape) for p in hand_matrices(module))
            seen["params"] = param_count(module)
            seen["unregistered"] = unregistered_modules(module)[:5]
            seen["parametrized"] = behaviour.parametrized_layers(module)
            if parts:
                seen["parts"], seen["outside_shapes"], seen["part_places"] = _parts(module, parts)
                seen["part_args"] = part_args
            with torch.no_grad():
                out = plain(module(x))
            seen["output_shape"] = sample_shape(out, BATCH)
            seen["single_shape"] = _single_shape(module, x)
            seen["probabilities"] = looks_like_probabilities(out)
            seen["log_probabilities"] = isinstance(out, torch.Tensor) and looks_like_probabilities(
                out.float().exp()
            )
            if with_behaviour:
                seen.update(behaviour.outputs(module, x, seed + i, entry.fed_data))
            return seen

        return {
            "is_class": callable(cls) if function else isinstance(cls, type),
            "module_class": function or (isinstance(cls, type) and issubclass(cls, nn.Module)),
            "settings": kit.per_setting(ctx.settings["values"], seed, run),
        }

    return observer


def _single_shape(module: nn.Module, x: torch.Tensor) -> Any:
    """The output shape per sample on a batch of one, in evaluation mode (a squeeze() drops
    its batch dimension); "raised <the error>" when that forward raises."""
    entry: dict = {}
    with kit.recorded(entry), torch.no_grad():
        entry["shape"] = sample_shape(plain(module(x[:1])), 1)
    return entry.get("shape", f"raised {entry.get('error', 'an error')}")


def single_problem(seen, want) -> str | None:
    """A batch of one handled otherwise than by the reference (which handles it)."""
    got, shape = seen.get("single_shape"), want.get("single_shape")
    if not isinstance(shape, list) or got == shape or "single_shape" not in seen:
        return None
    got = f"[1, {', '.join(map(str, got))}]" if isinstance(got, list) else str(got)
    said = f"it {got}" if got.startswith("raised") else f"its output is {got.split(' for a ')[0]}"
    if hint := behaviour.batch_statistics_problem(got):  # not a squeeze: batch norm's
        return f"on a batch of one sample in evaluation mode {said}: {hint}"
    return (
        f"on a batch of one sample {said}, expected "
        f"[{', '.join(map(str, [1, *shape]))}]: keep the batch dimension (squeeze() drops it; "
        "x.flatten(1) keeps it), or a last batch of one breaks the loss and the accuracy"
    )


def structure(module: nn.Module, x: torch.Tensor, seed: int, data: bool = False) -> dict:
    """What the shape and behaviour checks compare, for a batch `x` of BATCH inputs: parameter
    shapes and count, output shape per sample in evaluation mode (on one sample too), and the
    outputs under fixed weights (`behaviour.outputs`; `data`: `x` stands for the data)."""
    out: dict = {"param_shapes": param_shapes(module), "params": param_count(module)}
    module.eval()
    with torch.no_grad():
        out["output_shape"] = sample_shape(module(x), BATCH)
    out["single_shape"] = _single_shape(module, x)  # judged by single_problem
    return {**out, **behaviour.outputs(module, x, seed, data)}


def where_setting(name: str):
    """`where` (kit.every_setting) of a check over the settings of [[modules]] entry `name`:
    the call with setting i's arguments, as `describe` writes it."""
    return lambda ctx, i, want: describe(
        ctx.manifest.module(name), ctx.settings["values"][i], ctx.manifest
    )


# ---------------------------------------------------------------- judges


_SOFTMAX = (
    "probabilities",
    True,
    "returns probabilities (softmax applied): return raw scores (logits); "
    "the loss applies log-softmax itself",
)
# `outputs` -> (observed property, the value that is wrong, what to say): "logits" are anything
# but probabilities; "raw_logits" not log-probabilities either (CrossEntropyLoss, not NLLLoss);
# "log_probabilities" rows whose exp sums to one (log_softmax, for NLLLoss).
OUTPUT_RULES = {
    "any": (),
    "logits": (_SOFTMAX,),
    "raw_logits": (
        _SOFTMAX,
        (
            "log_probabilities",
            True,
            "returns log-probabilities (log_softmax applied): return raw scores (logits); "
            "CrossEntropyLoss applies log-softmax itself",
        ),
    ),
    "log_probabilities": (
        (
            "log_probabilities",
            False,
            "its outputs are not log-probabilities: end with log_softmax over dim 1",
        ),
    ),
}


def _output_shape_problem(seen, want) -> str | None:
    if seen.get("output_shape") != want["output_shape"]:
        return f"output per sample {seen.get('output_shape')}, expected {want['output_shape']}"
    return None


def _output_problem(entry: ModuleEntry, seen, want) -> str | None:
    """The output's shape per sample, then what its rows must be (OUTPUT_RULES)."""
    rules = OUTPUT_RULES[entry.outputs]
    wrong = (message for key, bad, message in rules if bool(seen.get(key)) == bad)
    return _output_shape_problem(seen, want) or next(wrong, None)


def _parameter_problem(entry: ModuleEntry, seen, want) -> str | None:
    hint = unregistered_hint(seen.get("unregistered")) or behaviour.built_hint(seen)
    hint = hint or behaviour.parametrized_hint(seen)
    if entry.parts:
        for part, count in want["parts"].items():
            if (got := seen.get("parts", {}).get(part)) != count:
                places = seen.get("part_places", {}).get(part)
                if isinstance(got, int) and isinstance(places, int) and places > got:
                    hint = (
                        f" (they stand in {places} places: the same object in several places "
                        f"shares its weights, as `[{part}(...)] * {count}` makes; build a new "
                        f"one for each place, `[{part}(...) for _ in range({count})]`)"
                    )
                return f"{got} registered {part} modules, expected {count}{hint}"
        for part, calls in want.get("part_args", {}).items():
            got = sorted(
                (c[: len(calls[0])] for c in seen.get("part_args", {}).get(part, [])), key=repr
            )
            if calls and got != calls:
                return f"its {part} modules are built with {got}, expected {calls}"
        if seen.get("outside_shapes") != want["outside_shapes"]:
            difference = diff_shapes(want["outside_shapes"], seen.get("outside_shapes") or [])
            return f"layers outside the {'/'.join(entry.parts)} blocks: {difference}{hint}"
        return None
    if seen.get("param_shapes") != want["param_shapes"] and not transposed_layout(seen, want):
        return (
            f"{seen.get('params')} parameters, expected {want['params']}: "
            f"{diff_shapes(want['param_shapes'], seen.get('param_shapes') or [])}{hint}"
        )
    return None


# Blind 18 (res x13): F.batch_norm(..., training=True) by hand was sent to the layer order.
EVAL_ONLY = (
    "its outputs are the reference's in training mode but not in evaluation mode: does a batch "
    "norm keep normalising with the batch's statistics after model.eval() (F.batch_norm(..., "
    "training=True) for training=self.training), or does code of its own depend on self.training?"
)


def _eval_only(seen, want) -> bool:
    """Training mode the reference's, with its parameters and buffers: eval alone differs."""
    shapes = [sorted(r.get("buffer_shapes") or []) for r in (seen, want)]
    same = seen.get("param_shapes") == want.get("param_shapes") and shapes[0] == shapes[1]
    return same and same_values(seen.get("train_tensor"), want.get("train_tensor"))


def _behaviour_problem(entry: ModuleEntry, seen, want) -> str | None:
    if transposed_layout(seen, want, outputs=True):  # (in, out) matrices applied as x @ W
        return behaviour.gradient_problem(seen, want)
    for mode, name in (("eval", "evaluation"), ("train", "training")):
        key = f"{mode}_tensor"
        if key not in seen:
            return f"in {name} mode it returned {seen.get(f'{mode}_output', 'nothing')}"
        # Dropout drawn by hand (torch.rand masks; beside an F.dropout call too, blind round 14b)
        # gives other outputs under the same seed: when both draw, the dropout's own check
        # judges training mode.
        random = mode == "train" and seen.get("train_random") and want.get("train_random")
        random = random and (not seen.get("dropout_calls") or seen.get("hand_draws"))
        if not random and not same_values(seen[key], want[key]):
            if mode == "eval" and seen.get("eval_random") and not want.get("eval_random"):
                return behaviour.eval_random_problem(seen)  # dropout left on, a layer built
            if mode == "train":  # evaluation mode agreed: the layout is right
                return behaviour.training_only_problem(seen, want)
            if _eval_only(seen, want):
                return EVAL_ONLY + behaviour.parametrized_hint(seen)
            return behaviour.other_outputs(name, seen, want)
    return behaviour.gradient_problem(seen, want)  # right values, but can they be trained?


def _module_judge(entry: ModuleEntry):
    name = entry.callable_name

    def judge(seen, want, ctx) -> Verdict:
        if not seen.get("is_class"):
            what = "a function" if entry.kind == "function" else "a class"
            return Verdict.wrong(f"{name} is not {what}")
        if not seen.get("module_class"):
            return Verdict.wrong(f"{name} must be a subclass of nn.Module")
        settings = seen.get("settings", [])
        errors = [e["error"] for e in settings if "error" in e]
        if done := [e for e in errors if e.startswith(NOT_DONE)]:
            return Verdict.error(f"{name} is {done[0]}")
        if errors:
            return Verdict.error(f"{name}(...) could not be built and run: {errors[0]}")
        if wrong := [e["wrong"] for e in settings if "wrong" in e]:
            return Verdict.wrong(f"{name}(...) could not be built and run: {wrong[0]}")
        if entry.kind == "function":
            return Verdict.ok(f"{name}(...) builds and runs")
        return Verdict.ok(f"{name} is an nn.Module subclass")

    return judge


# Per-setting kinds: (entry, the student's entry, the reference's entry) -> problem or None.
PROBLEMS = {
    "output": _output_problem,
    "parameters": _parameter_problem,
    "shape": lambda entry, s, w: _output_shape_problem(s, w) or _parameter_problem(entry, s, w),
    "behaviour": _behaviour_problem,
}


def _judge(entry: ModuleEntry, kinds: list[str], single: bool = False):
    """The judge of one check: "module" alone, or per-setting kinds judged together (a
    setting's problem is the first of theirs, in KINDS order: shapes before behaviour), then,
    with `single`, the output on a batch of one."""
    if kinds == ["module"]:
        return _module_judge(entry)
    kinds = sorted(kinds, key=KINDS.index)

    def test(seen, want, ctx, i):
        found = next((p for k in kinds if (p := PROBLEMS[k](entry, seen, want))), None)
        return found or (single_problem(seen, want) if single else None)

    def where(ctx, i, want):
        return describe(entry, ctx.settings["values"][i], ctx.manifest)

    return kit.every_setting("settings", test, where)


def register(checks: CheckSet, manifest) -> None:
    """An observer for every [[modules]] entry a check's source names, and those checks."""
    sources: dict[str, list[tuple[str, list[str]]]] = {}
    for check in manifest.sourced(NAME):
        _, name, kinds = check.source.split(".")
        sources.setdefault(name, []).append((check.name, kinds.split("+")))
    for entry in manifest.modules:
        if entry.name not in sources:
            continue  # settings only, for an assignment's own observers
        observer = observer_name(entry)
        with_behaviour = any("behaviour" in kinds for _, kinds in sources[entry.name])
        checks.add_observer(observer, observe(entry, with_behaviour), draw=draw_settings(entry))
        # A batch of one is judged once: by the shape check, else by the output check.
        kinds_used = {k for _, kinds in sources[entry.name] for k in kinds}
        single = "shape" if "shape" in kinds_used else "output"
        for check, kinds in sources[entry.name]:
            checks.add_check(check, observer, _judge(entry, kinds, single in kinds))


__all__ = [
    "BATCH",
    "ModuleEntry",
    "as_module",
    "build",
    "constructor",
    "describe",
    "describe_shapes",
    "input_shape",
    "module_settings",
    "observer_name",
    "register",
    "single_problem",
    "structure",
    "torch_value",
    "unregistered_hint",
    "where_setting",
]
