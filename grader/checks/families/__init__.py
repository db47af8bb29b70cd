"""Check families: what every assignment needs, written once and configured by the manifest.

- `modules`: build the student's classes with drawn arguments; output shapes, parameter shapes
  and counts, logits rather than probabilities, and behaviour (outputs under parameter values
  chosen from each parameter's shape alone, compared with the reference's).
- `loops`: the training and evaluation code: modes, gradients, zero_grad, mean loss, accuracy
  arithmetic, whatever the calling convention (epoch functions or a trainer class).
- `devices`: device placement, checked on a CPU-only machine with the meta device.
- `accuracy`: the submitted weights, rebuilt in the student's classes, on the real test split.
- `answers`: numbers that answer the sheet's questions.
- `transforms`: a training transform that flips and crops with padding, a deterministic test
  transform.

The contract: a family is a module with `NAME` (the first part of a check's `source` in the
manifest), `source_problem(manifest, parts)` (what is wrong with the rest of a source, or None:
the manifest calls it when it loads) and `register(checks, manifest)` (its observers, and the
checks whose source names it). A family with a manifest section declares the section's model
beside its code (`ModuleEntry`, `LoopsSection`, `AnswersSection`,
`TransformsSection`). `FAMILIES` is the registry,
in report-friendly order.

Beside the families, modules that are none (no `NAME`, not in `FAMILIES`) hold what several
assignments' own checks use: `behaviour` (fixed weights, dropout; the linear-layer calls of
`linears`),
`images` (stand-in images and data sets), `studies` (a hyper-parameter search),
`initialisation` (an `init_weights` function) and `loop_models` (the models and batches the
loops and devices families probe with).
"""

from __future__ import annotations

from grader.checks.families import accuracy, answers, devices, loops, modules, transforms

# Registered in this order, which is the order their observers draw their settings in.
FAMILIES = {
    family.NAME: family for family in (modules, loops, devices, accuracy, answers, transforms)
}
