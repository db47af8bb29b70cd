"""One grading session: the checks of an assignment, ready to judge any number of submissions.

Preparing a session assembles the check set (families and the assignment's own checks), draws
the settings the observers probe with, and observes the reference solution (and the accepted
alternatives) with exactly those settings. Observing a submission is then the probe's business
in the sandbox (`grader.grade`), or `observe` in this process for nbgrader's hidden cells and
the tests, which run where the student's code already runs; `judge` turns observations into
points. The CLI, `grader.hidden` and the tests all grade through a session, so the three can
never drift apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from grader.checks.assemble import build_checkset
from grader.checks.common import describe_error, observe_on_cpu
from grader.fingerprint import code_fingerprint
from grader.judge import Accepted, JudgeContext, judge, load_expected
from grader.manifest import Manifest
from grader.observations import decode, encode
from grader.probe.context import ProbeContext
from grader.reference import SOLUTIONS, references
from grader.reference import observe as observe_reference
from grader.report import CheckResult
from grader.spec import CheckSet


def with_prerequisites(manifest: Manifest, names: Iterable[str]) -> tuple[str, ...]:
    """`names` and, transitively, the checks they build on (`after`), in manifest order: a
    check is judged with what it builds on, for the scoring policy."""
    needed, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += list(manifest.check(name).after)
    return tuple(c.name for c in manifest.checks if c.name in needed)


@dataclass(frozen=True)
class Session:
    """The prepared checks of one assignment (see the module docstring)."""

    manifest: Manifest
    checkset: CheckSet
    checks: tuple[str, ...]  # the checks judged: all, or some and what they build on
    settings: Mapping[str, dict]  # observer name -> this session's settings
    accepted: tuple[Accepted, ...]  # the reference's observations, then each alternative's
    expected: Mapping[str, Any]

    @classmethod
    def prepare(
        cls,
        manifest: Manifest,
        seed: int | None = None,
        *,
        checks: Iterable[str] | None = None,
        expected: Mapping[str, Any] | None = None,
        folder: Path | None = None,
        cache: Path | None = None,
    ) -> Session:
        """Draw the settings from `seed` (the course's key, see grader.settings_key; fresh
        random ones when None) and observe the reference with them. `checks`: only these (and
        what they build on); `folder`: where the reference's student.py is (default:
        solutions/<id>); `cache`: a folder of the grader's own where the reference's
        observations are kept, keyed by everything they depend on."""
        checkset = build_checkset(manifest)
        names = (
            with_prerequisites(manifest, checks)
            if checks is not None
            else tuple(c.name for c in manifest.checks)
        )
        rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(16), "big"))
        observers = checkset.observers_for(names)
        settings = checkset.draw(rng, manifest, observers if checks is not None else None)
        accepted = _cached(cache, manifest, settings, folder) if cache else None
        if accepted is None:
            solutions = references(manifest, folder)
            observed = observe_reference(checkset, manifest, settings, solutions)
            accepted = tuple(
                Accepted(ref.name, ref.description, obs)
                for ref, obs in zip(solutions, observed, strict=True)
            )
            if cache:
                _keep(cache, manifest, settings, folder, accepted)
        expected = expected if expected is not None else load_expected(manifest.id)
        return cls(manifest, checkset, names, settings, accepted, expected)

    @property
    def observers(self) -> list[str]:
        """The observers the session's checks read, in registration order."""
        return self.checkset.observers_for(self.checks)

    @property
    def needs_test_images(self) -> bool:
        return any(self.checkset.observers[name].needs_test_images for name in self.observers)

    def reference_digest(self) -> str:
        """A hash of what the reference (and each alternative) computed for these settings:
        part of every grade's fingerprint, so that a fixed reference regrades the class."""
        digest = hashlib.sha256()
        for solution in self.accepted:
            text, blob = encode({"name": solution.name, "observed": solution.observations})
            digest.update(text.encode())
            digest.update(blob)
        return digest.hexdigest()

    def observe(self, ctx: ProbeContext) -> dict[str, Any]:
        """Every observer of the session on `ctx`'s namespace, in this process, each result as
        the probe would send it (tensors and all); an observer that raises records why."""
        observations = {}
        for name in self.observers:
            try:
                observed = ctx.with_settings(self.settings[name])
                result = observe_on_cpu(self.checkset.observers[name].observe, observed)
                observations[name] = decode(*encode(result))
            except Exception as err:  # noqa: BLE001 - scored 0 with the reason, as in the probe
                observations[name] = {"__error__": describe_error(err, 500)}
        return observations

    def judge(
        self,
        observations: Mapping[str, Any],
        *,
        labels: torch.Tensor | None = None,
        no_test_split: str = "",
        test_split: str = "",
    ) -> list[CheckResult]:
        """One result per check of the session, in manifest order, the scoring policy applied.
        `test_split` names the test split in accuracy messages when it is not the real one."""
        manifest = self.manifest
        if len(self.checks) < len(manifest.checks):
            kept = tuple(c for c in manifest.checks if c.name in self.checks)
            manifest = manifest.model_copy(update={"checks": kept})
        ctx = JudgeContext(
            manifest,
            dict(self.expected),
            labels=labels,
            no_test_split=no_test_split,
            test_split=test_split,
        )
        return judge(
            self.checkset, manifest, dict(observations), list(self.accepted), ctx, self.settings
        )

    def only(self, names: Iterable[str]) -> Session:
        """The same session judging only `names` (and what they build on)."""
        return replace(self, checks=with_prerequisites(self.manifest, names))


# ---------------------------------------------------------------- the reference's observations


def _cache_file(cache: Path, manifest: Manifest, settings, folder: Path | None) -> Path:
    """Where the observations for exactly these inputs are kept: a hash of the manifest, the
    settings, the reference's code (and its alternatives'), the grader's code and torch."""
    solutions = folder or SOLUTIONS / manifest.id
    digest = hashlib.sha256()
    for part in (
        manifest.model_dump_json(),
        json.dumps(settings, sort_keys=True, default=str),
        *(p.read_text() for p in sorted(solutions.glob("*.py"))),
        code_fingerprint(),
        torch.__version__,
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return cache / f"{manifest.id}-{digest.hexdigest()[:32]}"


def _cached(cache: Path, manifest: Manifest, settings, folder) -> tuple[Accepted, ...] | None:
    base = _cache_file(cache, manifest, settings, folder)
    try:
        text = (base.with_suffix(".json")).read_text()
        blob = (base.with_suffix(".bin")).read_bytes()
        kept = decode(text, blob)
    except (OSError, ValueError):
        return None
    return tuple(Accepted(k["name"], k["description"], k["observations"]) for k in kept)


def _keep(cache: Path, manifest: Manifest, settings, folder, accepted) -> None:
    """Write them (mode 0600, in a folder only the grader's user can enter); a failure to
    write only costs the next run the time to compute them again."""
    base = _cache_file(cache, manifest, settings, folder)
    text, blob = encode(
        [
            {"name": a.name, "description": a.description, "observations": a.observations}
            for a in accepted
        ]
    )
    try:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        for suffix, data in ((".bin", blob), (".json", text.encode())):
            tmp = base.with_name(f".{base.name}{suffix}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, base.with_suffix(suffix))
    except OSError:
        pass
