"""How this package's checks are declared: a test per probed case, judged by kit.every_setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grader.checks import kit
from grader.spec import Definitions


def judged(own: Definitions, name: str, observer: Callable, key: str, where: Any):
    """Declare the decorated `test(entry, reference's entry, ctx, i) -> problem | None` in `own`
    as the judge of check `name`: every entry of `observer`'s list `key` must pass it. `where`
    names entry i: a text, a list of texts or a function (ctx, i, reference's entry) -> text."""
    if not callable(where):
        texts = [where] if isinstance(where, str) else where
        where = lambda ctx, i, want: texts[min(i, len(texts) - 1)]  # noqa: E731

    def declare(test):
        own.check(name, observe=observer)(kit.every_setting(key, test, where))
        return test

    return declare


def near(got: Any, want: float) -> bool:
    """A returned number equal to `want` up to float rounding."""
    return isinstance(got, int | float) and abs(got - want) <= 1e-5 * max(1, want)
