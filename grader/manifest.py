"""Assignment manifests: the one typed description of an assignment, read by every part.

A manifest is `assignments/<id>.toml`. It names the data set, the weights files a student hands
in, the sections the check families read (each family declares its section's model beside its
code, `grader/checks/families/`), and every check once, on one line of the table of the grade
cell whose hidden tests run it (`[checks.<cell>]`, cells in notebook order):
`name = { points = 2, hidden = false, after = [...], source = "..." }`, its points, visibility,
what it builds on (`after`) and where its code is (`source`: a family's check, e.g.
"modules.resblock.shape", or none for the assignment's own module `grader/checks/<id>.py`).

Loading validates it (pydantic: unknown keys, wrong types and values are errors that name the
file and the key) and adds what the data set catalog says of its data set (`image_shape`,
`classes`). The grading probe gets the same `Manifest` as JSON and validates it back
(`Manifest.model_validate`): there is no second, plain-dict form, and the probe, which cannot
see the `solutions` package, never needs the catalog. `solutions` (training, notebooks,
submissions) reads manifests from here too.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.checks.families import FAMILIES
from grader.checks.families.answers import AnswersSection
from grader.checks.families.loops import LoopsSection
from grader.checks.families.modules import ModuleEntry
from grader.checks.families.transforms import TransformsSection


class UnknownAssignmentError(KeyError):
    """An assignment id with no manifest."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ManifestError(ValueError):
    """A manifest that does not follow the schema; the message names the file and the key."""


class Strict(BaseModel):
    """Every manifest table: unknown keys are errors; values never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(Strict):
    """Points, grade cell and visibility of one check, and where its code is.

    `after` names checks of parts this one builds on: when those lost points by computing wrong
    values, a failure here is not charged (README, "How points are given"). `source`: the family
    check it is ("<family>.<entry>.<kind>[+<kind>...]", "loops.train_mode", "accuracy.<model>",
    "answers"), or None for a check of the assignment's own module. Checks are hidden unless
    `hidden = false` says a visible test of the student copy mirrors them.
    """

    name: str
    cell: str
    points: float = Field(gt=0)
    hidden: bool = True
    after: tuple[str, ...] = ()
    source: str | None = None

    @property
    def family(self) -> str | None:
        return self.source.split(".", 1)[0] if self.source else None


class ModelSpec(Strict):
    """A model whose trained weights the student submits, rebuilt as `class_name(*args,
    **kwargs)` (or from its `config` file) and loaded with `weights_only=True`.

    Its accuracy threshold comes from a measured reference run (`threshold_margin`) or, when
    the data cannot be had where the expected answers are made, from `threshold` with
    `threshold_source` saying who set it and why; with both, a measurement wins.
    `input_shape`: what one test sample looks like when fed to the model (None: the data set's
    image shape). `test_transform`: the notebook's loader whose data set's transform prepares
    the test images (None: the manifest's normalisation).
    """

    key: str
    class_name: str
    args: tuple = ()
    kwargs: dict[str, Any] = {}
    weights: str
    max_weights_mb: float = Field(gt=0)
    threshold_margin: float | None = Field(default=None, ge=0, lt=1)
    threshold: float | None = Field(default=None, gt=0, le=1)
    threshold_source: str = ""
    input_shape: tuple[int, ...] | None = None
    config: str | None = None
    test_transform: str | None = None

    @model_validator(mode="after")
    def _threshold_given(self) -> ModelSpec:
        if self.threshold_margin is None and self.threshold is None:
            raise ValueError(
                "give 'threshold_margin' (a measured threshold) or 'threshold' with "
                "'threshold_source'"
            )
        if (self.threshold is None) != (not self.threshold_source.strip()):
            raise ValueError("'threshold' and 'threshold_source' go together")
        return self

    def measured_threshold(self, reference_accuracy: float) -> float:
        """Accuracy a submission must reach: reference minus margin, rounded down to 0.01."""
        if self.threshold_margin is None:
            raise ValueError(f"model {self.key!r} has no threshold_margin to measure with")
        return math.floor(round((reference_accuracy - self.threshold_margin) * 100, 6)) / 100

    def threshold_entry(self, reference_accuracy: float | None) -> dict:
        """The threshold for the expected answers and where it came from: {"threshold",
        "threshold_rule"} when measured, {"threshold", "threshold_source"} from the manifest."""
        if reference_accuracy is not None and self.threshold_margin is not None:
            return {
                "threshold": self.measured_threshold(reference_accuracy),
                "threshold_rule": f"floor((test_accuracy - {self.threshold_margin}) * 100) / 100",
            }
        if self.threshold is None:
            raise ValueError(
                f"model {self.key!r}: no reference accuracy was measured and the manifest sets "
                "no threshold (add threshold and threshold_source)"
            )
        return {"threshold": self.threshold, "threshold_source": self.threshold_source}

    def build(self, namespace) -> object:
        """The model, from the class named `class_name` in `namespace` (a dict or a module)."""
        get = namespace.get if isinstance(namespace, dict) else lambda n: getattr(namespace, n)
        return get(self.class_name)(*self.args, **self.kwargs)


class Normalize(Strict):
    mean: tuple[float, ...]
    std: tuple[float, ...]


class Manifest(Strict):
    """One assignment, validated (see the module docstring)."""

    id: str
    title: str
    sheet: str
    dataset: str
    notebook: str
    normalize: Normalize
    models: tuple[ModelSpec, ...] = ()
    modules: tuple[ModuleEntry, ...] = ()
    loops: LoopsSection | None = None
    answers: AnswersSection | None = None
    transforms: TransformsSection | None = None
    alternatives: dict[str, str] = {}  # name -> what it allows (solutions/<id>/alternatives.py)
    files: tuple[str, ...] = ()  # further JSON files the notebook writes and a student hands in
    checks: tuple[CheckSpec, ...]
    # From the data set catalog when the manifest is loaded (`parse_manifest`), never written.
    image_shape: tuple[int, int, int]
    classes: int

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        for kind, names in (
            ("check", [c.name for c in self.checks]),
            ("model", [m.key for m in self.models]),
            ("module", [m.name for m in self.modules]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names repeat: {names}")
        points = {c.name: c.points for c in self.checks}
        for check in self.checks:
            for part in check.after:
                if part not in points:
                    raise ValueError(f"check {check.name}: unknown 'after' {part!r}")
            if check.source is not None:
                family = FAMILIES.get(check.family)
                if family is None:
                    raise ValueError(
                        f"check {check.name}: source {check.source!r} names no family "
                        f"(known: {', '.join(FAMILIES)})"
                    )
                if problem := family.source_problem(self, check.source.split(".")[1:]):
                    raise ValueError(f"check {check.name}: source {check.source!r}: {problem}")
        # Excusing a check never pays: what a failed check can excuse is at most what it costs.
        for name, own in points.items():
            excused = sum(c.points for c in self.checks if name in c.after)
            if excused > own + 1e-9:
                raise ValueError(
                    f"checks that name {name!r} in 'after' are worth {excused:g} points, more "
                    f"than {name} itself ({own:g}): failing it on purpose would pay"
                )
        return self

    # ------------------------------------------------------------ what the parts read

    @property
    def mean(self) -> tuple[float, ...]:
        return self.normalize.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.normalize.std

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def submit_files(self) -> tuple[str, ...]:
        """Files a student hands in: the notebook, one weights file per model, config files,
        further files (`files`)."""
        configs = tuple(m.config for m in self.models if m.config)
        return (self.notebook, *(m.weights for m in self.models), *configs, *self.files)

    def cells(self) -> dict[str, tuple[CheckSpec, ...]]:
        """Grade cells in first-use order, each with its checks."""
        cells: dict[str, list[CheckSpec]] = {}
        for check in self.checks:
            cells.setdefault(check.cell, []).append(check)
        return {name: tuple(checks) for name, checks in cells.items()}

    def check(self, name: str) -> CheckSpec:
        return self._by_name(self.checks, "name", name, "check")

    def model(self, key: str) -> ModelSpec:
        return self._by_name(self.models, "key", key, "model")

    def module(self, name: str) -> ModuleEntry:
        return self._by_name(self.modules, "name", name, "module")

    @property
    def accuracy_checks(self) -> dict[str, str]:
        """Model key -> the check that measures its submitted weights' accuracy."""
        return {c.source.split(".")[1]: c.name for c in self.sourced("accuracy")}

    def sourced(self, family: str) -> list[CheckSpec]:
        """The checks whose code is family `family`'s, in manifest order."""
        return [c for c in self.checks if c.family == family]

    def _by_name(self, items, attribute: str, value: str, what: str):
        for item in items:
            if getattr(item, attribute) == value:
                return item
        raise KeyError(f"{self.id} has no {what} named {value!r}")


def _assignments_dir() -> Path:
    from solutions.paths import ASSIGNMENTS_DIR  # the grading probe never loads a file

    return ASSIGNMENTS_DIR


def assignment_ids(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or _assignments_dir()).glob("*.toml"))


def _flat_checks(grouped: Any) -> list[dict]:
    """The checks as written, `{cell: {name: entry}}`, as CheckSpec data in written order."""
    if not isinstance(grouped, Mapping) or not all(
        isinstance(entries, Mapping) and all(isinstance(e, Mapping) for e in entries.values())
        for entries in grouped.values()
    ):
        raise ManifestError(
            "checks: write each check as `name = { points = ... }` in the table of its grade "
            "cell, `[checks.<cell>]`"
        )
    return [
        {"name": name, "cell": cell, **entry}
        for cell, entries in grouped.items()
        for name, entry in entries.items()
    ]


def _located(err: ValidationError, checks: list[dict]) -> str:
    """pydantic's errors as `key.path: message` lines; a check is located as it is written,
    `checks.<cell>.<name>`, not by its place in the flat list."""
    lines = []
    for error in err.errors():
        loc = error["loc"]
        if len(loc) > 1 and loc[0] == "checks" and isinstance(loc[1], int):
            loc = ("checks", checks[loc[1]]["cell"], checks[loc[1]]["name"], *loc[2:])
        where = ".".join(str(part) for part in loc) or "top level"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key {str(loc[-1])!r}"
        elif error["type"] == "missing":
            message = f"missing key {str(loc[-1])!r}"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def parse_manifest(data: Mapping[str, Any], where: str) -> Manifest:
    """Validate manifest data as written (TOML) and add its data set's facts from the catalog;
    ManifestError naming `where` and the key otherwise."""
    from solutions.data._catalog import DATASETS

    if written := {"image_shape", "classes"} & set(data):
        raise ManifestError(f"{where}: {sorted(written)[0]!r} comes from the data set catalog")
    info = DATASETS.get(data.get("dataset"))
    if info is None:
        raise ManifestError(
            f"{where}: dataset: unknown dataset {data.get('dataset')!r} "
            f"(known: {', '.join(DATASETS)})"
        )
    data = {**data, "image_shape": info.image_shape, "classes": len(info.classes)}
    try:
        if "checks" in data:
            data["checks"] = _flat_checks(data["checks"])
        return Manifest.model_validate(data)
    except ManifestError as err:
        raise ManifestError(f"{where}: {err}") from None
    except ValidationError as err:
        raise ManifestError(f"{where}: {_located(err, data.get('checks', []))}") from None


def load_manifest(assignment_id: str, directory: Path | None = None) -> Manifest:
    directory = directory or _assignments_dir()
    path = directory / f"{assignment_id}.toml"
    if not path.is_file():
        known = ", ".join(assignment_ids(directory)) or "none"
        raise UnknownAssignmentError(f"unknown assignment {assignment_id!r} (known: {known})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{path}: not valid TOML ({err})") from None
    if data.get("id") != assignment_id:
        raise ManifestError(f"{path} declares id {data.get('id')!r}, not {assignment_id!r}")
    return parse_manifest(data, str(path))
