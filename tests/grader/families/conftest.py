"""In-process harness for the check families: observe a namespace and the reference with the
same drawn settings, judge, and return verdicts by check name. No sandbox, no CLI.

`harness` is the toy assignment's (tests/fixtures/toy): the family tests run on it. An
assignment's own configuration of the families is tested with `Harness.of(<id>)`.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from grader import reference
from grader.checks.assemble import build_checkset
from grader.checks.families import FAMILIES
from grader.judge import Accepted, JudgeContext, judge, load_expected
from grader.manifest import Manifest, load_manifest
from grader.probe.context import ProbeContext
from grader.spec import CheckSet
from tests.fixtures import toy


class Harness:
    def __init__(
        self,
        manifest: Manifest,
        checkset: CheckSet,
        expected: dict,
        seed: int = 0,
        folder: Path | None = None,
    ):
        """`folder`: where the reference's student.py is (default: solutions/<id>)."""
        self.manifest = manifest
        self.checkset = checkset
        self.expected = expected
        self.settings = checkset.draw(random.Random(seed), manifest)
        refs = reference.references(manifest, folder)
        observed = reference.observe(checkset, manifest, self.settings, refs)
        self.accepted = [
            Accepted(r.name, r.description, o) for r, o in zip(refs, observed, strict=True)
        ]
        self.reference_ns = refs[0].ns

    @classmethod
    def of(cls, assignment: str, seed: int = 0) -> Harness:
        """A course assignment's: its families and own checks, its expected answers."""
        manifest = load_manifest(assignment)
        return cls(manifest, build_checkset(manifest), load_expected(assignment), seed)

    @classmethod
    def toy(cls, seed: int = 0) -> Harness:
        """The toy assignment's: family checks only (it has no module of its own in
        grader/checks, nor an expected-answers file)."""
        manifest = toy.manifest()
        checkset = CheckSet(manifest.id)
        for family in FAMILIES.values():
            family.register(checkset, manifest)
        checkset.validate([c.name for c in manifest.checks])
        return cls(manifest, checkset, {}, seed, toy.FOLDER)

    def namespace(self, *cells: str) -> dict:
        """The reference namespace with `cells` (student code) executed on top of it."""
        ns = dict(self.reference_ns)
        ns.update({"torch": torch, "nn": nn, "F": F})
        for cell in cells:
            exec(textwrap.dedent(cell), ns)  # noqa: S102 - test code
        return ns

    def grade(self, ns: dict, observers: list[str] | None = None) -> dict:
        """check name -> CheckResult, for the observers that compare with the reference."""
        ctx = ProbeContext(ns=ns, manifest=self.manifest)
        seen = {}
        for name, spec in self.checkset.observers.items():
            if observers is not None and name not in observers:
                continue
            if not spec.reference and name != "devices":
                continue
            try:
                seen[name] = reference._as_transmitted(
                    spec.observe(ctx.with_settings(self.settings[name]))
                )
            except Exception as err:  # noqa: BLE001 - as the probe records it
                seen[name] = {"__error__": f"{type(err).__name__}: {err}"}
        results = judge(
            self.checkset,
            self.manifest,
            seen,
            self.accepted,
            JudgeContext(self.manifest, self.expected),
            self.settings,
        )
        return {r.name: r for r in results if self.checkset.checks[r.name].observer in seen}


@pytest.fixture(scope="session")
def harness() -> Harness:
    return Harness.toy()
