"""The checks that are `fnn_mnist`'s own; the rest come from the families (manifest).

One module per topic, each declaring its observers and checks in its own `OWN`:
- `networks`: FNN and DeepFNN (parameters, outputs under fixed weights) with the student's own
  `dense_layer` in place, `init_weights`, and the number answers (right when they match the
  reference's or are true of the student's own FNNs);
- `data`: `flatten`, `mean_std` and the normalisation `make_loaders` applies;
- `training`: `sum_correct_preds`, the L1/L2 penalties and a regularised training step;
- `user`: the NetworkUser's save -> load round trip and the mode predict runs in.
The models, data and penalties the observers use are the grader's own, built from this run's
seeds, so each check depends on the one piece of student code it judges. An observer probes a
list of cases with `kit.per_setting`; a check's judge (`kit.judged`, kit.every_setting)
asks a test of each case.
"""

from __future__ import annotations

from grader.checks import kit
from grader.checks.fnn_mnist import data, networks, training, user

# Observers are registered, and their settings drawn from the run's generator, in this order.
register = kit.register_all(networks, data, training, user)
