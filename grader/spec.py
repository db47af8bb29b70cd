"""How a check is written: an observer that looks at the student's objects, and a judge.

An *observer* runs where student code runs (the sandboxed probe process, or the student's kernel
for nbgrader's hidden tests). It builds the student's classes, calls their functions and returns
plain data: JSON-able values, and tensors under keys ending in `_tensor`. A *judge* runs where no
student code ever ran: it gets that data and the expected answers and returns a `Verdict`.
Several checks may share one observer, which then runs once.

Points and visibility of each check are declared in the assignment's manifest
(`assignments/<id>.toml`); `CheckSet.validate` makes sure the manifest and the code agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """A judge's decision: the fraction of the check's points earned, and why."""

    fraction: float
    message: str

    @classmethod
    def ok(cls, message: str = "as expected") -> Verdict:
        return cls(1.0, message)

    @classmethod
    def wrong(cls, message: str) -> Verdict:
        return cls(0.0, message)

    @classmethod
    def partial(cls, earned: int, total: int, message: str) -> Verdict:
        return cls(earned / total if total else 0.0, message)

    @classmethod
    def expect(cls, condition: bool, ok: str, wrong: str) -> Verdict:
        return cls.ok(ok) if condition else cls.wrong(wrong)


Observer = Callable[[Any], Mapping[str, Any]]
Judge = Callable[[Mapping[str, Any], Any], Verdict]


@dataclass(frozen=True)
class Check:
    name: str
    observer: str
    judge: Judge


@dataclass
class CheckSet:
    """The observers and judges of one assignment, in declaration order."""

    assignment: str
    observers: dict[str, Observer] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)

    def observer(self, fn: Observer) -> Observer:
        """Register `fn` as an observer under its own name."""
        if fn.__name__ in self.observers:
            raise ValueError(f"observer {fn.__name__} defined twice")
        self.observers[fn.__name__] = fn
        return fn

    def check(self, name: str, *, observe: Observer) -> Callable[[Judge], Judge]:
        """Register the decorated function as the judge of check `name`, fed by `observe`."""

        def register(judge: Judge) -> Judge:
            if name in self.checks:
                raise ValueError(f"check {name} defined twice")
            if self.observers.get(observe.__name__) is not observe:
                raise ValueError(f"{name}: observer {observe.__name__} is not registered")
            self.checks[name] = Check(name, observe.__name__, judge)
            return judge

        return register

    def observers_for(self, check_names: list[str] | tuple[str, ...]) -> list[str]:
        """Observers needed by these checks, in the order they were registered."""
        needed = {self.checks[n].observer for n in check_names}
        return [name for name in self.observers if name in needed]

    def validate(self, manifest_check_names: list[str] | tuple[str, ...]) -> None:
        """Fail loudly when the manifest and the code do not name the same checks."""
        declared, coded = set(manifest_check_names), set(self.checks)
        if declared != coded:
            raise ValueError(
                f"{self.assignment}: manifest-only checks {sorted(declared - coded)}, "
                f"code-only checks {sorted(coded - declared)}"
            )


def load_checkset(assignment: str) -> CheckSet:
    """Import `grader.checks.<assignment>` and return its `CHECKS`."""
    module = importlib.import_module(f"grader.checks.{assignment}")
    return module.CHECKS
