"""How a check is written: an observer that looks at code, and a judge that compares.

An *observer* runs where student code runs (the sandboxed probe, or the student's kernel for
nbgrader's hidden tests). It builds the student's classes and calls their functions with the
*settings* drawn for this grading run, and returns plain data: JSON-able values, and tensors
under keys ending in `_tensor`. The trusted parent runs the very same observer, with the same
settings, on the reference solution, so that what is expected is never written down twice.

A *judge* runs where no student code ever ran. It gets the student's observation (`seen`), the
reference's (`want`, None for observers that are judged against other truth such as the test
labels) and a `JudgeContext`, and returns a `Verdict`. Several checks may share one observer,
which then runs once. Because the settings come from a key the student never sees
(grader/settings_key.py) and reach the probe only after the student's cells have run, an
observation written by student code instead of the observer has to be what a correct
implementation computes.

Check families (`grader/checks/families/`) register observers and checks from the manifest;
an assignment's own module (`grader/checks/<id>.py`) adds the checks that are its own, declared
with `Definitions`; `grader.checks.assemble.build_checkset` puts them together. Points and
visibility of every check come from the manifest.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """A judge's decision: the fraction of the check's points earned, why, and (for measured
    checks such as accuracy) the number measured.

    `raised` says that the student's code did not produce what was asked for (some of) it: it
    raised, is not implemented, or nothing could be observed. Such a check is reported as an
    error, and the checks that build on it are charged as usual: only a part that computed a
    wrong value excuses its dependants (the scoring policy). `own` says that the wrong value
    is the check's own mistake, which what it builds on does not explain (that lost points for
    something else): it is charged all the same.
    """

    fraction: float
    message: str
    value: float | None = None
    raised: bool = False
    own: bool = False

    @classmethod
    def ok(cls, message: str = "as expected", value: float | None = None) -> Verdict:
        return cls(1.0, message, value)

    @classmethod
    def wrong(cls, message: str, value: float | None = None) -> Verdict:
        return cls(0.0, message, value)

    @classmethod
    def error(cls, message: str) -> Verdict:
        """The student's code raised (or is missing) where the check needed a value."""
        return cls(0.0, message, raised=True)

    @classmethod
    def partial(cls, earned: int, total: int, message: str, raised: bool = False) -> Verdict:
        return cls(earned / total if total else 0.0, message, raised=raised)

    @classmethod
    def expect(cls, condition: bool, ok: str, wrong: str, value: float | None = None) -> Verdict:
        return cls.ok(ok, value) if condition else cls.wrong(wrong, value)


Observer = Callable[[Any], Mapping[str, Any]]
Draw = Callable[[random.Random, Mapping[str, Any]], dict]
Judge = Callable[[Mapping[str, Any], Mapping[str, Any] | None, Any], Verdict]


@dataclass(frozen=True)
class ObserverSpec:
    name: str
    observe: Observer
    draw: Draw | None = None  # settings for one grading run, from the manifest
    reference: bool = True  # also run on the reference solution to get `want`
    needs_test_images: bool = False  # reads the grader's test images (ctx.test_images)


@dataclass(frozen=True)
class Check:
    name: str
    observer: str
    judge: Judge
    uses: tuple[str, ...] = ()  # further observers whose data the judge reads (ctx.observations)


@dataclass
class CheckSet:
    """The observers and judges of one assignment, in registration order."""

    assignment: str
    observers: dict[str, ObserverSpec] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)

    def add_observer(
        self,
        name: str,
        observe: Observer,
        *,
        draw: Draw | None = None,
        reference: bool = True,
        needs_test_images: bool = False,
    ) -> None:
        if name in self.observers:
            raise ValueError(f"{self.assignment}: observer {name} defined twice")
        self.observers[name] = ObserverSpec(name, observe, draw, reference, needs_test_images)

    def add_check(self, name: str, observer: str, judge: Judge, uses: tuple[str, ...] = ()) -> None:
        if name in self.checks:
            raise ValueError(f"{self.assignment}: check {name} defined twice")
        for needed in (observer, *uses):
            if needed not in self.observers:
                raise ValueError(f"{self.assignment}: {name}: observer {needed} is not registered")
        self.checks[name] = Check(name, observer, judge, tuple(uses))

    def observers_for(self, check_names) -> list[str]:
        """Observers needed by these checks, in the order they were registered."""
        needed = {o for n in check_names for o in (self.checks[n].observer, *self.checks[n].uses)}
        return [name for name in self.observers if name in needed]

    def draw(self, rng: random.Random, manifest, names=None) -> dict:
        """Settings of every observer (or of `names`) for one grading run."""
        settings = {}
        for name, spec in self.observers.items():
            if names is None or name in names:
                settings[name] = spec.draw(rng, manifest) if spec.draw else {}
        return settings

    def validate(self, manifest_check_names) -> None:
        """Fail loudly when the manifest and the code do not name the same checks."""
        declared, coded = set(manifest_check_names), set(self.checks)
        if declared != coded:
            raise ValueError(
                f"{self.assignment}: checks in the manifest but not in the code "
                f"{sorted(declared - coded)}, in the code but not in the manifest "
                f"{sorted(coded - declared)}"
            )


@dataclass
class Definitions:
    """An assignment module's own observers and checks, declared with decorators at import and
    added to a CheckSet by `register` (so the same definitions serve every manifest load)."""

    observers: list[ObserverSpec] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def observer(
        self, *, draw: Draw | None = None, reference: bool = True, needs_test_images: bool = False
    ):
        """Declare the decorated function as an observer, named after it."""

        def declare(fn: Observer) -> Observer:
            self.observers.append(ObserverSpec(fn.__name__, fn, draw, reference, needs_test_images))
            return fn

        return declare

    def check(self, name: str | None = None, *, observe: Observer | str, uses=()):
        """Declare the decorated function as the judge of a check, named after the function
        (or `name`), fed by `observe` (an observer declared here, or the name of a family's
        observer); `uses` names observers whose data the judge also reads."""
        observer = observe if isinstance(observe, str) else observe.__name__

        def declare(judge: Judge) -> Judge:
            self.checks.append(Check(name or judge.__name__, observer, judge, tuple(uses)))
            return judge

        return declare

    def register(self, checks: CheckSet, manifest=None) -> None:
        for spec in self.observers:
            checks.add_observer(
                spec.name,
                spec.observe,
                draw=spec.draw,
                reference=spec.reference,
                needs_test_images=spec.needs_test_images,
            )
        for check in self.checks:
            checks.add_check(check.name, check.observer, check.judge, check.uses)
