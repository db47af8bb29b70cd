"""The checks that are `cnn_techniques`' own, one module per part of the sheet; the rest come
from the families (manifest)."""

from __future__ import annotations

from grader.checks import kit
from grader.checks.cnn_techniques import analysis, counts, training

# Observers are registered, and their settings drawn from the run's generator, in this order.
register = kit.register_all(counts, training, analysis)
