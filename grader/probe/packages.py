"""Packages a notebook imports that the grading machine lacks (Colab's `torchinfo`,
`tensorboard`, `wandb`, installed there with `!pip install`, which is not run while grading).

Off Colab, `from torchinfo import summary` in the imports cell raised ModuleNotFoundError and
took the rest of the cell with it (`import torch` included): every later cell failed and correct
work scored 17/40. While grading, an import written in a notebook cell of a package nobody can
find gives a stand-in instead, with a line in the probe's log: its names can be used and called
and do nothing. Imports made by libraries are left alone, so their optional-dependency checks
(`try: import scipy except ImportError`) still see what is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

CELL_FILE = "<ipython-input-"  # the file name IPython gives each cell's code
# The reference package, hidden in the sandbox (grader/sandbox.py): importing it keeps failing.
HIDDEN = frozenset({"solutions"})


class Absent:
    """A name of a missing package: calling it or reading its attributes gives more of them."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *args, **kwargs) -> Absent:
        return Absent(f"{self._name}()")

    def __getattr__(self, name: str) -> Absent:
        if name.startswith("__"):  # copy, pickle and friends: it has no such protocol
            raise AttributeError(name)
        return Absent(f"{self._name}.{name}")

    def __repr__(self) -> str:
        return f"<{self._name}: not installed on the grading machine>"

    def _arithmetic(self, *_) -> Absent:
        return Absent(f"{self._name}(...)")

    # A value of the package's (torchmetrics' accuracy) flows on through `correct += acc * n`
    # and f-strings: only what reads it is wrong, not the loss computed beside it.
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __neg__ = _arithmetic

    def __format__(self, spec: str) -> str:
        return repr(self)


class MissingPackage(ModuleType):
    __path__: list[str] = []  # a package: `import missing.sub` finds a stand-in too

    def __getattr__(self, name: str) -> Absent:
        if name.startswith("__"):
            raise AttributeError(name)
        return Absent(f"{self.__name__}.{name}")


class _StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: asked only for what no other finder found."""

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition(".")
        if top in HIDDEN or not _imported_by_a_cell():
            return None
        if rest and not isinstance(sys.modules.get(fullname.rpartition(".")[0]), MissingPackage):
            return None  # a module missing from an installed package (torch.nope): no stand-in
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec) -> ModuleType:
        print(f"[grader] {spec.name} is not installed on the grading machine: a stand-in is used")
        return MissingPackage(spec.name)

    def exec_module(self, module) -> None:
        pass


def _imported_by_a_cell() -> bool:
    """Whether the import statement being served is in a notebook cell's own code."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(("<frozen", __file__)):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(CELL_FILE)


def install() -> None:
    """Put the stand-in finder last on sys.meta_path (once)."""
    if not any(isinstance(f, _StandIns) for f in sys.meta_path):
        sys.meta_path.append(_StandIns())
