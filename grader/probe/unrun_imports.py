"""Imports a notebook holds in a branch Colab ran and the grading machine does not.

A cell such as `if "google.colab" in sys.modules: ... import copy` or `try: ... except
ImportError: ... else: from collections import OrderedDict` imports on Colab, where the student
ran it, and not while grading: a function that reads `copy` then failed with a NameError the
student never saw, and correct work lost its checks (blind round 9, mlp_tuning). After the cells
ran, every name such a statement would bind at a cell's top level (in any branch, not inside a
function or class, whose imports are its own) and that is still unbound gets what the statement
imports. Nothing already bound is touched, and a module the machine lacks stays unbound.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Iterator
from typing import Any

from grader.cell_code import cell_tree

_OWN_SCOPE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _top_level_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a cell's own scope, in any branch of it."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, _OWN_SCOPE):
            yield from _top_level_imports(node)


def _bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(name, what binds it) for each name the statement binds; relative and `*` imports bind
    nothing here."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:  # `import a.b as c`: c is a.b
                yield alias.asname, lambda m=alias.name: importlib.import_module(m)
            else:  # `import a.b`: imports a.b and binds a
                top = alias.name.partition(".")[0]
                yield (
                    top,
                    lambda m=alias.name, t=top: (
                        importlib.import_module(m) and importlib.import_module(t)
                    ),
                )
    elif node.module and not node.level:
        for alias in node.names:
            if alias.name != "*":
                yield (
                    alias.asname or alias.name,
                    lambda m=node.module, n=alias.name: _attribute(m, n),
                )


def _attribute(module: str, name: str) -> Any:
    """`from module import name`: an attribute, else a submodule."""
    found = importlib.import_module(module)
    try:
        return getattr(found, name)
    except AttributeError:
        return importlib.import_module(f"{module}.{name}")


def bind_unrun_imports(ns: dict, cells: list[str]) -> list[str]:
    """Bind in `ns` the unbound names of the cells' top-level imports; the names bound."""
    bound = []
    for tree in filter(None, map(cell_tree, cells)):  # a cell that cannot be read binds nothing
        for node in _top_level_imports(tree):
            for name, load in _bindings(node):
                if name in ns:
                    continue
                try:
                    ns[name] = load()
                except Exception:  # noqa: BLE001 - not installed, or broken: left unbound
                    continue
                bound.append(name)
    return bound
