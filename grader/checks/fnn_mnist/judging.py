"""What several of this package's judges compare with."""

from __future__ import annotations

from typing import Any


def near(got: Any, want: float) -> bool:
    """A returned number equal to `want` up to float rounding."""
    return isinstance(got, int | float) and abs(got - want) <= 1e-5 * max(1, want)
