"""What a cell defines, without what it runs: for a cell that stopped the probe.

Students leave a training call at the end of the cell that defines their functions (`def fit
...` then `fit(model, 10)`). On Colab's GPU it took seconds; on the grading machine's CPU it ran
past the cell's time limit, the cell was skipped, and with it every function it defined: a
correct `train_epoch` lost all the loop checks (blind round 10: 3 to 12 points, in three
assignments). The probe runs such a cell again with its top-level definitions alone: imports,
functions, classes and assignments of plain literals (`EPOCHS = 10`) or of arithmetic on them
(`INPUT_SIZE = 28 * 28`: dropped, a function reading it lost its checks). Nothing is executed
here: the source is only parsed.
"""

from __future__ import annotations

import ast

from IPython.core.inputtransformer2 import TransformerManager

_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _names_only(target: ast.AST) -> bool:
    """`x` or `x, y`: a target binding names, nothing else (no attribute, no item)."""
    if isinstance(target, ast.Tuple | ast.List):
        return all(map(_names_only, target.elts))
    return isinstance(target, ast.Name)


def _constant(node: ast.AST, known: set[str]) -> bool:
    """A literal, or arithmetic on literals and on constants kept above it (`28 * 28`,
    `2 ** 8`, `IMG * IMG`): names read elsewhere might be unbound, so they are not kept."""
    if isinstance(node, ast.BinOp):
        return _constant(node.left, known) and _constant(node.right, known)
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand, known)
    if isinstance(node, ast.Tuple | ast.List):  # `MEAN, STD = 0.5, 1 / 4`
        return all(_constant(elt, known) for elt in node.elts)
    return node.id in known if isinstance(node, ast.Name) else _literal(node)


def _kept(node: ast.stmt, known: set[str]) -> bool:
    if isinstance(node, _DEFINITIONS):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if all(map(_names_only, targets)) and _constant(node.value, known):
            known.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            return True
    return False


def definitions_only(source: str) -> str:
    """The cell's top-level definitions as Python source; "" when it has none or cannot be
    read (IPython's `%magics` and `!commands` are translated first, then dropped)."""
    first, _, rest = source.lstrip().partition("\n")
    if first.split()[:1] in (["%%time"], ["%%capture"]):  # cell magics that run the cell as code
        source = rest
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
        known: set[str] = set()  # constants kept so far
        kept = [node for node in tree.body if _kept(node, known)]
        return ast.unparse(ast.Module(body=kept, type_ignores=[])) if kept else ""
    except Exception:  # noqa: BLE001 - a cell nested past the recursion limit, say: nothing kept
        return ""
