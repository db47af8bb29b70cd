"""In-process harness for the check families: observe a namespace and the reference with the
same drawn settings, judge, and return verdicts by check name. No sandbox, no CLI.

`harness` is the toy assignment's (tests/fixtures/toy): the family tests run on it. An
assignment's own configuration of the families is tested with `Harness.of(<id>)`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from grader.manifest import load_manifest
from grader.probe.context import ProbeContext
from grader.reference import references
from grader.session import Session
from tests.fixtures import toy


class Harness:
    """A grading session (grader/session.py) judged in this process."""

    def __init__(self, session: Session, folder: Path | None = None):
        """`folder`: where the reference's student.py is (default: solutions/<id>)."""
        self.session = session
        self.manifest = session.manifest
        self.checkset = session.checkset
        self.settings = session.settings
        self.reference_ns = references(session.manifest, folder)[0].ns

    @classmethod
    def of(cls, assignment: str, seed: int = 0) -> Harness:
        """A course assignment's: its families and own checks, its expected answers."""
        return cls(Session.prepare(load_manifest(assignment), seed))

    @classmethod
    def toy(cls, seed: int = 0) -> Harness:
        """The toy assignment's: family checks only, no expected answers."""
        session = Session.prepare(toy.manifest(), seed, expected={}, folder=toy.FOLDER)
        return cls(session, toy.FOLDER)

    def namespace(self, *cells: str) -> dict:
        """The reference namespace with `cells` (student code) executed on top of it."""
        ns = dict(self.reference_ns)
        ns.update({"torch": torch, "nn": nn, "F": F})
        for cell in cells:
            exec(textwrap.dedent(cell), ns)  # noqa: S102 - test code
        return ns

    def grade(self, ns: dict, observers: list[str] | None = None) -> dict:
        """check name -> CheckResult, for the checks of `observers` (default: all but the
        accuracy of submitted weights, which needs the test split) and what they build on."""
        session, specs = self.session, self.checkset.observers
        names = [
            name
            for name in session.checks
            if (observer := self.checkset.checks[name].observer)
            and (observers is None or observer in observers)
            and (specs[observer].reference or observer.startswith("devices"))
        ]
        session = session.only(names)
        results = session.judge(session.observe(ProbeContext(ns=ns, manifest=self.manifest)))
        return {r.name: r for r in results}


@pytest.fixture(scope="session")
def harness() -> Harness:
    return Harness.toy()
