"""Assignment manifests: the one description of an assignment that `solutions` and `grader` read.

A manifest is `assignments/<id>.toml`; see `assignments/res_dense_nets.toml` for the fields.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from solutions.paths import ASSIGNMENTS_DIR


class UnknownAssignmentError(KeyError):
    """Raised for an assignment id with no manifest."""


@dataclass(frozen=True)
class CheckSpec:
    """Points and visibility of one check; the check's code lives in `grader.checks.<id>`."""

    name: str
    cell: str
    points: float
    hidden: bool


@dataclass(frozen=True)
class ModelSpec:
    """A model whose trained weights the student submits, rebuilt as `class_name(*args, **kwargs)`.

    Its accuracy threshold comes from a measured reference run (`threshold_margin`) or, when the
    data cannot be had where the expected answers are regenerated, from the manifest itself
    (`fixed_threshold`, the TOML key `threshold`, with `threshold_source` saying who set it and
    why). A model needs at least one of the two; with both, a measurement wins.
    `input_shape` is the per-sample shape the grader feeds the model; None means the data set's
    image shape.
    """

    key: str
    class_name: str
    args: tuple
    weights: str
    max_weights_mb: float
    threshold_margin: float | None = None
    kwargs: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    fixed_threshold: float | None = None
    threshold_source: str | None = None
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        where = f"model {self.key!r}"
        if (self.fixed_threshold is None) != (self.threshold_source is None):
            raise ValueError(f"{where}: threshold and threshold_source go together")
        if self.threshold_margin is None and self.fixed_threshold is None:
            raise ValueError(f"{where}: needs threshold_margin, or threshold with threshold_source")
        if self.threshold_source is not None and not self.threshold_source.strip():
            raise ValueError(f"{where}: threshold_source is empty: say who set it and why")
        if self.fixed_threshold is not None and not 0.0 < self.fixed_threshold <= 1.0:
            raise ValueError(f"{where}: threshold {self.fixed_threshold} is not in (0, 1]")
        if self.threshold_margin is not None and not 0.0 <= self.threshold_margin < 1.0:
            raise ValueError(f"{where}: threshold_margin {self.threshold_margin} is not in [0, 1)")

    def threshold(self, reference_accuracy: float) -> float:
        """Accuracy a submission must reach: reference minus margin, rounded down to 0.01."""
        if self.threshold_margin is None:
            raise ValueError(f"model {self.key!r} has no threshold_margin to measure with")
        return math.floor(round((reference_accuracy - self.threshold_margin) * 100, 6)) / 100

    def threshold_entry(self, reference_accuracy: float | None) -> dict:
        """The threshold for the expected answers and where it came from.

        `reference_accuracy` is the reference model's accuracy on the real test split, or None
        when it could not be measured. Returns {"threshold", "threshold_rule"} for a measured
        threshold, {"threshold", "threshold_source"} for the manifest's own.
        """
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
    probe: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def submit_files(self) -> tuple[str, ...]:
        """Files a student hands in: the notebook and one weights file per model."""
        return (self.notebook, *(m.weights for m in self.models))

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


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


_MODEL_KEYS = {
    "key",
    "class_name",
    "args",
    "kwargs",
    "weights",
    "max_weights_mb",
    "threshold_margin",
    "threshold",
    "threshold_source",
    "input_shape",
}


def _model_spec(raw: dict, path: Path) -> ModelSpec:
    """A [[models]] entry, with an error that names any key it does not know or lacks."""
    unknown = sorted(set(raw) - _MODEL_KEYS)
    if unknown:
        raise ValueError(f"{path}: [[models]] has unknown key(s) {', '.join(unknown)}")
    missing = sorted({"key", "class_name", "weights", "max_weights_mb"} - set(raw))
    if missing:
        raise ValueError(f"{path}: [[models]] entry lacks {', '.join(missing)}")
    shape = raw.get("input_shape")
    try:
        return ModelSpec(
            key=raw["key"],
            class_name=raw["class_name"],
            args=tuple(raw.get("args", ())),
            kwargs=_freeze(dict(raw.get("kwargs", {}))),
            weights=raw["weights"],
            max_weights_mb=float(raw["max_weights_mb"]),
            threshold_margin=_float_or_none(raw.get("threshold_margin")),
            fixed_threshold=_float_or_none(raw.get("threshold")),
            threshold_source=raw.get("threshold_source"),
            input_shape=None if shape is None else tuple(int(n) for n in shape),
        )
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def assignment_ids(directory: Path = ASSIGNMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_manifest(assignment_id: str, directory: Path = ASSIGNMENTS_DIR) -> Manifest:
    path = directory / f"{assignment_id}.toml"
    if not path.is_file():
        known = ", ".join(assignment_ids(directory)) or "none"
        raise UnknownAssignmentError(f"unknown assignment {assignment_id!r} (known: {known})")
    raw = tomllib.loads(path.read_text())
    if raw["id"] != assignment_id:
        raise ValueError(f"{path} declares id {raw['id']!r}")
    names = [c["name"] for c in raw["checks"]]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: check names repeat")
    return Manifest(
        id=raw["id"],
        title=raw["title"],
        sheet=raw["sheet"],
        dataset=raw["dataset"],
        notebook=raw["notebook"],
        mean=tuple(raw["normalize"]["mean"]),
        std=tuple(raw["normalize"]["std"]),
        models=tuple(_model_spec(m, path) for m in raw.get("models", [])),
        checks=tuple(
            CheckSpec(c["name"], c["cell"], float(c["points"]), bool(c["hidden"]))
            for c in raw["checks"]
        ),
        probe=_freeze(raw.get("probe", {})),
    )
