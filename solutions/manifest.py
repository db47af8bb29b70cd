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
    """A model whose trained weights the student submits."""

    key: str
    class_name: str
    args: tuple
    weights: str
    max_weights_mb: float
    threshold_margin: float
    # A JSON file the student hands in beside the weights, from which the model is rebuilt
    # (`mlp_tuning`'s final_config.json); None when `args` say how to build it.
    config: str | None = None

    def threshold(self, reference_accuracy: float) -> float:
        """Accuracy a submission must reach: reference minus margin, rounded down to 0.01."""
        return math.floor(round((reference_accuracy - self.threshold_margin) * 100, 6)) / 100


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


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


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
        models=tuple(
            ModelSpec(
                key=m["key"],
                class_name=m["class_name"],
                args=tuple(m.get("args", ())),
                weights=m["weights"],
                max_weights_mb=float(m["max_weights_mb"]),
                threshold_margin=float(m["threshold_margin"]),
                config=m.get("config"),
            )
            for m in raw.get("models", [])
        ),
        checks=tuple(
            CheckSpec(c["name"], c["cell"], float(c["points"]), bool(c["hidden"]))
            for c in raw["checks"]
        ),
        probe=_freeze(raw.get("probe", {})),
    )
