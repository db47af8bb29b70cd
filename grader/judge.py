"""Award points: the student's observations against the reference's, for the same settings.

This runs in the grader's own process, which never executes student code and only ever reads
plain data (JSON and raw tensor bytes, `grader.observations`).

Scoring policy (README, "How points are given"): a check's points are earned in proportion to
its verdict; a check that names others in `after` (what it builds on) and fails while those
that lost points computed wrong values (status "fail") is not charged: it keeps its points,
status "skipped", and says why. A part that raised, is not implemented or could not be observed
(status "error") excuses nothing: work that was not done earns no points anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from grader.checks.families.accuracy import Unjudgeable
from grader.manifest import Manifest, assignment_ids, load_manifest
from grader.report import CheckResult
from grader.spec import CheckSet, Verdict

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"


class ExpectedAnswersMissing(FileNotFoundError):
    """No expected answers for an assignment: an operator error, not a student's."""


def load_expected(assignment: str, directory: Path = EXPECTED_DIR) -> dict:
    path = directory / f"{assignment}.json"
    if not path.is_file():
        raise ExpectedAnswersMissing(
            f"{path} is missing: run `python -m solutions train {assignment}` to generate it"
        )
    expected = json.loads(path.read_text())
    if directory == EXPECTED_DIR and assignment in assignment_ids():
        _manifest_thresholds(expected, load_manifest(assignment))
    return expected


def _manifest_thresholds(expected: dict, manifest: Manifest) -> None:
    """Thresholds from the manifest as it is now, applied to the measured accuracies: a changed
    `threshold_margin` or `threshold` takes effect without training the reference again."""
    for key, entry in expected.get("accuracy", {}).items():
        for stale in ("threshold", "threshold_rule", "threshold_source"):
            entry.pop(stale, None)
        entry |= manifest.model(key).threshold_entry(entry.get("test_accuracy"))


def published_thresholds(manifest: Manifest) -> dict[str, float]:
    """Model key -> the accuracy the grader asks of its weights, as the notebook lists it: for
    the models the accuracy family judges, or every model where the assignment judges accuracy
    itself (mlp_tuning). Empty before the reference has been trained (no expected answers)."""
    try:
        expected = load_expected(manifest.id)["accuracy"]
    except ExpectedAnswersMissing:
        return {}
    judged = {c.source.split(".", 1)[1] for c in manifest.checks if c.family == "accuracy"}
    return {k: e["threshold"] for k, e in expected.items() if k in judged or not judged}


@dataclass(frozen=True)
class JudgeContext:
    """What a judge may use besides the two observations."""

    manifest: Manifest
    expected: dict
    settings: Mapping[str, Any] = field(default_factory=dict)  # this observer's, this run's
    observations: Mapping[str, Any] = field(default_factory=dict)  # the student's, all observers
    references: Mapping[str, Any] = field(default_factory=dict)  # the reference's, all observers
    labels: torch.Tensor | None = None  # test labels in the order the probe saw the images
    no_test_split: str = ""  # why there are no labels, when there are none
    test_split: str = ""  # said in accuracy messages when it is not the real one (stand-ins)


@dataclass(frozen=True)
class Accepted:
    """The observations of one accepted solution (the reference or an alternative)."""

    name: str
    description: str
    observations: Mapping[str, Any]


def _verdict(check, seen, accepted: list[Accepted], ctx: JudgeContext) -> Verdict:
    """The best verdict over the accepted solutions; the reference wins ties."""
    best: Verdict | None = None
    for index, solution in enumerate(accepted):
        want = solution.observations.get(check.observer)
        verdict = check.judge(seen, want, replace(ctx, references=solution.observations))
        if index and verdict.fraction > (best.fraction if best else -1):
            verdict = replace(verdict, message=f"{verdict.message} (as: {solution.description})")
        if best is None or verdict.fraction > best.fraction:
            best = verdict
        if best.fraction >= 1.0:
            break
    return best


def judge(
    checkset: CheckSet,
    manifest: Manifest,
    observations: dict[str, Any],
    accepted: list[Accepted],
    ctx: JudgeContext,
    settings: Mapping[str, Any],
) -> list[CheckResult]:
    """One CheckResult per check of the manifest, in manifest order."""
    results: dict[str, CheckResult] = {}
    own: set[str] = set()  # wrong for a mistake of their own: never excused
    base = replace(ctx, observations=observations)
    for spec in manifest.checks:
        check = checkset.checks[spec.name]
        obs = observations.get(check.observer)
        if not isinstance(obs, dict):
            results[spec.name] = _zero(spec, "error", "no observation was recorded")
        elif "__error__" in obs:
            results[spec.name] = _zero(spec, "error", str(obs["__error__"]))
        else:
            try:
                verdict = _verdict(
                    check, obs, accepted, replace(base, settings=settings.get(check.observer, {}))
                )
            except Unjudgeable as err:
                results[spec.name] = _zero(spec, "error", str(err))
            except Exception as err:  # noqa: BLE001 - malformed observations score 0
                results[spec.name] = _zero(
                    spec, "error", f"the submission's behaviour could not be judged ({err!r})"
                )
            else:
                fraction = min(1.0, max(0.0, float(verdict.fraction)))
                status = "pass" if fraction >= 1.0 else "error" if verdict.raised else "fail"
                if verdict.own and status == "fail":
                    own.add(spec.name)
                results[spec.name] = CheckResult(
                    name=spec.name,
                    points=round(spec.points * fraction, 4),
                    max_points=spec.points,
                    status=status,
                    message=steady(verdict.message),
                    hidden=spec.hidden,
                    value=verdict.value,
                )
    return _apply_policy(manifest, results, own)


def _apply_policy(
    manifest: Manifest, results: dict[str, CheckResult], own: set[str] = frozenset()
) -> list[CheckResult]:
    """The scoring policy over every check, what a check builds on before the check itself."""
    final: dict[str, CheckResult] = {}
    specs = {s.name: s for s in manifest.checks}

    def settle(name: str) -> CheckResult:
        if name not in final:
            for part in specs[name].after:
                settle(part)
            result = results[name]
            final[name] = result if name in own else _excused(result, specs[name], results, final)
        return final[name]

    return [settle(s.name) for s in manifest.checks]


def _excused(result: CheckResult, spec, results: dict[str, CheckResult], final) -> CheckResult:
    """Not charged when what it builds on computed wrong values (the scoring policy).

    Only a part that ran and computed a wrong value ("fail"), or was itself excused because of
    one ("skipped"), excuses its dependants: one that raised, is not implemented or could not
    be observed ("error") leaves them charged, so an untouched notebook, a missing definition
    or a probe that never started earns nothing. A part that raises because what it builds on
    computed a wrong value (a DenseNet fed the wrong number of channels) is excused itself,
    and so passes the excuse on.
    """
    if result.status == "pass" or not spec.after:
        return result
    failed = [name for name in spec.after if results[name].points < results[name].max_points]
    wrong = [n for n in failed if results[n].status == "fail" or final[n].status == "skipped"]
    if not failed or len(wrong) < len(failed):
        return result
    return replace(
        result,
        points=spec.points,
        status="skipped",
        # Its own finding, short: it mostly says again what the check it builds on said.
        message=f"not charged: it builds on {failed[0]}, which lost points; "
        f"on its own: {_short(result.message)}",
    )


def _short(message: str, room: int = 120) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= room else line[: room - 3] + "..."


def _zero(spec, status: str, message: str) -> CheckResult:
    return CheckResult(spec.name, 0.0, spec.points, status, steady(message), spec.hidden)


ADDRESS = re.compile(r" (?:object )?at 0x[0-9a-fA-F]+(?=>)")


def steady(message: str) -> str:
    """`message` without the memory addresses of default reprs (`<PIL.Image.Image image mode=L
    size=28x28 at 0x7FA7...>`): they differ at every run, so a regrade's feedback changed."""
    return ADDRESS.sub("", message)


def all_failed(manifest: Manifest, status: str, message: str) -> list[CheckResult]:
    """Every check scored 0 with one reason (the notebook could not be read, say)."""
    return [_zero(spec, status, message) for spec in manifest.checks]
