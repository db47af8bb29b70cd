"""Undo a submission's monkeypatching of torch, builtins and friends before observers run.

A student cell may replace `torch.Tensor.eq`, `nn.Module.eval`, `torch.cuda.is_available` or
`builtins.__import__`. Observers only record data and the judge decides elsewhere, but they
should record what the student's *model* does, not what a patched library pretends. The snapshot
is taken before any student code runs; `restore` puts every snapshotted attribute back and removes
attributes added to the snapshotted classes.
"""

from __future__ import annotations

import builtins
import inspect
import json
import math
import os
import sys
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn.functional
import torch.nn.init
import torch.optim
import torch.utils.data
from torch import nn


def _classes() -> list[type]:
    found: list[type] = [torch.Tensor, nn.Parameter, torch.no_grad, torch.enable_grad]
    for module in (nn, torch.optim, torch.utils.data):
        found += [c for c in vars(module).values() if inspect.isclass(c)]
    return list(dict.fromkeys(found))


def _modules() -> list[ModuleType]:
    return [builtins, torch, torch.nn.functional, torch.nn.init, torch.cuda, math, os, json, sys]


_FUNCTION_PARTS = ("__code__", "__defaults__", "__kwdefaults__")


@dataclass
class Snapshot:
    modules: dict[str, tuple[ModuleType, dict]]
    classes: dict[int, tuple[type, dict]]
    functions: list[tuple[object, dict]]

    @classmethod
    def take(cls, own: list[ModuleType] = ()) -> Snapshot:
        """Snapshot the libraries, and `own` modules (the grader's checks) with their classes
        and the code of their functions, which a cell could otherwise rewrite in place."""
        own_classes = [v for m in own for v in vars(m).values() if inspect.isclass(v)]
        own_functions = [v for m in own for v in vars(m).values() if inspect.isfunction(v)]
        return cls(
            modules={m.__name__: (m, dict(vars(m))) for m in [*_modules(), *own]},
            classes={id(c): (c, dict(vars(c))) for c in [*_classes(), *own_classes]},
            functions=[(f, {k: getattr(f, k) for k in _FUNCTION_PARTS}) for f in own_functions],
        )

    def restore(self) -> list[str]:
        """Put everything back; return the names that had been changed (for the log)."""
        changed = []
        for function, parts in self.functions:
            for key, value in parts.items():
                if getattr(function, key) is not value:
                    changed.append(f"{function.__qualname__}.{key}")
                    setattr(function, key, value)
        for name, (module, saved) in self.modules.items():
            current = vars(module)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    changed.append(f"{name}.{key}")
                    setattr(module, key, value)
            if module is builtins:
                for key in set(current) - set(saved):
                    changed.append(f"builtins.{key}")
                    delattr(module, key)
        for cls, saved in self.classes.values():
            current = dict(vars(cls))
            for key in set(current) - set(saved):
                changed.append(f"{cls.__qualname__}.{key}")
                _try(delattr, cls, key)
            for key, value in saved.items():
                # Dunders too: a replaced nn.Module.__call__ changes every model's behaviour.
                if current.get(key, _MISSING) is not value:
                    changed.append(f"{cls.__qualname__}.{key}")
                    _try(setattr, cls, key, value)
        return changed


_MISSING = object()


def _try(fn, *args) -> None:
    try:
        fn(*args)
    except (AttributeError, TypeError):  # read-only slots of C types
        pass
