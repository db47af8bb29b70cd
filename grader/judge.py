"""Award points: observations (plain data from the probe) against the expected answers.

This runs in the grader's own process, which never executes student code and only ever reads
JSON and tensors loaded with `weights_only=True`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grader.report import CheckResult
from grader.spec import CheckSet
from solutions.manifest import Manifest

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"


class ExpectedAnswersMissing(FileNotFoundError):
    """No expected answers for an assignment: an operator error, not a student's."""


def load_expected(assignment: str, directory: Path = EXPECTED_DIR) -> dict:
    path = directory / f"{assignment}.json"
    if not path.is_file():
        raise ExpectedAnswersMissing(
            f"{path} is missing: run `python -m solutions train {assignment}` to generate it"
        )
    return json.loads(path.read_text())


@dataclass(frozen=True)
class JudgeContext:
    """What a judge may use besides the observation."""

    manifest: Manifest
    expected: dict
    labels: torch.Tensor | None = None  # test labels in the order the probe saw the images


def judge(
    checkset: CheckSet, manifest: Manifest, observations: dict[str, Any], ctx: JudgeContext
) -> list[CheckResult]:
    """One CheckResult per check of the manifest, in manifest order."""
    results = []
    for spec in manifest.checks:
        check = checkset.checks[spec.name]
        obs = observations.get(check.observer)
        if not isinstance(obs, dict):
            results.append(_zero(spec, "error", "no observation was recorded"))
            continue
        if "__error__" in obs:
            results.append(_zero(spec, "error", str(obs["__error__"])))
            continue
        try:
            verdict = check.judge(obs, ctx)
        except Exception as err:  # noqa: BLE001 - malformed observations score 0, never crash
            results.append(
                _zero(spec, "error", f"the submission's behaviour could not be judged ({err!r})")
            )
            continue
        fraction = min(1.0, max(0.0, float(verdict.fraction)))
        results.append(
            CheckResult(
                name=spec.name,
                points=round(spec.points * fraction, 4),
                max_points=spec.points,
                status="pass" if fraction >= 1.0 else "fail",
                message=verdict.message,
                hidden=spec.hidden,
            )
        )
    return results


def _zero(spec, status: str, message: str) -> CheckResult:
    return CheckResult(spec.name, 0.0, spec.points, status, message, spec.hidden)


def all_failed(manifest: Manifest, status: str, message: str) -> list[CheckResult]:
    """Every check scored 0 with one reason (the notebook could not be read, say)."""
    return [_zero(spec, status, message) for spec in manifest.checks]
