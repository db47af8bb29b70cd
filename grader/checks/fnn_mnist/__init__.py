"""The checks that are `fnn_mnist`'s own, one module per part of the sheet (each says what it
judges). The observers use models, data and penalties of the grader's, made from this run's
seeds, so each check depends on the one piece of student code it judges; the rest comes from the
families (manifest)."""

from __future__ import annotations

from grader.checks import kit
from grader.checks.fnn_mnist import data, networks, training, user

# Observers are registered, and their settings drawn from the run's generator, in this order.
register = kit.register_all(networks, data, training, user)
