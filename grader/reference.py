"""The reference solution, observed in the trusted parent with the run's settings.

What a check expects is what its observer records on the reference solution
(`solutions/<id>/student.py`) with exactly the settings the student's code was probed with, so
expectations are never written down a second time. Choices the instructions leave open are
accepted through alternative namespaces (`solutions/<id>/alternatives.py`, listed in the
manifest's `[alternatives]`): the reference namespace with some definitions replaced.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.manifest import Manifest
from grader.observations import decode, encode
from grader.probe.context import ProbeContext
from grader.spec import CheckSet

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ALTERNATIVE_MARKER = re.compile(r"^# %% alternative: (?P<name>\w+)\s*$", re.M)


@dataclass(frozen=True)
class Reference:
    """One accepted solution: the reference itself (`name == "reference"`) or an alternative."""

    name: str
    description: str
    ns: dict


def _execute(source: str, filename: str, ns: dict) -> dict:
    exec(compile(source, filename, "exec"), ns)  # noqa: S102 - our own reference code
    return ns


def _alternative_sources(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    text = path.read_text()
    marks = list(ALTERNATIVE_MARKER.finditer(text))
    header = text[: marks[0].start()] if marks else text
    return {
        mark["name"]: header + text[mark.end() : nxt.start() if nxt else len(text)]
        for mark, nxt in zip(marks, [*marks[1:], None], strict=True)
    }


def references(manifest: Manifest, folder: Path | None = None) -> list[Reference]:
    """The reference namespace, then one per alternative of the manifest. `folder` holds
    student.py and alternatives.py (default: solutions/<id>; the family tests' toy has its own)."""
    folder = folder or SOLUTIONS / manifest.id
    student = folder / "student.py"
    source = student.read_text()

    def fresh() -> dict:
        return _execute(source, str(student), {"__name__": f"reference_{manifest.id}"})

    found = [Reference("reference", "the reference solution", fresh())]
    sources = _alternative_sources(folder / "alternatives.py")
    for name, description in manifest.alternatives.items():
        if name not in sources:
            raise KeyError(f"{manifest.id}: alternative {name!r} has no code in alternatives.py")
        ns = _execute(sources[name], str(folder / "alternatives.py"), fresh())
        found.append(Reference(name, description, ns))
    return found


def _as_transmitted(value: Any) -> Any:
    """The value as it would arrive from the probe (tuples as lists, tensors copied)."""
    text, blob = encode(value)
    return decode(text, blob)


def observe(
    checkset: CheckSet,
    manifest: Manifest,
    settings: dict[str, dict],
    accepted: list[Reference] | None = None,
) -> list[dict[str, Any]]:
    """Per accepted solution, the observations of every observer that compares with the
    reference. A failing reference is a grader bug: it raises."""
    results = []
    # The reference's own progress lines (fnn_mnist's train_network prints each epoch) are not
    # the operator's business: `grade --quiet` prints nothing but errors.
    with contextlib.redirect_stdout(io.StringIO()):
        for ref in accepted if accepted is not None else references(manifest):
            ctx = ProbeContext(ns=ref.ns, manifest=manifest)
            observed = {}
            for name, spec in checkset.observers.items():
                if spec.reference and name in settings:
                    seen = spec.observe(ctx.with_settings(settings[name]))
                    observed[name] = _as_transmitted(seen)
            results.append(observed)
    return results
