"""The checks that are `mlp_tuning`'s own, one module per part of the sheet; the MLP's shapes
and behaviour and the training and evaluation functions come from the families (manifest)."""

from __future__ import annotations

from grader.checks import kit
from grader.checks.mlp_tuning import final, mlp, search, statistics, transforms

# In the manifest's order: observers draw their settings in the order they are registered.
register = kit.register_all(statistics, transforms, mlp, search, final)
