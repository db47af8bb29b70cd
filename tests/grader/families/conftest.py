"""In-process harness for the check families: observe a namespace and the reference with the
same drawn settings, judge, and return verdicts by check name. No sandbox, no CLI."""

from __future__ import annotations

import random
import textwrap

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from grader import reference
from grader.checks.assemble import build_checkset
from grader.judge import Accepted, JudgeContext, judge, load_expected
from grader.manifest import load_manifest
from grader.probe.context import ProbeContext


class Harness:
    def __init__(self, assignment: str, seed: int = 0):
        self.manifest = load_manifest(assignment)
        self.checkset = build_checkset(self.manifest)
        self.settings = self.checkset.draw(random.Random(seed), self.manifest)
        refs = reference.references(self.manifest)
        observed = reference.observe(self.checkset, self.manifest, self.settings, refs)
        self.accepted = [
            Accepted(r.name, r.description, o) for r, o in zip(refs, observed, strict=True)
        ]
        self.reference_ns = refs[0].ns

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
            JudgeContext(self.manifest, load_expected(self.manifest.id)),
            self.settings,
        )
        return {r.name: r for r in results if self.checkset.checks[r.name].observer in seen}


@pytest.fixture(scope="session")
def harness() -> Harness:
    return Harness("res_dense_nets")
