"""A notebook cell's code as Python: its syntax tree, and what it defines without what it runs.

Students leave a training call at the end of the cell that defines their functions (`def fit
...` then `fit(model, 10)`). On Colab's GPU it took seconds; on the grading machine's CPU it ran
past the cell's time limit, the cell was skipped, and with it every function it defined: a
correct `train_epoch` lost all the loop checks (blind round 10: 3 to 12 points, in three
assignments). The probe runs such a cell again with its top-level definitions alone: imports,
functions, classes and assignments of values computed from literals alone (`EPOCHS = 10`,
`INPUT_SIZE = 28 * 28`, a tuple of dicts built by a comprehension over literals: dropped, a
function reading one, or taking it as a default argument, lost its checks). Nothing is
executed here: the source is only parsed.
"""

from __future__ import annotations

import ast

# Cell magics that run their body as the cell's code, in the notebook's namespace.
_RUNS_BODY = frozenset({"%%time", "%%timeit", "%%capture"})
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _names_only(target: ast.AST) -> bool:
    """`x` or `x, y`: a target binding names, nothing else (no attribute, no item)."""
    if isinstance(target, ast.Tuple | ast.List):
        return all(map(_names_only, target.elts))
    return isinstance(target, ast.Name)


# Built-ins that only compute a value from their arguments: `tuple(zip(...))`, `list(range(3))`.
_PURE = frozenset(
    "tuple list dict set frozenset zip range len int float str bool sorted reversed enumerate "
    "min max sum abs round".split()
)
# What a constant's expression may hold: values, operators, containers, comprehensions, calls
# of _PURE built-ins; no attribute (`torch.randn`), no lambda, no walrus.
_VALUE_NODES = (
    ast.Constant, ast.Name, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BinOp, ast.UnaryOp,
    ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Subscript, ast.Slice,
    ast.Starred, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
    ast.JoinedStr, ast.FormattedValue, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop,
    ast.boolop,
)  # fmt: skip


def _constant(node: ast.AST, known: set[str]) -> bool:
    """A value computed from literals and the constants kept above it alone (`28 * 28`,
    `IMG * IMG`, `tuple({"share": s} for s in (0.6, 0.4))`): names read elsewhere might be
    unbound, and anything else might train, so it is not kept."""
    local = {
        n.id
        for c in ast.walk(node)
        if isinstance(c, ast.comprehension)
        for n in ast.walk(c.target)
        if isinstance(n, ast.Name)
    }
    for sub in ast.walk(node):
        if not isinstance(sub, _VALUE_NODES):
            return False
        if isinstance(sub, ast.Call) and not (
            isinstance(sub.func, ast.Name) and sub.func.id in _PURE
        ):
            return False
        if isinstance(sub, ast.Name) and sub.id not in known | local | _PURE:
            return False
    return True


def _kept(node: ast.stmt, known: set[str]) -> bool:
    if isinstance(node, _DEFINITIONS):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if all(map(_names_only, targets)) and _constant(node.value, known):
            known.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            return True
    return False


def _guarded(node: ast.stmt) -> ast.Try:
    """`try: node` / `except Exception as e: print(...)`: a definition that fails (a default
    argument naming a value the cell computed, now dropped) costs itself, not those after it."""
    report = ast.parse('print("[grader] a definition failed:", repr(_grader_error))').body
    handler = ast.ExceptHandler(type=ast.Name("Exception"), name="_grader_error", body=report)
    return ast.Try(body=[node], handlers=[handler], orelse=[], finalbody=[])


def cell_tree(source: str) -> ast.Module | None:
    """The cell's code as Python's syntax tree, IPython's `%magics` and `!commands` translated
    (a `%%time` or `%%capture` cell's body read as its code); None when it cannot be read."""
    from IPython.core.inputtransformer2 import TransformerManager  # not for a CLI's start

    first, _, rest = source.lstrip().partition("\n")
    if first.split()[:1] and first.split()[0] in _RUNS_BODY:
        source = rest
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # noqa: BLE001 - a syntax error, or nested past the recursion limit
        return None


def cell_reads(source: str) -> set[str]:
    """The names a cell's code reads, its functions' too (none when it cannot be read)."""
    tree = cell_tree(source)
    nodes = ast.walk(tree) if tree else ()
    return {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def definitions_only(source: str) -> str:
    """The cell's top-level definitions as Python source; "" when it has none or cannot be
    read."""
    tree = cell_tree(source)
    known: set[str] = set()  # constants kept so far
    kept = [_guarded(node) for node in tree.body if _kept(node, known)] if tree else []
    return ast.unparse(ast.Module(body=kept, type_ignores=[])) if kept else ""
