"""Does mlp_tuning's std check take the sheet's formula however a student rewrites it, in
float32, in every grading run's cases, and still name the formula's mistakes?"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from grader.checks.mlp_tuning import statistics as own

SEEDS = range(300)
RIGHT = {
    "two passes": lambda x: ((x - x.mean(0)) ** 2).mean(0).sqrt(),
    "E[x^2] - E[x]^2": lambda x: ((x * x).sum(0) / len(x) - x.mean(0) ** 2).sqrt(),
}
WRONG = {
    "lacks the + 1e-5": lambda x: x.std(0, correction=0) - own.EPSILON,
    "divides by N - 1": lambda x: x.std(0),
}


def _problem(std_of, seed: int) -> str | None:
    """stats_formula's verdict on `std_of(float32 images) + 1e-5` in the first drawn case."""
    case = own._draw_statistics(random.Random(seed), None)["cases"][0]
    x = own.noise_images(case["images"], case["seed"])[case["indices"]].float() / 255
    want = {"std_tensor": x.std(0, correction=0) + own.EPSILON}
    entry = {"std_tensor": std_of(x) + own.EPSILON, "std_type": "a tensor"}
    return own.stats_formula(entry, want, SimpleNamespace(settings={"cases": [case]}), 0)


@pytest.mark.parametrize("formula", RIGHT)
def test_is_the_sheet_s_formula_right_in_float32_however_written(formula):
    assert [s for s in SEEDS if _problem(RIGHT[formula], s) is not None] == []


@pytest.mark.parametrize("mistake", WRONG)
def test_is_each_mistake_of_the_formula_named(mistake):
    assert all(mistake in (_problem(WRONG[mistake], s) or "") for s in SEEDS[:20])
