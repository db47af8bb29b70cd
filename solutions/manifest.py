"""Assignment manifests: the one description of an assignment that `solutions` and `grader` read.

A manifest is `assignments/<id>.toml`. It names the data set, the weights files a student hands
in, the parts the check families build from the student's code (modules with the argument
ranges drawn for every grading run, the training and evaluation code, the answers function) and
the points of every check. Loading validates it: an unknown or missing key is an error that
names the key and the file. `Manifest.to_plain()` is the JSON form the sandboxed probe gets,
since the probe cannot import this package.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from solutions.data._catalog import DATASETS
from solutions.paths import ASSIGNMENTS_DIR


class UnknownAssignmentError(KeyError):
    """Raised for an assignment id with no manifest."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ManifestError(ValueError):
    """A manifest that does not follow the schema; the message names the file and the key."""


@dataclass(frozen=True)
class CheckSpec:
    """Points and visibility of one check; the check's code lives in `grader.checks`.

    `after` names checks of parts this one builds on: when one of them lost points and this one
    fails too, this one is not charged (see the README's scoring policy).
    """

    name: str
    cell: str
    points: float
    hidden: bool
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A model whose trained weights the student submits, rebuilt as `class_name(*args, **kwargs)`.

    Its accuracy threshold comes from a measured reference run (`threshold_margin`) or, when the
    data cannot be had where the expected answers are regenerated, from the manifest itself
    (`fixed_threshold`, the TOML key `threshold`, with `threshold_source` saying who set it and
    why). A model needs at least one of the two; with both, a measurement wins.
    `input_shape` is the per-sample shape the grader feeds the model; None means the data set's
    image shape. `test_transform` names a global of the notebook (a DataLoader, a data set, or a
    transform) whose transform the grader applies to each test image, as the student's own
    evaluation does; None: the manifest's `[normalize]` statistics.
    """

    key: str
    class_name: str
    args: tuple
    kwargs: Mapping[str, Any]
    weights: str
    max_weights_mb: float
    threshold_margin: float | None = None
    fixed_threshold: float | None = None
    threshold_source: str = ""
    input_shape: tuple[int, ...] | None = None
    # A JSON file the student hands in beside the weights, from which the model is rebuilt
    # (`mlp_tuning`'s final_config.json); None when `args` say how to build it.
    config: str | None = None
    test_transform: str | None = None

    def threshold(self, reference_accuracy: float) -> float:
        """Accuracy a submission must reach: reference minus margin, rounded down to 0.01."""
        if self.threshold_margin is None:
            raise ValueError(f"model {self.key!r} has no threshold_margin to measure with")
        return math.floor(round((reference_accuracy - self.threshold_margin) * 100, 6)) / 100

    def threshold_entry(self, reference_accuracy: float | None) -> dict:
        """The threshold for the expected answers and where it came from: {"threshold",
        "threshold_rule"} when measured, {"threshold", "threshold_source"} from the manifest."""
        if reference_accuracy is not None and self.threshold_margin is not None:
            return {
                "threshold": self.threshold(reference_accuracy),
                "threshold_rule": f"floor((test_accuracy - {self.threshold_margin}) * 100) / 100",
            }
        if self.fixed_threshold is None:
            raise ValueError(
                f"model {self.key!r}: no reference accuracy was measured and the manifest sets "
                "no threshold (add threshold and threshold_source)"
            )
        return {"threshold": self.fixed_threshold, "threshold_source": self.threshold_source}

    def build(self, namespace) -> object:
        """The model, from the class named `class_name` in `namespace` (a dict or a module)."""
        get = namespace.get if isinstance(namespace, dict) else lambda n: getattr(namespace, n)
        return get(self.class_name)(*self.args, **self.kwargs)


@dataclass(frozen=True)
class ArgSpec:
    """One drawn argument: an integer in [low, high], or one of `choices`."""

    name: str
    low: int | None = None
    high: int | None = None
    choices: tuple = ()


@dataclass(frozen=True)
class ModuleSpec:
    """A class of the student's that the module families build with drawn arguments.

    `kind` "class": `class_name` (TOML `class_name`) is an nn.Module subclass; "function" (TOML
    `function = "name"` instead): a function that returns the module, or a list of layers,
    which is wrapped in `nn.Sequential` in its order (`dense_layer(in, out, activation)`).
    `args` are the constructor's positional arguments, `kwargs` its keyword arguments (drawn the
    same way, passed by name: for classes whose notebook calls them by keyword; a keyword with
    one choice is a fixed one), `sizes` further drawn numbers used only in the input shape,
    `input` the per-sample input shape (names of args/kwargs/sizes or numbers; empty: the data
    set's image shape). A value "nn.<Name>" (in `choices` or `fixed`) stands for the class
    `torch.nn.<Name>`, e.g. an activation passed as a class. `settings` drawn settings are probed
    per grading run, plus every entry of `fixed` (values in args, kwargs, sizes order).
    `parts` names the student's classes this one is built from: its parameter check then counts
    their registered instances and compares only the parameters outside them, so a mistake
    inside a part is not charged again. `checks` maps a family check kind (module, output,
    parameters, shape, behaviour) to the check's name; kinds that name the same check are judged
    together (a setting passes when it passes each of them). An entry without checks only
    declares settings that an assignment's own observers draw from.
    """

    name: str
    class_name: str
    args: tuple[ArgSpec, ...]
    sizes: tuple[ArgSpec, ...]
    input: tuple
    settings: int
    fixed: tuple[tuple, ...]
    outputs: str  # "logits" (a classifier: not probabilities) or "any"
    parts: tuple[str, ...]
    checks: Mapping[str, str]
    kind: str = "class"
    kwargs: tuple[ArgSpec, ...] = ()


@dataclass(frozen=True)
class LoopSpec:
    """How the student's training and evaluation code is called, and its checks.

    `convention`: "epoch_functions" (`train(model, loader, optimizer, device) -> mean loss`,
    `evaluate(model, loader, device) -> accuracy`) or "network_trainer" (a trainer class, see
    grader/checks/families/loops.py). `loss`: "logits" (cross-entropy on raw scores) or
    "log_probabilities" (NLL on log-softmax outputs). `loss_mean`: "either" (the mean loss per
    sample and the mean of the batch means are both accepted: the instructions leave it open)
    or "per_sample" (only the mean per sample, as the instructions say; probed with a short
    last batch). `counter_keyword` (network_trainer only): the keyword argument through which
    the trainer class takes a function counting correct predictions; the family passes its own
    there, so a mistake in the student's counting function is charged only where it is judged.
    """

    convention: str
    train: str
    evaluate: str
    loss: str
    checks: Mapping[str, str]
    loss_mean: str = "either"
    counter_keyword: str = ""


@dataclass(frozen=True)
class AnswersSpec:
    """A function of the student's that returns a dict of numbers answering the sheet's
    questions, and the check that compares them with the reference's answers (empty when the
    assignment's own module judges them)."""

    function: str
    check: str = ""


@dataclass(frozen=True)
class Manifest:
    id: str
    title: str
    sheet: str
    dataset: str
    notebook: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    models: tuple[ModelSpec, ...]
    checks: tuple[CheckSpec, ...]
    modules: tuple[ModuleSpec, ...] = ()
    loops: LoopSpec | None = None
    answers: AnswersSpec | None = None
    accuracy_checks: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    alternatives: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: Path | None = None

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return DATASETS[self.dataset].image_shape

    @property
    def classes(self) -> int:
        return len(DATASETS[self.dataset].classes)

    @property
    def submit_files(self) -> tuple[str, ...]:
        """Files a student hands in: the notebook and one weights file per model."""
        configs = tuple(m.config for m in self.models if m.config)
        return (self.notebook, *(m.weights for m in self.models), *configs)

    def cells(self) -> dict[str, tuple[CheckSpec, ...]]:
        """Grade cells in first-use order, each with its checks."""
        cells: dict[str, list[CheckSpec]] = {}
        for check in self.checks:
            cells.setdefault(check.cell, []).append(check)
        return {name: tuple(checks) for name, checks in cells.items()}

    def check(self, name: str) -> CheckSpec:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"{self.id} has no check named {name!r}")

    def model(self, key: str) -> ModelSpec:
        for model in self.models:
            if model.key == key:
                return model
        raise KeyError(f"{self.id} has no model {key!r}")

    def module(self, name: str) -> ModuleSpec:
        for module in self.modules:
            if module.name == name:
                return module
        raise KeyError(f"{self.id} has no module {name!r}")

    def to_plain(self) -> dict:
        """JSON-ready dict of everything the checks read (for the sandboxed probe)."""
        plain = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "source"}
        plain["image_shape"] = list(self.image_shape)
        plain["classes"] = self.classes
        return plain

    def text(self) -> bytes:
        """The manifest file's bytes (part of every grade's fingerprint)."""
        return self.source.read_bytes() if self.source else repr(self).encode()


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- reading and validating


class _Table:
    """A TOML table read key by key; `done()` rejects the keys nobody asked for."""

    def __init__(self, data: Any, where: str, path: Path):
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: {where} must be a table, not {type(data).__name__}")
        self.data, self.where, self.path, self.used = data, where, path, set()

    def _error(self, message: str) -> ManifestError:
        return ManifestError(f"{self.path}: {self.where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self._error(f"missing key {key!r}")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            raise self._error(f"{key!r} must be {_kind_name(kind)}, not {value!r}")
        return value

    def table(self, key: str, default: Any = ...) -> _Table | None:
        value = self.get(key, dict, default)
        return None if value is None else _Table(value, f"{self.where}.{key}", self.path)

    def tables(self, key: str) -> list[_Table]:
        values = self.get(key, list, [])
        return [_Table(v, f"{self.where}.{key}[{i}]", self.path) for i, v in enumerate(values)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self._error(f"unknown key {unknown[0]!r}" + (" (and more)" * (len(unknown) > 1)))


def _kind_name(kind) -> str:
    names = kind if isinstance(kind, tuple) else (kind,)
    words = {str: "a string", int: "an integer", float: "a number", bool: "true/false"}
    words |= {list: "a list", dict: "a table"}
    return " or ".join(words.get(k, k.__name__) for k in names)


def _arg(value: Any, where: str, path: Path) -> ArgSpec:
    table = _Table(value, where, path)
    name = table.get("name", str)
    if "choices" in table.data:
        choices = tuple(table.get("choices", list))
        table.done()
        if not choices:
            raise ManifestError(f"{path}: {where}: 'choices' is empty")
        return ArgSpec(name, choices=choices)
    low, high = table.get("range", list)
    table.done()
    if not (isinstance(low, int) and isinstance(high, int) and low <= high):
        raise ManifestError(f"{path}: {where}: 'range' must be [low, high] integers")
    return ArgSpec(name, low=low, high=high)


MODULE_CHECK_KINDS = ("module", "output", "parameters", "shape", "behaviour")
LOOP_CHECK_KINDS = (
    "train_mode",
    "train_zero_grad",
    "train_loss",
    "evaluate_mode",
    "evaluate_accuracy",
    "train_device",
    "evaluate_device",
)
LOOP_CONVENTIONS = ("epoch_functions", "network_trainer")
LOSS_CONVENTIONS = ("logits", "log_probabilities")
LOSS_MEANS = ("either", "per_sample")
TORCH_NN_PREFIX = "nn."  # a value "nn.ReLU" stands for the class torch.nn.ReLU


def _check_torch_classes(values: Any, where: str, path: Path) -> None:
    """Every "nn.<Name>" string among `values` (nested) must name a class of torch.nn."""
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, list | tuple):
        for value in values:
            _check_torch_classes(value, where, path)
    elif isinstance(values, str) and values.startswith(TORCH_NN_PREFIX):
        from torch import nn  # only manifests that name torch.nn classes need torch here

        if not isinstance(getattr(nn, values[len(TORCH_NN_PREFIX) :], None), type):
            raise ManifestError(f"{path}: {where}: {values!r} is not a class of torch.nn")


def _check_map(table: _Table | None, kinds: tuple[str, ...], where: str) -> Mapping[str, str]:
    if table is None:
        return MappingProxyType({})
    out = {}
    for kind in kinds:
        name = table.get(kind, str, None)
        if name is not None:
            out[kind] = name
    table.done()
    return MappingProxyType(out)


def _module(table: _Table) -> ModuleSpec:
    path = table.path
    args = tuple(
        _arg(a, f"{table.where}.args[{i}]", path) for i, a in enumerate(table.get("args", list, []))
    )
    kwargs = tuple(
        _arg(a, f"{table.where}.kwargs[{i}]", path)
        for i, a in enumerate(table.get("kwargs", list, []))
    )
    sizes = tuple(
        _arg(a, f"{table.where}.sizes[{i}]", path)
        for i, a in enumerate(table.get("sizes", list, []))
    )
    drawn = [a.name for a in (*args, *kwargs, *sizes)]
    if len(set(drawn)) != len(drawn):
        raise ManifestError(f"{path}: {table.where}: argument names repeat in {drawn}")
    shape = tuple(table.get("input", list, []))
    for item in shape:
        if not (isinstance(item, int) or item in drawn):
            raise ManifestError(f"{path}: {table.where}: input entry {item!r} is not an argument")
    fixed = tuple(tuple(f) for f in table.get("fixed", list, []))
    for entry in fixed:
        if len(entry) != len(drawn):
            raise ManifestError(
                f"{path}: {table.where}: each 'fixed' entry needs {len(drawn)} values "
                "(args, then kwargs, then sizes)"
            )
    outputs = table.get("outputs", str, "any")
    if outputs not in ("logits", "any"):
        raise ManifestError(f"{path}: {table.where}: 'outputs' must be 'logits' or 'any'")
    class_name, function = table.get("class_name", str, None), table.get("function", str, None)
    if (class_name is None) == (function is None):
        raise ManifestError(f"{path}: {table.where}: give either 'class_name' or 'function'")
    choices = [a.choices for a in (*args, *kwargs, *sizes)]
    for name, entries in (("choices", choices), ("fixed", fixed)):
        _check_torch_classes(entries, f"{table.where}.{name}", path)
    spec = ModuleSpec(
        name=table.get("name", str),
        class_name=class_name or function,
        kind="class" if function is None else "function",
        args=args,
        kwargs=kwargs,
        sizes=sizes,
        input=shape,
        settings=table.get("settings", int, 3),
        fixed=fixed,
        outputs=outputs,
        parts=tuple(table.get("parts", list, [])),
        checks=_check_map(table.table("checks", None), MODULE_CHECK_KINDS, table.where),
    )
    table.done()
    return spec


def _model(table: _Table) -> ModelSpec:
    shape = table.get("input_shape", list, None)
    spec = ModelSpec(
        key=table.get("key", str),
        class_name=table.get("class_name", str),
        args=tuple(table.get("args", list, [])),
        kwargs=MappingProxyType(dict(table.get("kwargs", dict, {}))),
        weights=table.get("weights", str),
        max_weights_mb=table.get("max_weights_mb", float),
        threshold_margin=table.get("threshold_margin", float, None),
        fixed_threshold=table.get("threshold", float, None),
        threshold_source=table.get("threshold_source", str, ""),
        input_shape=tuple(shape) if shape is not None else None,
        config=table.get("config", str, None),
        test_transform=table.get("test_transform", str, None),
    )
    table.done()
    where = f"{table.path}: {table.where}"
    if spec.threshold_margin is None and spec.fixed_threshold is None:
        raise ManifestError(
            f"{where}: give 'threshold_margin' (a measured threshold) or 'threshold' with "
            "'threshold_source'"
        )
    if (spec.fixed_threshold is None) != (not spec.threshold_source.strip()):
        raise ManifestError(f"{where}: 'threshold' and 'threshold_source' go together")
    if spec.fixed_threshold is not None and not 0.0 < spec.fixed_threshold <= 1.0:
        raise ManifestError(f"{where}: threshold {spec.fixed_threshold} is not in (0, 1]")
    if spec.threshold_margin is not None and not 0.0 <= spec.threshold_margin < 1.0:
        raise ManifestError(f"{where}: threshold_margin {spec.threshold_margin} is not in [0, 1)")
    return spec


def _validate(manifest: Manifest, path: Path) -> None:
    names = [c.name for c in manifest.checks]
    if len(set(names)) != len(names):
        raise ManifestError(f"{path}: check names repeat")
    for check in manifest.checks:
        for prerequisite in check.after:
            if prerequisite not in names:
                raise ManifestError(f"{path}: check {check.name}: unknown 'after' {prerequisite!r}")
    # Forgiving a check never pays: what a failed check can excuse is at most what it costs.
    points = {c.name: c.points for c in manifest.checks}
    for name in names:
        excused = sum(c.points for c in manifest.checks if name in c.after)
        if excused > points[name] + 1e-9:
            raise ManifestError(
                f"{path}: checks that name {name!r} in 'after' are worth {excused:g} points, "
                f"more than {name} itself ({points[name]:g}): failing it on purpose would pay"
            )
    referenced = [
        *(n for m in manifest.modules for n in m.checks.values()),
        *(manifest.loops.checks.values() if manifest.loops else ()),
        *([manifest.answers.check] if manifest.answers and manifest.answers.check else []),
        *manifest.accuracy_checks.values(),
    ]
    for name in referenced:
        if name not in names:
            raise ManifestError(f"{path}: family check {name!r} is not in [[checks]]")
    for key in manifest.accuracy_checks:
        manifest.model(key)


def assignment_ids(directory: Path = ASSIGNMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_manifest(assignment_id: str, directory: Path = ASSIGNMENTS_DIR) -> Manifest:
    path = directory / f"{assignment_id}.toml"
    if not path.is_file():
        known = ", ".join(assignment_ids(directory)) or "none"
        raise UnknownAssignmentError(f"unknown assignment {assignment_id!r} (known: {known})")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{path}: not valid TOML ({err})") from None
    top = _Table(raw, "top level", path)
    if top.get("id", str) != assignment_id:
        raise ManifestError(f"{path} declares id {raw['id']!r}")
    dataset = top.get("dataset", str)
    if dataset not in DATASETS:
        raise ManifestError(f"{path}: unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    normalize = top.table("normalize")
    mean, std = tuple(normalize.get("mean", list)), tuple(normalize.get("std", list))
    normalize.done()
    loops = top.table("loops", None)
    loop_spec = None
    if loops is not None:
        loop_spec = LoopSpec(
            convention=loops.get("convention", str),
            train=loops.get("train", str),
            evaluate=loops.get("evaluate", str),
            loss=loops.get("loss", str),
            checks=_check_map(loops.table("checks"), LOOP_CHECK_KINDS, loops.where),
            loss_mean=loops.get("loss_mean", str, "either"),
            counter_keyword=loops.get("counter_keyword", str, ""),
        )
        loops.done()
        if loop_spec.convention not in LOOP_CONVENTIONS:
            raise ManifestError(f"{path}: loops.convention must be one of {LOOP_CONVENTIONS}")
        if loop_spec.loss not in LOSS_CONVENTIONS:
            raise ManifestError(f"{path}: loops.loss must be one of {LOSS_CONVENTIONS}")
        if loop_spec.loss_mean not in LOSS_MEANS:
            raise ManifestError(f"{path}: loops.loss_mean must be one of {LOSS_MEANS}")
        if loop_spec.counter_keyword and loop_spec.convention != "network_trainer":
            raise ManifestError(
                f"{path}: loops.counter_keyword needs the network_trainer convention"
            )
        if loop_spec.convention == "network_trainer":
            for key in ("train", "evaluate"):
                if getattr(loop_spec, key).count(".") != 1:
                    raise ManifestError(f"{path}: loops.{key} must be 'Class.method'")
    answers = top.table("answers", None)
    answers_spec = None
    if answers is not None:
        answers_spec = AnswersSpec(answers.get("function", str), answers.get("check", str, ""))
        answers.done()
    accuracy = top.table("accuracy", None)
    accuracy_checks: dict[str, str] = {}
    if accuracy is not None:
        accuracy_checks = {k: accuracy.get(k, str) for k in list(accuracy.data)}
        accuracy.done()
    alternatives = top.table("alternatives", None)
    alternative_map: dict[str, str] = {}
    if alternatives is not None:
        alternative_map = {k: alternatives.get(k, str) for k in list(alternatives.data)}
        alternatives.done()
    checks = []
    for table in top.tables("checks"):
        checks.append(
            CheckSpec(
                table.get("name", str),
                table.get("cell", str),
                table.get("points", float),
                table.get("hidden", bool),
                tuple(table.get("after", list, [])),
            )
        )
        table.done()
    manifest = Manifest(
        id=assignment_id,
        title=top.get("title", str),
        sheet=top.get("sheet", str),
        dataset=dataset,
        notebook=top.get("notebook", str),
        mean=mean,
        std=std,
        models=tuple(_model(t) for t in top.tables("models")),
        checks=tuple(checks),
        modules=tuple(_module(t) for t in top.tables("modules")),
        loops=loop_spec,
        answers=answers_spec,
        accuracy_checks=MappingProxyType(accuracy_checks),
        alternatives=MappingProxyType(alternative_map),
        source=path,
    )
    top.done()
    _validate(manifest, path)
    return manifest
