"""The checks that are `fnn_mnist`'s own, one module per part of the sheet (each says what it
judges): `networks` (FNN, DeepFNN, init_weights, the answers), `data` (flatten, mean_std,
make_loaders), `training` (sum_correct_preds, the penalties, a regularised step), `user` (the
NetworkUser). The observers use the grader's own models, data and penalties, built from this
run's seeds, so each check depends on the one piece of student code it judges. The rest comes
from the families (manifest)."""

from __future__ import annotations

from grader.checks import kit
from grader.checks.fnn_mnist import data, networks, training, user

# Observers are registered, and their settings drawn from the run's generator, in this order.
register = kit.register_all(networks, data, training, user)
