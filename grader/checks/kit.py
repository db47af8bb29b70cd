"""What writing a check takes, written once: settings, seeded runs per setting, one judge loop.

An observer probes the student's code once per drawn setting (`per_setting`: each run seeded,
its failure recorded as data by `failure`, never raised); a judge compares the student's entry
of each setting with the reference's (`every_setting`: partial credit over the reference's
settings, a setting that raised or was not observed marks the verdict `raised` for the scoring
policy). `module_settings` lets an assignment's own observer probe the settings of a
`[[modules]]` entry; `seed` draws a run's seed. Judges are named after their checks
(`grader.spec.Definitions.check`).
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from grader.checks.common import STUDENT_EXITS, describe_error, failure, summarise
from grader.spec import Verdict

SEED_SPAN = 2**31


def seed(rng: random.Random) -> int:
    """A seed for one observer's runs of one grading run."""
    return rng.randrange(SEED_SPAN)


def per_setting(items: Sequence[Any], start: int, run: Callable[[int, Any], dict]) -> list[dict]:
    """`run(i, item)` for each item, after `torch.manual_seed(start + i)`; an exception becomes
    the entry's recorded failure ({"error"} or {"wrong"}), so one bad setting hides no other."""
    entries = []
    for i, item in enumerate(items):
        entry: dict = {}
        try:
            torch.manual_seed(start + i)
            entry.update(run(i, item))
        except STUDENT_EXITS as err:  # reported as data (a sys.exit() too); the judge decides
            entry.update(failure(err))
        entries.append(entry)
    return entries


def once(ctx, run: Callable[[], dict]) -> dict:
    """`run()` seeded with the run's seed (settings "seed", else 0), its failure recorded as
    data ({"error"} or {"wrong"}): `per_setting` for an observer that probes one case."""
    return per_setting([None], int(ctx.settings.get("seed", 0)), lambda i, _: run())[0]


def one_case(own, **options) -> Callable:
    """Declare the decorated `run(ctx) -> entry` in `own` (a `grader.spec.Definitions`, with
    `options` for its `observer`) as an observer of one case: {"runs": [entry]}, the entry
    seeded and its failure recorded as data (`once`), for `judged` over "runs"."""

    def declare(run: Callable[[Any], dict]) -> Callable:
        @functools.wraps(run)
        def observe(ctx) -> dict:
            return {"runs": [once(ctx, lambda: run(ctx))]}

        return own.observer(**options)(observe)

    return declare


Test = Callable[[dict, dict, Any, int], str | None]  # (entry, reference's entry, ctx, i)
Where = Callable[[Any, int, dict], str]  # (ctx, i, reference's entry) -> "ResBlock(...)"


def every_setting(key: str, test: Test, where: Where, hint: str = "") -> Callable:
    """The judge of a check that every setting of observation `key` (a list, one entry per
    setting) must pass: partial credit over the reference's settings, never the student's.

    A setting the student's code failed in is a problem: "wrong" entries (a wrong value) keep
    the verdict a failure, "error" entries or a missing entry (work not done, nothing observed)
    mark it `raised`. `hint` follows the problems in the message.
    """

    def judge(seen, want, ctx) -> Verdict:
        got = seen.get(key) if isinstance(seen.get(key), list) else []
        problems, raised = [], False
        for i, reference in enumerate(want[key]):
            place = where(ctx, i, reference)
            if "error" in reference or "wrong" in reference:  # a grader bug, said loudly
                raise RuntimeError(f"the reference failed on {place}: {reference}")
            entry = got[i] if i < len(got) else None
            if not isinstance(entry, dict):
                problems.append(f"{place}: nothing observed")
                raised = True
            elif "error" in entry:
                problems.append(f"{place} raised {entry['error']}")
                raised = True
            elif "wrong" in entry:
                problems.append(f"{place}: {entry['wrong']}")
            elif problem := test(entry, reference, ctx, i):
                problems.append(f"{place}: {problem}")
        total = len(want[key])
        message = summarise(problems) + (f": {hint}" if hint and problems else "")
        return Verdict.partial(total - len(problems), total, message or "right", raised=raised)

    return judge


def judged(own, observer, key: str, where, *, name: str | None = None, hint: str = ""):
    """Declare the decorated `test(entry, reference's entry, ctx, i) -> problem | None` in
    `own` (a `grader.spec.Definitions`) as the judge of a check, named `name` or after the
    test: every entry of `observer`'s list `key` must pass it (`every_setting`). `where` names
    entry i: a function (ctx, i, reference's entry) -> text, a text, or a text per entry."""
    if not callable(where):
        texts = [where] if isinstance(where, str) else list(where)
        where = lambda ctx, i, want: texts[min(i, len(texts) - 1)]  # noqa: E731

    def declare(test: Test) -> Test:
        check = name or test.__name__
        own.check(check, observe=observer)(every_setting(key, test, where, hint))
        return test

    return declare


def register_all(*parts) -> Callable:
    """The `register(checks, manifest)` of an assignment's own checks kept in several modules
    (`parts`, each with its `grader.spec.Definitions` as `OWN`): theirs, in this order, which is
    the order their observers draw their settings from the run's generator."""

    def register(checks, manifest=None) -> None:
        for part in parts:
            part.OWN.register(checks, manifest)

    return register


@contextlib.contextmanager
def recorded(entry: dict, limit: int = 300) -> Iterator[dict]:
    """Run the block; an exception it raises (not `StopProbe`) becomes `entry["error"]`
    ("Type: message"), for an observer whose judge tells the failures apart itself."""
    try:
        yield entry
    except STUDENT_EXITS as err:  # reported as data (a sys.exit() too); the judge decides
        entry["error"] = describe_error(err, limit)


@contextlib.contextmanager
def replaced(namespace: dict, stand_ins: dict) -> Iterator[None]:
    """The notebook's globals that `stand_ins` names hold its values while the block runs (a
    student's function then finds them), and are put back (or removed again) afterwards."""
    saved = {name: namespace[name] for name in stand_ins if name in namespace}
    try:
        namespace.update(stand_ins)
        yield
    finally:
        for name in stand_ins:
            if name in saved:
                namespace[name] = saved[name]
            else:
                namespace.pop(name, None)


def mean_of(*judges: Callable, ok: str) -> Callable:
    """One judge made of several that count the same: the mean of their fractions, the messages
    of those that lost points (or `ok`)."""

    def judge(seen, want, ctx) -> Verdict:
        verdicts = [each(seen, want, ctx) for each in judges]
        fraction = sum(v.fraction for v in verdicts) / len(verdicts)
        problems = [v.message for v in verdicts if v.fraction < 1]
        return Verdict(fraction, "; ".join(problems) or ok)

    return judge


def draws(spec: dict[str, tuple[int, int] | list]) -> Callable:
    """The draw function of an observer whose settings are a seed (`seed`) and, in `spec`'s
    order, a value per name: an integer in [low, high] for a (low, high) pair, one of the items
    of a list (the run's generator is used in this order, so a setting added last changes no
    other)."""

    def draw(rng: random.Random, manifest) -> dict:
        drawn: dict = {"seed": seed(rng)}
        for name, values in spec.items():
            drawn[name] = rng.choice(values) if isinstance(values, list) else rng.randint(*values)
        return drawn

    return draw
